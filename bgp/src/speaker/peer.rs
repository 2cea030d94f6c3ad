//! What the speaker keeps per peer: its session, its source number in the RIB, and
//! once Established, what was agreed and what it still has to be sent.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::codec::{Afi, UpdatePacker};
use crate::rib::{Source, SourceId, Speaker};
use crate::session::{Command, Negotiated, Outgoing, SessionStats, State};

use super::config::PeerConfig;
use super::outbox::Outbox;

#[derive(Debug)]
pub(crate) struct Peer {
    pub config: PeerConfig,
    /// Tags this peer's session events.
    pub token: u64,
    pub commands: mpsc::UnboundedSender<Command>,
    pub updates: mpsc::Sender<Outgoing>,
    pub stats: Arc<SessionStats>,
    /// The session's driver task.
    pub driver: JoinHandle<()>,
    /// Its paths in the RIB, kept across sessions (graceful restart).
    pub source: SourceId,
    pub up: Option<Up>,
    /// When the session last came up or went down.
    pub since: Instant,
    pub last_error: Option<String>,
    /// A restarting peer's stale routes are removed at this time (RFC 4724).
    pub stale_until: Option<Instant>,
    /// The listen range this dynamic peer was accepted through.
    pub range: Option<usize>,
    /// Announced NLRI received over all its sessions.
    pub announcements: u64,
}

#[derive(Debug)]
pub(crate) struct Up {
    pub negotiated: Negotiated,
    pub source: Arc<Source>,
    /// The rules with this session's own AS (local-AS).
    pub rules: Speaker,
    /// This end's address on the session: the next hop when it is "self".
    pub local: IpAddr,
    pub packer: UpdatePacker,
    /// Its export class (see `export::ExportClass`).
    pub class: u32,
    pub epoch: u64,
    pub updates: mpsc::Sender<Outgoing>,
    pub stats: Arc<SessionStats>,
    /// The Adj-RIB-Out, as what is still to be sent and what was advertised.
    pub outbox: Outbox,
    /// End-of-RIB goes out once the first full table has.
    pub end_of_rib_due: bool,
    /// The families whose End-of-RIB the peer has sent this session.
    pub end_of_rib_seen: Vec<Afi>,
}

impl Up {
    /// True once the peer sent End-of-RIB for every family of the session.
    pub fn table_complete(&self) -> bool {
        self.negotiated
            .families
            .iter()
            .filter_map(|&f| Afi::of(f))
            .all(|afi| self.end_of_rib_seen.contains(&afi))
    }
}

/// A peer's state as `node status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    pub address: IpAddr,
    pub remote_as: Option<u32>,
    /// The session's FSM state (RFC 4271 8).
    pub state: State,
    pub established: bool,
    pub internal: bool,
    /// When the session last came up or went down.
    pub since: Instant,
    /// How long the session has been Established.
    pub uptime: Option<Duration>,
    /// The last error, like BIRD's "Received: Hold timer expired".
    pub info: Option<String>,
    pub hostname: Option<String>,
    pub messages_received: u64,
    pub messages_sent: u64,
    pub updates_received: u64,
    pub updates_sent: u64,
    /// Announced prefixes received, over every session with the peer.
    pub prefixes_received: u64,
    /// Its paths in the RIB now (after import checks and policy).
    pub prefixes_accepted: usize,
    /// Prefixes advertised to it now.
    pub prefixes_advertised: usize,
    /// Its routes are kept stale while it restarts (RFC 4724).
    pub restarting: bool,
}
