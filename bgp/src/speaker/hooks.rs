//! Import and export hooks: Rust code the owner plugs into the speaker, called for
//! every route after the built-in checks and the declarative filters (the agent
//! refuses mesh routes that contradict IPAM block ownership with one).

use std::fmt;
use std::sync::Arc;

use ipnet::IpNet;

use crate::codec::Attributes;
use crate::rib::Source;

/// What a hook decides for one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Reject,
    /// Accept with these attributes instead.
    Replace(Attributes),
}

/// Called for each route received from `peer` that passed the loop checks and the
/// peer's import filter.
pub trait ImportHook: Send + Sync {
    fn import(&self, peer: &Source, prefix: &IpNet, attributes: &Attributes) -> Verdict;
}

/// Called for each route about to be sent to `peer`, with the attributes it would
/// carry.
pub trait ExportHook: Send + Sync {
    fn export(&self, peer: &Source, prefix: &IpNet, attributes: &Attributes) -> Verdict;
}

/// The hooks a speaker runs; none by default.
#[derive(Clone, Default)]
pub struct Hooks {
    pub import: Option<Arc<dyn ImportHook>>,
    pub export: Option<Arc<dyn ExportHook>>,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("import", &self.import.is_some())
            .field("export", &self.export.is_some())
            .finish()
    }
}
