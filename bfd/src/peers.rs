//! A BGP speaker's BFD sessions beside its BGP sessions (RFC 5882), as tabby-agent
//! and tabby-reflector run them: one per peer that has BFD configured, run by the
//! [`driver`](crate::driver), which starts with the first on its own thread. A
//! session that leaves Up for Down because the path failed (not because the peer
//! took it down on purpose, RFC 5882 section 3.2) is reported as [`Failed`], and
//! the daemon tells its speaker (`bgp`'s `Request::ForwardingDown`); one that
//! comes Up is reported too, for BFD strict mode (`Request::ForwardingUp`).
//! `docs/bfd.md` has the choices.

use std::collections::BTreeMap;
use std::net::IpAddr;

use tokio::sync::mpsc;

use crate::driver::{Driver, DriverError, Event, Hop, MULTIHOP_PORT, PeerConfig, SessionHandle};
use crate::{State, Timers};

/// A BFD session beside a BGP session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peering {
    pub session: PeerConfig,
    /// Graceful restart wins over a BFD Down (`gracefulRestartOnDown`).
    pub graceful: bool,
}

/// What a session's change asks of the speaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// BFD came Up: a BFD-strict peer's BGP session may start.
    Up(IpAddr),
    Failed(Failed),
}

/// A peer's path failed: what a BFD Down asks of the speaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed {
    pub address: IpAddr,
    /// Keep the peer's routes stale if it offered graceful restart.
    pub graceful: bool,
}

/// A peer's BFD session as the status shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerState {
    pub state: State,
    /// Times it went from Up to Down.
    pub flaps: u64,
}

type Added = (IpAddr, PeerConfig, Result<SessionHandle, DriverError>);

#[derive(Debug)]
struct Entry {
    wanted: Peering,
    /// `None` while the driver adds it (or after it failed to).
    handle: Option<SessionHandle>,
    state: State,
}

#[derive(Debug)]
pub struct Peers {
    driver: Option<(Driver, mpsc::UnboundedReceiver<Event>)>,
    sessions: BTreeMap<IpAddr, Entry>,
    added: mpsc::UnboundedSender<Added>,
    added_rx: mpsc::UnboundedReceiver<Added>,
}

impl Default for Peers {
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

impl Peers {
    /// Brings the sessions to `wanted` (peer address → session). A session whose
    /// addresses or hop mode changed starts anew; one whose timers changed keeps
    /// running and polls its peer (RFC 5880 section 6.8.3).
    pub fn apply(&mut self, wanted: BTreeMap<IpAddr, Peering>) {
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
    /// when it came Up or the path failed; pending while there are none.
    pub async fn next_change(&mut self) -> Option<Change> {
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

    /// Records a state change; an Up, or a failure of an Up session, is returned. Matched by
    /// the wanted session, not its handle: the driver's thread runs a session
    /// before its handle reaches this owner, and a change then is no less real.
    fn event(&mut self, event: &Event) -> Option<Change> {
        let (address, entry) = self
            .sessions
            .iter_mut()
            .find(|(_, e)| e.wanted.session.key() == event.key)?;
        let was = std::mem::replace(&mut entry.state, event.state);
        tracing::info!(peer = %address, from = ?was, to = ?event.state, diagnostic = ?event.diagnostic, remote = ?event.remote_state, "BFD session changed state");
        if was != State::Up && event.state == State::Up {
            return Some(Change::Up(*address));
        }
        let failed = was == State::Up
            && event.state == State::Down
            && event.remote_state != State::AdminDown;
        failed.then_some(Change::Failed(Failed {
            address: *address,
            // RFC 5882 section 4.3: a peer whose BFD survives its control plane
            // (C set) failed to forward; its restart is not believed.
            graceful: entry.wanted.graceful && !event.remote_control_plane_independent,
        }))
    }

    /// The peers whose session is Up, for a speaker started anew (BFD strict
    /// mode: its peers wait for `Request::ForwardingUp`).
    pub fn up(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.sessions
            .iter()
            .filter(|(_, e)| e.state == State::Up)
            .map(|(address, _)| *address)
    }

    /// Takes every session AdminDown and waits (at most `within`) until each has
    /// told its peer, for a planned stop: a peer following RFC 5882 section 3.2
    /// then does not take the stop for a forwarding failure (RFC 5880 6.8.16),
    /// and graceful restart keeps this system's routes while it is away.
    pub async fn admin_down(&mut self, within: std::time::Duration) {
        let mut watches = Vec::new();
        for handle in self.sessions.values().filter_map(|e| e.handle.as_ref()) {
            handle.admin_down();
            watches.push(handle.watch());
        }
        let told = async {
            for mut watch in watches {
                let _ = watch.wait_for(|s| s.state == State::AdminDown).await;
            }
        };
        let _ = tokio::time::timeout(within, told).await;
    }

    /// Every session's state, by peer.
    pub fn states(&self) -> BTreeMap<IpAddr, PeerState> {
        self.sessions
            .iter()
            .map(|(address, entry)| {
                let flaps = entry.handle.as_ref().map_or(0, |h| h.status().flaps);
                let state = PeerState {
                    state: entry.state,
                    flaps,
                };
                (*address, state)
            })
            .collect()
    }
}

/// How many of `states` are in each state, labelled as the daemons' `/metrics`
/// label them.
pub fn count_by_state(states: impl Iterator<Item = State> + Clone) -> [(&'static str, usize); 4] {
    [
        ("up", State::Up),
        ("init", State::Init),
        ("down", State::Down),
        ("admin_down", State::AdminDown),
    ]
    .map(|(name, state)| (name, states.clone().filter(|s| *s == state).count()))
}

async fn next_event(events: Option<&mut mpsc::UnboundedReceiver<Event>>) -> Option<Event> {
    match events {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}

impl Peering {
    /// A session to `remote` as this system's interfaces place it, for a daemon
    /// that is told no local address (tabby-reflector): single-hop (RFC 5881) from
    /// the interface address whose subnet holds `remote`, else multihop (RFC 5883)
    /// from the source address the kernel's routes pick, accepting any TTL (as an
    /// iBGP session without GTSM does). Read in the caller's network namespace.
    pub fn towards(remote: IpAddr, timers: Timers, graceful: bool) -> std::io::Result<Self> {
        let interfaces: Vec<(IpAddr, IpAddr)> = nix::ifaddrs::getifaddrs()?
            .filter_map(|i| Some((ip(i.address?)?, ip(i.netmask?)?)))
            .collect();
        let (local, hop) = match on_link(remote, &interfaces) {
            Some(local) => (local, Hop::Single),
            None => {
                let any = match remote {
                    IpAddr::V4(_) => IpAddr::from([0u8; 4]),
                    IpAddr::V6(_) => IpAddr::from([0u16; 8]),
                };
                // Connecting a UDP socket sends nothing: it only looks the route up.
                let socket = std::net::UdpSocket::bind((any, 0))?;
                socket.connect((remote, MULTIHOP_PORT))?;
                (socket.local_addr()?.ip(), Hop::Multi { min_ttl: 1 })
            }
        };
        let session = PeerConfig {
            remote,
            local,
            hop,
            timers,
        };
        Ok(Self { session, graceful })
    }
}

/// The address among `interfaces` (address, netmask) whose subnet holds `remote`.
fn on_link(remote: IpAddr, interfaces: &[(IpAddr, IpAddr)]) -> Option<IpAddr> {
    let bits = |a: IpAddr| match a {
        IpAddr::V4(a) => u128::from(a.to_bits()),
        IpAddr::V6(a) => a.to_bits(),
    };
    interfaces
        .iter()
        .filter(|(address, mask)| {
            address.is_ipv4() == remote.is_ipv4()
                && mask.is_ipv4() == remote.is_ipv4()
                && !address.is_loopback()
                && *address != remote
                && bits(*address) & bits(*mask) == bits(remote) & bits(*mask)
        })
        .map(|(address, _)| *address)
        .next()
}

fn ip(address: nix::sys::socket::SockaddrStorage) -> Option<IpAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(v4.ip().into());
    }
    address.as_sockaddr_in6().map(|v6| v6.ip().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::SessionKey;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// A session waiting for its handle, as `apply` leaves it.
    fn pending(remote: &str) -> (Peers, SessionKey) {
        let session = PeerConfig {
            remote: ip(remote),
            local: ip("10.0.1.1"),
            hop: Hop::Single,
            timers: Timers::default(),
        };
        let key = session.key();
        let mut peers = Peers::default();
        let wanted = Peering {
            session,
            graceful: false,
        };
        let entry = Entry {
            wanted,
            handle: None,
            state: State::Down,
        };
        peers.sessions.insert(ip(remote), entry);
        (peers, key)
    }

    fn changed(key: SessionKey, state: State, remote_state: State) -> Event {
        Event {
            key,
            state,
            diagnostic: crate::Diagnostic::NoDiagnostic,
            remote_state,
            remote_control_plane_independent: false,
        }
    }

    #[test]
    fn a_session_that_comes_up_before_its_handle_arrives_is_up_and_its_failure_reported() {
        // The driver runs sessions on a thread of its own: a session can change
        // state before the owner has taken its handle (seen in CI: a session Up on
        // both sides shown Down for two minutes, and its failure never reported).
        let (mut peers, key) = pending("10.0.1.2");
        assert_eq!(
            peers.event(&changed(key, State::Up, State::Init)),
            Some(Change::Up(ip("10.0.1.2")))
        );
        assert_eq!(peers.states()[&ip("10.0.1.2")].state, State::Up);
        assert_eq!(peers.up().collect::<Vec<_>>(), [ip("10.0.1.2")]);
        assert_eq!(
            peers.event(&changed(key, State::Down, State::Up)),
            Some(Change::Failed(Failed {
                address: ip("10.0.1.2"),
                graceful: false
            }))
        );
        assert_eq!(peers.up().count(), 0);
    }

    #[test]
    fn a_peer_is_on_link_through_the_interface_address_whose_subnet_holds_it() {
        let interfaces = [
            (ip("127.0.0.1"), ip("255.0.0.0")),
            (ip("10.0.1.250"), ip("255.255.255.0")),
            (ip("fd00:1::fa"), ip("ffff:ffff:ffff:ffff::")),
            (ip("10.0.2.1"), ip("255.255.255.0")),
        ];
        assert_eq!(on_link(ip("10.0.1.7"), &interfaces), Some(ip("10.0.1.250")));
        assert_eq!(on_link(ip("10.0.2.9"), &interfaces), Some(ip("10.0.2.1")));
        assert_eq!(
            on_link(ip("fd00:1::7"), &interfaces),
            Some(ip("fd00:1::fa"))
        );
        assert_eq!(
            on_link(ip("10.0.3.7"), &interfaces),
            None,
            "behind a router"
        );
        assert_eq!(on_link(ip("127.0.0.2"), &interfaces), None, "not loopback");
        assert_eq!(on_link(ip("fd00:2::7"), &interfaces), None);
    }
}
