//! tabby's Bidirectional Forwarding Detection (RFC 5880): the Control packet codec
//! ([`packet`]), one session as a sans-IO state machine ([`session`]), and the tokio
//! driver that runs many sessions over UDP, single-hop (RFC 5881) and multihop
//! (RFC 5883) ([`driver`]), and a BGP speaker's sessions beside its peers
//! ([`peers`]). `docs/bfd.md` says what is implemented and how BGP uses it.

pub mod driver;
pub mod packet;
pub mod peers;
pub mod session;

pub use packet::{ControlPacket, Diagnostic, State};
pub use session::{Session, Status, Timers};
