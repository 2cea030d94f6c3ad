//! The node's BFD sessions beside its BGP sessions (RFC 5882): one per peer that
//! has BFD configured, run by the `bfd` crate's driver, started with the first.
//! A session that leaves Up for Down because the path failed (not because the peer
//! took it down on purpose, RFC 5882 section 3.2) is reported, and the agent tells
//! the speaker (`Request::ForwardingDown`). `docs/bfd.md` has the choices.

use std::collections::BTreeMap;
use std::net::IpAddr;

use bfd::State;
use bfd::driver::{Driver, DriverError, Event, PeerConfig, SessionHandle};
use tokio::sync::mpsc;

use crate::peering::BfdPeering;

/// What a BFD Down asks of the speaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardingDown {
    pub address: IpAddr,
    /// Keep the peer's routes stale if it offered graceful restart.
    pub graceful: bool,
}

/// A peer's BFD session as the status shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BfdState {
    pub state: State,
    /// Times it went from Up to Down.
    pub flaps: u64,
}

type Added = (IpAddr, PeerConfig, Result<SessionHandle, DriverError>);

#[derive(Debug)]
struct Entry {
    wanted: BfdPeering,
    /// `None` while the driver adds it (or after it failed to).
    handle: Option<SessionHandle>,
    state: State,
}

#[derive(Debug)]
pub struct BfdSessions {
    driver: Option<(Driver, mpsc::UnboundedReceiver<Event>)>,
    sessions: BTreeMap<IpAddr, Entry>,
    added: mpsc::UnboundedSender<Added>,
    added_rx: mpsc::UnboundedReceiver<Added>,
}

impl Default for BfdSessions {
    fn default() -> Self {
        let (added, added_rx) = mpsc::unbounded_channel();
        Self {
            driver: None,
            sessions: BTreeMap::new(),
            added,
            added_rx,
        }
    }
}

impl BfdSessions {
    /// Brings the sessions to `wanted` (peer address → session). A session whose
    /// addresses or hop mode changed starts anew; one whose timers changed keeps
    /// running and polls its peer (RFC 5880 section 6.8.3).
    pub fn apply(&mut self, wanted: BTreeMap<IpAddr, BfdPeering>) {
        self.sessions
            .retain(|address, _| wanted.contains_key(address));
        for (address, peering) in wanted {
            if let Some(entry) = self.sessions.get_mut(&address) {
                let same_key = entry.wanted.session.key() == peering.session.key();
                if same_key
                    && entry.wanted.session.timers != peering.session.timers
                    && let Some(handle) = &entry.handle
                {
                    handle.set_timers(peering.session.timers);
                }
                if same_key {
                    entry.wanted = peering;
                    continue;
                }
            }
            if self.driver.is_none() {
                match Driver::spawn_on_own_thread() {
                    Ok(driver) => {
                        tracing::info!("BFD driver started");
                        self.driver = Some(driver);
                    }
                    Err(error) => {
                        tracing::error!(%error, "cannot start the BFD driver; no BFD");
                        return;
                    }
                }
            }
            let Some((driver, _)) = &self.driver else {
                return;
            };
            let driver = driver.clone();
            let added = self.added.clone();
            let config = peering.session.clone();
            tokio::spawn(async move {
                let result = driver.add(config.clone()).await;
                let _ = added.send((address, config, result));
            });
            self.sessions.insert(
                address,
                Entry {
                    wanted: peering,
                    handle: None,
                    state: State::Down,
                },
            );
        }
    }

    /// The next change of a session's state, with what it asks of the speaker
    /// when the path failed; pending while there are none.
    pub async fn next_change(&mut self) -> Option<ForwardingDown> {
        loop {
            let events = self.driver.as_mut().map(|(_, events)| events);
            tokio::select! {
                Some((address, config, result)) = self.added_rx.recv() => {
                    self.added(address, &config, result);
                }
                Some(event) = next_event(events) => return self.event(&event),
                else => std::future::pending::<()>().await,
            }
        }
    }

    fn added(
        &mut self,
        address: IpAddr,
        config: &PeerConfig,
        result: Result<SessionHandle, DriverError>,
    ) {
        // A session no longer wanted as it was is dropped (and so deleted).
        let Some(entry) = self
            .sessions
            .get_mut(&address)
            .filter(|e| e.handle.is_none() && e.wanted.session.key() == config.key())
        else {
            return;
        };
        match result {
            Ok(handle) => {
                if handle.status().state != State::Down {
                    entry.state = handle.status().state;
                }
                if entry.wanted.session.timers != config.timers {
                    handle.set_timers(entry.wanted.session.timers);
                }
                tracing::info!(peer = %address, session = %handle.key(), timers = %config.timers, "BFD session added");
                entry.handle = Some(handle);
            }
            Err(error) => {
                tracing::error!(peer = %address, %error, "cannot run BFD with this peer");
            }
        }
    }

    /// Records a state change; a failure of an Up session is returned.
    fn event(&mut self, event: &Event) -> Option<ForwardingDown> {
        let (address, entry) = self.sessions.iter_mut().find(|(_, e)| {
            e.handle
                .as_ref()
                .is_some_and(|handle| handle.key() == event.key)
        })?;
        let was = std::mem::replace(&mut entry.state, event.state);
        tracing::info!(peer = %address, from = ?was, to = ?event.state, diagnostic = ?event.diagnostic, remote = ?event.remote_state, "BFD session changed state");
        let failed = was == State::Up
            && event.state == State::Down
            && event.remote_state != State::AdminDown;
        failed.then_some(ForwardingDown {
            address: *address,
            // RFC 5882 section 4.3: a peer whose BFD survives its control plane
            // (C set) failed to forward; its restart is not believed.
            graceful: entry.wanted.graceful && !event.remote_control_plane_independent,
        })
    }

    /// Every session's state, by peer.
    pub fn states(&self) -> BTreeMap<IpAddr, BfdState> {
        self.sessions
            .iter()
            .map(|(address, entry)| {
                let flaps = entry.handle.as_ref().map_or(0, |h| h.status().flaps);
                let state = BfdState {
                    state: entry.state,
                    flaps,
                };
                (*address, state)
            })
            .collect()
    }
}

async fn next_event(events: Option<&mut mpsc::UnboundedReceiver<Event>>) -> Option<Event> {
    match events {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}
