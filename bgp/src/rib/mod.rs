//! The routing information base: paths with interned attributes, the decision
//! process with ECMP sets, import loop checks and export rules (iBGP, eBGP and
//! route reflection), operator filters, and graceful-restart staleness.

pub mod decision;
pub mod filter;
pub mod intern;
mod numbered;
pub mod path;
pub mod policy;
pub mod table;
#[cfg(test)]
mod testing;

pub use filter::{Filter, FilterError};
pub use intern::Interner;
pub use path::{Candidate, Path, Source};
pub use policy::{LocalRouter, NextHopMode, Rejected, check_import, export};
pub use table::{Change, LOCAL, PathRef, Rib, SlotId, SourceId, Touched};
