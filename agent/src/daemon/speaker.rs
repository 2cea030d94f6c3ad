//! The embedded speaker as the agent's loop drives it: started, told the steps of
//! the wiring, restarted when its own configuration changes, and its sessions'
//! states kept for the sync check and for status.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Instant;

use api::resources::Community;
use bgp::codec::{Attributes, LargeCommunity};
use bgp::speaker::{self, Hooks, Notice, PeerStatus, Request, SpeakerHandle};
use ipnet::IpNet;
use tokio::sync::oneshot;

use super::query::Routes;
use super::status::PeerState;
use crate::peering::{DesiredBgp, PeerKind, Step, Wiring};
use bfd::peers::{Change, PeerState as BfdState};

/// The attributes an originated prefix carries for its communities (ORIGIN and AS
/// path are the speaker's defaults).
fn attributes(communities: &[Community]) -> Attributes {
    let mut attributes = Attributes::default();
    for community in communities {
        match *community {
            Community::Standard(high, low) => attributes.communities.push(bgp::codec::Community(
                (u32::from(high) << 16) | u32::from(low),
            )),
            Community::Large(global, local1, local2) => {
                attributes.large_communities.push(LargeCommunity {
                    global,
                    local1,
                    local2,
                })
            }
        }
    }
    attributes
}

/// A session's state as the notices report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub up: bool,
    pub since: Instant,
    pub last_error: Option<String>,
    pub kind: PeerKind,
    pub source: String,
}

#[derive(Debug, Default)]
pub struct Bgp {
    handle: Option<SpeakerHandle>,
    wiring: Wiring,
    sessions: BTreeMap<IpAddr, Session>,
    /// Given to every speaker started.
    hooks: Hooks,
}

/// What applying a plan did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// A new speaker was started (its routes are learned from scratch).
    pub started: bool,
}

impl Bgp {
    pub fn new(hooks: Hooks) -> Self {
        Self {
            hooks,
            ..Self::default()
        }
    }

    /// Brings the speaker to `plan`, originating `export`.
    pub fn apply(
        &mut self,
        plan: &DesiredBgp,
        export: &BTreeMap<IpNet, Vec<Community>>,
    ) -> Applied {
        let mut applied = Applied::default();
        for step in self.wiring.steps(plan, export) {
            let request = match step {
                Step::Start(config) => {
                    self.stop("reconfigured");
                    match speaker::start_with(config, self.hooks.clone()) {
                        Ok(handle) => {
                            tracing::info!("BGP speaker started");
                            self.handle = Some(handle);
                            applied.started = true;
                        }
                        Err(error) => {
                            tracing::error!(%error, "cannot start the BGP speaker; retrying at the next change");
                            self.wiring.reset();
                            return applied;
                        }
                    }
                    continue;
                }
                Step::AddPeer(config) => {
                    tracing::info!(peer = %config.address, remote_as = ?config.remote_as, "BGP peer configured");
                    let (kind, source) = plan
                        .peers
                        .get(&config.address)
                        .map(|p| (p.kind, p.source.clone()))
                        .unwrap_or((PeerKind::Global, String::new()));
                    self.sessions.insert(
                        config.address,
                        Session {
                            up: false,
                            since: Instant::now(),
                            last_error: None,
                            kind,
                            source,
                        },
                    );
                    Request::AddPeer(config)
                }
                Step::UpdatePeer(config) => {
                    tracing::info!(peer = %config.address, "BGP peer updated");
                    // The session stays up unless the speaker must restart it; its
                    // notices say so.
                    if let (Some(session), Some(peering)) = (
                        self.sessions.get_mut(&config.address),
                        plan.peers.get(&config.address),
                    ) {
                        session.kind = peering.kind;
                        session.source.clone_from(&peering.source);
                    }
                    Request::UpdatePeer(config)
                }
                Step::SetListenRanges(ranges) => Request::SetListenRanges(ranges),
                Step::RemovePeer(address) => {
                    tracing::info!(peer = %address, "BGP peer removed");
                    self.sessions.remove(&address);
                    Request::RemovePeer(address)
                }
                Step::Originate {
                    prefix,
                    communities,
                } if communities.is_empty() => Request::Originate(prefix),
                Step::Originate {
                    prefix,
                    communities,
                } => Request::OriginateWith {
                    prefix,
                    attributes: attributes(&communities),
                },
                Step::Withdraw(prefix) => Request::Withdraw(prefix),
            };
            if let Some(handle) = &self.handle {
                // A send fails only when the speaker is gone; `next_notice` notices.
                let _ = handle.requests.send(request);
            }
        }
        applied
    }

    /// The next notice; `None` when the speaker stopped (it is started again by the
    /// next `apply`). Pending while there is no speaker.
    pub async fn next_notice(&mut self) -> Option<Notice> {
        let Some(handle) = self.handle.as_mut() else {
            return std::future::pending().await;
        };
        let notice = handle.notices.recv().await;
        if notice.is_none() {
            tracing::error!("the BGP speaker stopped; starting it again");
            self.handle = None;
            self.wiring.reset();
            self.sessions.clear();
        }
        notice
    }

    /// A notice already queued, without waiting.
    pub fn try_notice(&mut self) -> Option<Notice> {
        self.handle.as_mut()?.notices.try_recv().ok()
    }

    /// Records a session's change.
    pub fn session_notice(&mut self, notice: &Notice) {
        let (address, up, error) = match notice {
            Notice::PeerUp { address, .. } => (*address, true, None),
            Notice::PeerDown { address, reason } => (*address, false, Some(reason.clone())),
            Notice::Best(_) => return,
        };
        if let Some(session) = self.sessions.get_mut(&address) {
            session.up = up;
            session.since = Instant::now();
            if error.is_some() {
                session.last_error = error;
            }
        }
    }

    /// Tells the speaker what BFD says of a peer's path: failed (its session
    /// goes down at once) or Up (a BFD-strict session may start).
    pub fn forwarding(&self, change: Change) {
        let request = match change {
            Change::Failed(down) => {
                tracing::warn!(peer = %down.address, graceful = down.graceful, "BFD down: the BGP session goes down at once");
                Request::ForwardingDown {
                    address: down.address,
                    graceful: down.graceful,
                }
            }
            Change::Up(address) => Request::ForwardingUp(address),
        };
        if let Some(handle) = &self.handle {
            let _ = handle.requests.send(request);
        }
    }

    /// Whether every configured session is established.
    pub fn all_up(&self) -> bool {
        self.sessions.values().all(|s| s.up)
    }

    /// Asks the speaker to judge every learned path again (the ownership rule's
    /// view changed).
    pub fn revalidate(&self) {
        if let Some(handle) = &self.handle {
            let _ = handle.requests.send(Request::Revalidate);
        }
    }

    /// Asks the speaker for its sessions' state.
    pub fn status(&self) -> Option<oneshot::Receiver<Vec<PeerStatus>>> {
        let (reply, answer) = oneshot::channel();
        self.handle
            .as_ref()?
            .requests
            .send(Request::Status(reply))
            .ok()?;
        Some(answer)
    }

    /// Asks the speaker for every path in its RIB.
    pub fn routes(&self) -> Option<oneshot::Receiver<Routes>> {
        let (reply, answer) = oneshot::channel();
        self.handle
            .as_ref()?
            .requests
            .send(Request::Routes(reply))
            .ok()?;
        Some(answer)
    }

    /// The sessions for the status, with their BFD sessions'.
    pub fn peers(&self, bfd: &BTreeMap<IpAddr, BfdState>) -> Vec<PeerState> {
        self.sessions
            .iter()
            .map(|(address, s)| PeerState {
                address: *address,
                kind: s.kind,
                source: s.source.clone(),
                established: s.up,
                since: s.since,
                last_error: s.last_error.clone(),
                bfd: bfd.get(address).copied(),
            })
            .collect()
    }

    /// Leaves the speaker's sessions to die with the process, without a Cease: the
    /// peers then keep this node's routes while it restarts (graceful restart).
    pub fn detach(&mut self) {
        if let Some(handle) = self.handle.take() {
            std::mem::forget(handle.requests);
        }
    }

    /// Stops the speaker with a Cease to every peer (for reconfiguration; an agent
    /// that exits just drops its sessions, so peers keep its routes as graceful
    /// restart asks).
    fn stop(&mut self, reason: &str) {
        if let Some(handle) = self.handle.take() {
            let _ = handle.requests.send(Request::Shutdown(reason.into()));
        }
        self.sessions.clear();
    }
}
