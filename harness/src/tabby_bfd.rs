//! tabby's BFD driver run inside a node's namespace on a thread of its own, so the
//! test thread stays free to break things and ask the peers.

use std::net::IpAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::{Node, wait_until};
use anyhow::Result;
use bfd::driver::{Driver, Event, Hop, PeerConfig, SessionHandle};
use bfd::{State, Status, Timers};
use tokio::sync::{mpsc, oneshot};

/// A session of tabby's with the default timers.
pub fn peer(local: IpAddr, remote: IpAddr, hop: Hop) -> PeerConfig {
    PeerConfig {
        remote,
        local,
        hop,
        timers: Timers::default(),
    }
}

/// Multihop with at most one router between, for peers sending with TTL 255.
pub const ONE_ROUTER: Hop = Hop::Multi { min_ttl: 254 };

/// A running driver and its sessions. Dropping it (or [`TabbyBfd::crash`]) stops
/// the runtime between two polls: the sessions fall silent, as when the agent is
/// killed.
#[derive(Debug)]
pub struct TabbyBfd {
    sessions: Vec<SessionHandle>,
    events: mpsc::UnboundedReceiver<Event>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    driver: mpsc::UnboundedSender<PeerConfig>,
    added: std::sync::mpsc::Receiver<SessionHandle>,
}

impl TabbyBfd {
    /// Starts a driver in `node`'s namespace with a session per `peers`.
    pub fn start(node: &Node, peers: Vec<PeerConfig>) -> Self {
        let name = node.name().to_owned();
        let netns = node.netns().name().to_owned();
        let (ready, started) = std::sync::mpsc::channel();
        let (adds, mut add_queue) = mpsc::unbounded_channel::<PeerConfig>();
        let (added_tx, added) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("tabby-bfd-{name}"))
            .spawn(move || {
                crate::in_netns(&netns, move || {
                    crate::runtime().block_on(async move {
                        let (driver, events) = Driver::spawn();
                        let mut sessions = Vec::new();
                        for peer in peers {
                            sessions.push(driver.add(peer).await.expect("adding a BFD session"));
                        }
                        ready.send((sessions, events)).unwrap();
                        let serve_adds = async {
                            while let Some(peer) = add_queue.recv().await {
                                let handle = driver.add(peer).await.expect("adding a BFD session");
                                if added_tx.send(handle).is_err() {
                                    return;
                                }
                            }
                        };
                        tokio::select! {
                            _ = stopped => {}
                            () = serve_adds => {}
                        }
                    })
                })
                .expect("entering the node's namespace");
            })
            .expect("starting a thread");
        let (sessions, events) = started
            .recv_timeout(Duration::from_secs(10))
            .expect("the BFD driver started");
        Self {
            sessions,
            events,
            stop: Some(stop),
            thread: Some(thread),
            driver: adds,
            added,
        }
    }

    /// Adds a session to the running driver.
    pub fn add(&mut self, peer: PeerConfig) {
        self.driver.send(peer).expect("the BFD driver runs");
        let handle = self
            .added
            .recv_timeout(Duration::from_secs(10))
            .expect("the session was added");
        self.sessions.push(handle);
    }

    /// Deletes the session with `remote`: its handle is dropped.
    pub fn remove(&mut self, remote: IpAddr) {
        let index = self
            .sessions
            .iter()
            .position(|s| s.key().remote == remote)
            .unwrap_or_else(|| panic!("no session with {remote}"));
        self.sessions.remove(index);
    }

    pub fn session(&self, remote: IpAddr) -> &SessionHandle {
        self.sessions
            .iter()
            .find(|s| s.key().remote == remote)
            .unwrap_or_else(|| panic!("no session with {remote}"))
    }

    pub fn sessions(&self) -> &[SessionHandle] {
        &self.sessions
    }

    /// Waits until the session with `remote` is in `state`; returns its status.
    pub fn wait_state(&self, remote: IpAddr, state: State, timeout: Duration) -> Result<Status> {
        self.wait(remote, &state.to_string(), timeout, |s| s == state)
    }

    /// Waits until the session with `remote` has left Up (Down, or Init again when
    /// the peer keeps sending); returns its status.
    pub fn wait_down(&self, remote: IpAddr, timeout: Duration) -> Result<Status> {
        self.wait(remote, "down", timeout, |s| s != State::Up)
    }

    fn wait(
        &self,
        remote: IpAddr,
        what: &str,
        timeout: Duration,
        ready: impl Fn(State) -> bool,
    ) -> Result<Status> {
        let session = self.session(remote);
        wait_until(
            timeout,
            &format!("tabby's BFD session with {remote} {what}"),
            || {
                let status = session.status();
                Ok(if ready(status.state) {
                    Ok(status)
                } else {
                    Err(format!("{status:?}"))
                })
            },
        )
    }

    /// Every state change reported since the last call.
    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.events.try_recv().ok()).collect()
    }

    /// Stops the driver without a word to the peers.
    pub fn crash(self) {}
}

impl Drop for TabbyBfd {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
