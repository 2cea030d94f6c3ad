//! The BGP speaker the agent and the reflector embed: sessions with configured and
//! dynamic peers, the RIB, import checks, filters and hooks, export to every
//! Established peer, graceful restart in both roles, and best-path changes
//! reported to the owner (the FIB writer).
//!
//! ```text
//!  owner ──requests (unbounded)──▶ ┌──────────── speaker task ────────────┐
//!  owner ◀─notices (bounded, coalesced)─ RIB ─ outbox per peer ─ packer ─┤
//!                                  └──▲──────────────────────────────┬───┘
//!                     events (bounded)│              updates (bounded)│
//!                                  session driver per peer ◀──────────┘
//! ```
//!
//! One task owns the RIB. It takes session events in batches, applies them, and
//! then brings every consumer up to date from the RIB's journal: a burst of
//! changes becomes a few densely packed UPDATEs per peer, and a peer (or owner)
//! that reads slowly only falls behind by a bit per prefix (see `outbox`).
//!
//! What the speaker decides lives in a sans-IO core (`core`, `peers`, `import`,
//! `export`): inputs with the time in, outputs out, tested without sockets or
//! clocks (`tests`). The task (`task`) is a thin tokio shell around it: the
//! listener, the session drivers, socket options, the owner's channels, one timer.

pub mod config;
mod core;
mod export;
mod hooks;
mod import;
mod notices;
mod outbox;
mod peer;
mod peers;
mod task;
#[cfg(test)]
mod tests;

pub use config::{
    DEFAULT_MAX_PREFIXES, DEFAULT_MAX_PREFIXES_RESTART, DEFAULT_SELECTION_DEFERRAL, ListenRange,
    PeerConfig, PeerGracefulRestart, Policy, SpeakerConfig,
};
pub use hooks::{ExportHook, Hooks, ImportHook, JudgeHook, Judgement, Verdict};
pub use peer::PeerStatus;

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use tokio::sync::{mpsc, oneshot};

use crate::codec::Attributes;
use crate::rib::{Change, Path};
use crate::transport::{self, TransportError, TtlPolicy};

/// How long a shutdown waits for the sessions to write their Cease.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// What the owner asks of the speaker.
#[derive(Debug)]
pub enum Request {
    /// Adds a peer; an existing peer at the address is removed first (its session
    /// restarts with the new configuration).
    AddPeer(PeerConfig),
    /// Changes a peer in place when only policy or limits changed (routes are
    /// re-sent, and asked for again with ROUTE-REFRESH); otherwise restarts its
    /// session. Other peers are never touched.
    UpdatePeer(PeerConfig),
    RemovePeer(IpAddr),
    /// Originate `prefix` from this speaker (a block, a service range).
    Originate(IpNet),
    /// Originate `prefix` with these attributes (communities, MED, ...); ORIGIN
    /// defaults to IGP and the AS path to empty.
    OriginateWith {
        prefix: IpNet,
        attributes: Attributes,
    },
    Withdraw(IpNet),
    Status(oneshot::Sender<Vec<PeerStatus>>),
    /// Every prefix in the RIB with all its paths, best first.
    Routes(oneshot::Sender<Vec<(IpNet, Vec<Path>)>>),
    /// Replaces the listen ranges. Dynamic peers accepted through a range that is
    /// gone or changed are stopped; the others keep their sessions.
    SetListenRanges(Vec<ListenRange>),
    /// BFD (RFC 5882) saw the forwarding path to this peer fail: its session is
    /// reset at once with Cease/BFD Down (RFC 9384). With `graceful`, a peer that
    /// offered graceful restart keeps its routes stale for its restart time, as
    /// after a TCP reset; without, its routes go now, stale ones included (a
    /// restart already under way is abandoned). `docs/bfd.md` has the choice.
    ForwardingDown {
        address: IpAddr,
        graceful: bool,
    },
    /// BFD is Up with this peer: a peer in BFD strict mode (`bfd_strict`) may now
    /// have its session, until the next `ForwardingDown`. Remembered by address,
    /// so it may come before the peer is added.
    ForwardingUp(IpAddr),
    /// Asks the import hook again whether each learned path may be selected
    /// (what it judges by changed); best paths change where the answer did.
    Revalidate,
    /// Cease every session with this message and stop. The notices channel closes
    /// once every session has written its NOTIFICATION (or after
    /// [`SHUTDOWN_GRACE`]), so the owner may exit as soon as it does.
    Shutdown(String),
}

/// What the speaker reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The best paths to a prefix changed (for the kernel FIB). Changes the owner
    /// has not read yet are coalesced: it sees each prefix's latest state.
    Best(Change),
    PeerUp {
        address: IpAddr,
        remote_as: u32,
    },
    PeerDown {
        address: IpAddr,
        reason: String,
    },
}

#[derive(Debug)]
pub struct SpeakerHandle {
    pub requests: mpsc::UnboundedSender<Request>,
    pub notices: mpsc::Receiver<Notice>,
}

/// Starts the speaker on the current tokio runtime; binding the listeners is the
/// only thing that can fail here.
pub fn start(config: SpeakerConfig) -> Result<SpeakerHandle, TransportError> {
    start_with(config, Hooks::default())
}

/// [`start`], with import and export hooks.
pub fn start_with(config: SpeakerConfig, hooks: Hooks) -> Result<SpeakerHandle, TransportError> {
    let listeners = config
        .listen
        .iter()
        .map(|address| transport::listen(*address, TtlPolicy::Hops(64)))
        .collect::<Result<Vec<_>, _>>()?;
    let (requests, request_rx) = mpsc::unbounded_channel();
    let (notice_tx, notices) = mpsc::channel(notices::CAPACITY);
    let now = tokio::time::Instant::now().into_std();
    let core = core::Core::new(config, hooks, now);
    tokio::spawn(task::Task::new(core, listeners, notice_tx).run(request_rx));
    Ok(SpeakerHandle { requests, notices })
}
