//! What the speaker keeps per peer: its session, its source number in the RIB, and
//! once Established, what was agreed and what it still has to be sent.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::sync::mpsc;

use crate::codec::{Afi, RouteRefreshKind, UpdatePacker};
use crate::rib::{LocalRouter, Rib, Source, SourceId};
use crate::session::{Negotiated, Outgoing, SessionStats, State};

use super::config::{PeerConfig, SpeakerConfig};
use super::outbox::Outbox;

#[derive(Debug)]
pub(crate) struct Peer {
    pub config: PeerConfig,
    /// Names this peer's session to the shell and tags its events.
    pub token: u64,
    /// The session's update queue and counters (shared with its driver).
    pub updates: mpsc::Sender<Outgoing>,
    pub stats: Arc<SessionStats>,
    /// Its paths in the RIB, kept across sessions (graceful restart).
    pub source: SourceId,
    /// Set while the session is Established.
    pub session: Option<Established>,
    /// When the peer was added, or its session last came up or went down.
    pub since: Instant,
    pub last_error: Option<String>,
    /// A restarting peer's stale routes are removed at this time (RFC 4724).
    pub stale_until: Option<Instant>,
    /// The listen range this dynamic peer was accepted through.
    pub range: Option<usize>,
    /// Announced NLRI received over all its sessions.
    pub announcements: u64,
    /// No session runs: BFD strict mode and BFD is not Up. `token`, `updates`
    /// and `stats` then belong to no session.
    pub held: bool,
}

impl Peer {
    /// The peer as `node status` shows it, at `now`.
    pub fn status(
        &self,
        address: IpAddr,
        speaker: &SpeakerConfig,
        rib: &Rib,
        now: Instant,
    ) -> PeerStatus {
        let session = self.session.as_ref();
        let stats = &self.stats;
        PeerStatus {
            address,
            remote_as: session
                .map(|s| s.negotiated.remote_as)
                .or(self.config.remote_as),
            state: stats.state(),
            established: session.is_some(),
            internal: session.map_or(
                self.config.remote_as == Some(self.config.local_as(speaker)),
                |s| s.source.internal,
            ),
            since: self.since,
            uptime: session.map(|_| now.saturating_duration_since(self.since)),
            info: self.last_error.clone(),
            hostname: session.and_then(|s| s.negotiated.peer_hostname.clone()),
            messages_received: stats.messages_received.load(Relaxed),
            messages_sent: stats.messages_sent.load(Relaxed),
            updates_received: stats.updates_received.load(Relaxed),
            updates_sent: stats.updates_sent.load(Relaxed),
            prefixes_received: self.announcements,
            prefixes_accepted: rib.path_count(self.source),
            prefixes_advertised: session.map_or(0, |s| s.outbox.advertised()),
            export_backlog: session.map_or(0, |s| s.outbox.backlog()),
            export_queued: self.updates.max_capacity() - self.updates.capacity(),
            restarting: self.stale_until.is_some(),
        }
    }
}

/// What the speaker keeps for an Established session: what was agreed, and its
/// Adj-RIB-Out.
#[derive(Debug)]
pub(crate) struct Established {
    pub negotiated: Negotiated,
    pub source: Arc<Source>,
    /// This router with the session's own AS (local-AS).
    pub router: LocalRouter,
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
    /// Families the peer asked to refresh with enhanced route refresh (RFC 7313):
    /// their Beginning of Route Refresh goes out before anything else is sent...
    pub refresh_begin_due: Vec<Afi>,
    /// ...and their End once everything owed has been sent.
    pub refresh_end_due: Vec<Afi>,
}

impl Established {
    /// True once the peer sent End-of-RIB for every family of the session.
    pub fn table_complete(&self) -> bool {
        self.negotiated
            .families
            .iter()
            .filter_map(|&f| Afi::of(f))
            .all(|afi| self.end_of_rib_seen.contains(&afi))
    }

    /// Queues End-of-RIB (RFC 4724 2) for every family of the session.
    pub fn send_end_of_rib(&self) {
        let mut bytes = BytesMut::new();
        let mut updates = 0;
        for family in &self.negotiated.families {
            if let Some(afi) = Afi::of(*family)
                && self.packer.end_of_rib(afi, &mut bytes).is_ok()
            {
                updates += 1;
            }
        }
        let _ = self.updates.try_send(Outgoing {
            epoch: self.epoch,
            bytes: bytes.freeze(),
            updates,
        });
    }

    /// Queues the route refresh markers of kind `kind` that are due (RFC 7313), in
    /// the stream of UPDATEs they bracket.
    pub fn send_refresh_markers(&mut self, kind: RouteRefreshKind) {
        let due = match kind {
            RouteRefreshKind::Begin => &mut self.refresh_begin_due,
            RouteRefreshKind::End => &mut self.refresh_end_due,
            RouteRefreshKind::Request | RouteRefreshKind::Other(_) => return,
        };
        let mut bytes = BytesMut::new();
        for afi in std::mem::take(due) {
            let _ = self.packer.refresh_marker(afi, kind, &mut bytes);
        }
        let _ = self.updates.try_send(Outgoing {
            epoch: self.epoch,
            bytes: bytes.freeze(),
            updates: 0,
        });
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
    /// Prefixes whose change (announcement or withdrawal) is not yet encoded for
    /// it: its Adj-RIB-Out's backlog, which grows while its session is slow.
    pub export_backlog: usize,
    /// Chunks of encoded UPDATEs queued for its session, not yet written to the
    /// socket (at most `session::UPDATE_QUEUE`).
    pub export_queued: usize,
    /// Its routes are kept stale while it restarts (RFC 4724).
    pub restarting: bool,
}
