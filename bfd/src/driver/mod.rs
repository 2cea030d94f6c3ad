//! The tokio driver: many [`Session`](crate::session::Session)s over UDP, single-hop
//! (RFC 5881, port 3784, TTL 255 sent and required) and multihop (RFC 5883, port
//! 4784, a minimum TTL per session), IPv4 and IPv6.
//!
//! ```text
//!                  add(PeerConfig) ──▶ ┌────────────┐ ◀── datagrams ── reader (v4, 3784)
//!   owner ── Driver ─────────────────▶ │ dispatcher │ ◀── datagrams ── reader (v6, 3784)
//!     ▲      SessionHandle ◀── reply ─ │  demux by  │ ◀── datagrams ── reader (v4, 4784) ...
//!     │        │  admin, timers        │ Your Discr │      (one per family and port in use,
//!     │        ▼                       │ or address │       checks nothing, decodes)
//!     │   session task ◀── packets ─── └────────────┘
//!     │    Session (sans-IO), its two timers, its own sending socket ──▶ peer
//!     └── events (state changes, every session) ◀─┘   status (watch) ──▶ SessionHandle
//! ```
//!
//! The dispatcher owns the demultiplexing table and the receiving sockets (opened
//! in the network namespace of the runtime's threads when the first session of
//! their kind is added). It picks the session by Your Discriminator, or by
//! addresses while that is zero, checks the source address and the TTL against the
//! session, and hands the packet to the session's task; a full queue drops it, as
//! the network would. Each session task owns its [`Session`](crate::session::Session),
//! its timers and its sending socket.
//!
//! Dropping a [`SessionHandle`] deletes the session: it sends one AdminDown packet
//! (so a peer following RFC 5882 section 3.2 does not treat the deletion as a
//! failure) and its timers go with its task. Dropping the [`Driver`] ends every
//! session at once, silently, as a crash would.

mod dispatch;
mod socket;
mod task;
mod timer;

pub use socket::{MULTIHOP_PORT, SINGLE_HOP_PORT, SOURCE_PORTS, TTL};

use std::fmt;
use std::net::IpAddr;

use tokio::sync::{mpsc, oneshot, watch};

use crate::packet::{Diagnostic, State};
use crate::session::{Status, Timers};

/// How a peer is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hop {
    /// Directly connected: port 3784; packets arrive with TTL 255 or are dropped.
    Single,
    /// Behind routers: port 4784; packets that arrive with a TTL below `min_ttl`
    /// crossed too many routers and are dropped (254: one router).
    Multi { min_ttl: u8 },
}

/// A session to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    pub remote: IpAddr,
    /// This system's address the session sends from and the peer sends to.
    pub local: IpAddr,
    pub hop: Hop,
    pub timers: Timers,
}

/// What names a session on this system: one per address pair and hop mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionKey {
    pub remote: IpAddr,
    pub local: IpAddr,
    pub multihop: bool,
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hop = if self.multihop {
            "multihop"
        } else {
            "single-hop"
        };
        write!(f, "{} from {} ({hop})", self.remote, self.local)
    }
}

impl PeerConfig {
    pub fn key(&self) -> SessionKey {
        SessionKey {
            remote: self.remote,
            local: self.local,
            multihop: matches!(self.hop, Hop::Multi { .. }),
        }
    }
}

/// A session changed state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub key: SessionKey,
    pub state: State,
    pub diagnostic: Diagnostic,
    /// AdminDown here means the peer took the session down on purpose: RFC 5882
    /// section 3.2 says a client must not treat that as a failure.
    pub remote_state: State,
    /// The peer's C bit (RFC 5882 section 4.3).
    pub remote_control_plane_independent: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("session {0} exists already")]
    Duplicate(SessionKey),
    #[error("session {0}: local and remote addresses are of different families")]
    FamilyMismatch(SessionKey),
    #[error("session {key}: {what}: {source}")]
    Io {
        key: SessionKey,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("the driver has stopped")]
    Stopped,
}

/// Commands to a running session.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Command {
    AdminDown,
    AdminUp,
    SetTimers(Timers),
}

/// The running driver; see the module documentation. Clones drive the same
/// sessions (adding is async, so an owner may add from a task of its own).
#[derive(Debug, Clone)]
pub struct Driver {
    requests: mpsc::UnboundedSender<dispatch::Request>,
}

impl Driver {
    /// Starts the dispatcher on the current tokio runtime. Every session's state
    /// changes arrive on the returned channel, unbounded so that a slow owner never
    /// delays a session's packets (changes are few: at most one per received packet).
    pub fn spawn() -> (Self, mpsc::UnboundedReceiver<Event>) {
        let (events, receiver) = mpsc::unbounded_channel();
        let requests = dispatch::spawn(events);
        (Self { requests }, receiver)
    }

    /// [`Driver::spawn`] on a thread of its own, with a runtime of its own, in the
    /// caller's network namespace. An owner whose runtime is busy (a daemon
    /// reconciling the kernel on a loaded node) then never delays a packet or a
    /// Detection Time: without this, a busy agent fell silent for longer than
    /// 900 ms and its peers declared it down (seen in `e2e_bfd_mesh`). The thread
    /// lives as long as the process, for a daemon's one driver.
    pub fn spawn_on_own_thread() -> std::io::Result<(Self, mpsc::UnboundedReceiver<Event>)> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (started, driver) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("bfd".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let _ = started.send(Driver::spawn());
                    std::future::pending::<()>().await;
                });
            })?;
        driver
            .recv()
            .map_err(|_| std::io::Error::other("the BFD thread ended at its start"))
    }

    /// Creates a session and starts it (in Down state, sending at once).
    pub async fn add(&self, peer: PeerConfig) -> Result<SessionHandle, DriverError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(dispatch::Request::Add { peer, reply })
            .map_err(|_| DriverError::Stopped)?;
        answer.await.map_err(|_| DriverError::Stopped)?
    }
}

/// A running session; dropping it deletes the session.
#[derive(Debug)]
pub struct SessionHandle {
    key: SessionKey,
    discriminator: u32,
    commands: mpsc::UnboundedSender<Command>,
    status: watch::Receiver<Status>,
    requests: mpsc::WeakUnboundedSender<dispatch::Request>,
}

impl Drop for SessionHandle {
    fn drop(&mut self) {
        // Close the command channel first: the task then says goodbye however soon
        // the dispatcher, told next, stops routing packets to it.
        let (closed, _) = mpsc::unbounded_channel();
        drop(std::mem::replace(&mut self.commands, closed));
        if let Some(requests) = self.requests.upgrade() {
            let _ = requests.send(dispatch::Request::Remove(self.discriminator));
        }
    }
}

impl SessionHandle {
    pub fn key(&self) -> SessionKey {
        self.key
    }

    /// The session as of its last input.
    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// A receiver that sees every status change.
    pub fn watch(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// Holds the session in AdminDown; the peer is told.
    pub fn admin_down(&self) {
        let _ = self.commands.send(Command::AdminDown);
    }

    pub fn admin_up(&self) {
        let _ = self.commands.send(Command::AdminUp);
    }

    /// New timers, announced with a Poll Sequence while Up.
    pub fn set_timers(&self, timers: Timers) {
        let _ = self.commands.send(Command::SetTimers(timers));
    }
}
