//! What the agent reports about itself, published after every pass of its loop:
//! for `/readyz`, the status API, metrics and tests.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use telemetry::metrics::Distribution;

use crate::peering::PeerKind;

/// A snapshot of the agent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Status {
    /// Every kind of the datastore has been listed.
    pub listed: bool,
    /// BGP has re-learned its routes after the start (at once on a fresh start).
    pub bgp_synced: bool,
    /// The kernel has been reconciled to the full desired state (gateway routes
    /// included) at least once.
    pub reconciled: bool,
    pub passes: u64,
    pub last_pass: Option<PassSummary>,
    /// Destinations in the desired kernel state.
    pub desired_routes: usize,
    /// The same by what each is ([`crate::dataplane::RouteTarget::kind`]).
    pub routes_by_kind: BTreeMap<&'static str, usize>,
    /// Prefixes the speaker holds best paths for.
    pub bgp_prefixes: usize,
    pub exported: usize,
    /// Service prefixes advertised and Service addresses held back, with why.
    pub services: Vec<String>,
    /// Learned routes not programmed, as sentences.
    pub rejected: Vec<String>,
    /// Routes the speaker's import hook refused (a node announcing what another
    /// owns), as sentences.
    pub rejected_at_import: Vec<String>,
    pub problems: Vec<String>,
    pub peers: Vec<PeerState>,
    pub counters: Counters,
}

/// Reconciliation durations' buckets, in seconds: a pass over a few routes
/// takes milliseconds, a full resync of thousands a second or more.
pub const RECONCILE_BUCKETS: &[f64] = &[0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10.0];

/// Totals since the agent started, for metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Counters {
    /// Changes the kernel refused.
    pub refused_changes: u64,
    /// Passes that failed as a whole (the netlink conversation broke).
    pub failed_passes: u64,
    /// How long each reconciliation took.
    pub reconcile_seconds: Distribution,
    /// Learned routes refused, by reason, counted when a refusal starts.
    pub rejections: BTreeMap<&'static str, u64>,
    /// Times a kind's datastore watch was lost and the kind listed again.
    pub resyncs: u64,
    /// Times each peer's Established session ended.
    pub flaps: BTreeMap<IpAddr, u64>,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            refused_changes: 0,
            failed_passes: 0,
            reconcile_seconds: Distribution::new(RECONCILE_BUCKETS),
            rejections: BTreeMap::new(),
            resyncs: 0,
            flaps: BTreeMap::new(),
        }
    }
}

impl Status {
    /// Ready: listed, re-learned and reconciled.
    pub fn ready(&self) -> bool {
        self.listed && self.bgp_synced && self.reconciled
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PassSummary {
    pub ok: bool,
    pub applied: usize,
    /// The changes the kernel refused, printed like `ip` commands with the reason.
    pub refused: Vec<String>,
    pub took: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerState {
    pub address: IpAddr,
    pub kind: PeerKind,
    /// The BGPPeer (or mesh node) it comes from.
    pub source: String,
    pub established: bool,
    pub since: Instant,
    pub last_error: Option<String>,
    /// Its BFD session, when BFD is configured.
    pub bfd: Option<bfd::peers::PeerState>,
}
