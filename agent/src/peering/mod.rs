//! The agent's side of BGP: which sessions to have ([`plan`], with the passwords
//! [`passwords`] reads off the loop, under the [`router_id`] this node picks), and
//! bringing the embedded speaker to them and to the export set one change at a
//! time ([`wiring`]).

pub mod filters;
pub mod passwords;
pub mod plan;
pub mod router_id;
pub mod wiring;

pub use plan::{BfdPeering, DesiredBgp, PeerKind, Peering};
pub use router_id::RouterId;
pub use wiring::{Step, Wiring};
