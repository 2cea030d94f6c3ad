//! The BGP kinds: cluster and per-node BGP settings, peers, and route filters.

mod bfd_spec;
mod config;
mod filter;
mod peer;

pub use bfd_spec::*;
pub use config::*;
pub use filter::*;
pub use peer::*;
