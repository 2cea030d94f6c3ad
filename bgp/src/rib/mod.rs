//! The routing information base: paths with interned attributes, the decision
//! process with ECMP sets, import loop checks and export rules (iBGP, eBGP and
//! route reflection), and graceful-restart staleness.

pub mod decision;
pub mod intern;
pub mod path;
pub mod policy;
pub mod table;
#[cfg(test)]
mod testing;

pub use intern::Interner;
pub use path::{Path, Source};
pub use policy::{NextHopMode, Rejected, Speaker, check_import, export};
pub use table::{Change, Rib};
