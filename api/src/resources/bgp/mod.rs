//! The BGP kinds: cluster and per-node BGP settings, peers, and route filters.

mod config;
mod filter;
mod peer;

pub use config::*;
pub use filter::*;
pub use peer::*;
