//! The agent's side of BGP: which sessions to have ([`plan`]), and bringing the
//! embedded speaker to them and to the export set one change at a time
//! ([`wiring`]).

pub mod filters;
pub mod hook;
pub mod plan;
pub mod wiring;

pub use plan::{DesiredBgp, PeerKind, Peering};
pub use wiring::{Step, Wiring};
