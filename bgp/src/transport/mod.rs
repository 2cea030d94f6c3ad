//! Sockets for BGP sessions: TCP-MD5 keys, TTL policy, local address, and the
//! listener. The session logic never sees these; the tokio driver hands it bytes.

pub mod md5;
mod socket;
pub mod ttl;

pub use md5::{Md5Error, Md5Key, set_key};
pub use socket::{Endpoint, TransportError, as_seen_by, connect, listen};
pub use ttl::TtlPolicy;
