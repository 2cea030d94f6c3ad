//! tabby's BFD against real BIRD (`protocol bfd`) and FRR (bfdd without zebra).
//!
//! ```text
//!   subnet a (10.0.1.0/24, fd00:1::/64)          subnet b (10.0.2.0/24, fd00:2::/64)
//!   tabby ──single-hop v4+v6── near          router ──────── far
//!     └───────────── multihop v4+v6 (one router between) ──────┘
//! ```
//!
//! Four sessions at once, default timers (300 ms × 3, a 900 ms Detection Time), both
//! sides read: tabby's session status and the daemon's CLI. Every failure must take
//! both sides' sessions Down, and its end must bring them back Up. The time each
//! side took is printed; the diagnostic shows which mechanism noticed.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use bfd::driver::Hop;
use bfd::{Diagnostic, State};
use harness::peers::{BfdPeer, BfdSession, Bfdd, BgpConfig, Bird};
use harness::tabby_bfd::{TabbyBfd, peer};
use harness::{Lab, Node, require_root};

/// Time for a session to come up: packets go once a second until it is Up.
const UP: Duration = Duration::from_secs(20);
/// Time allowed to see a session go down: the 900 ms Detection Time plus polling a
/// daemon's CLI on a loaded machine.
const DOWN: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
enum Daemon {
    Bird,
    Frr,
}

impl Daemon {
    /// How tabby reaches `far`: BIRD 2.0 sends multihop packets with the system's
    /// default TTL (64), FRR with 255; one router lies between.
    fn multihop(self) -> Hop {
        match self {
            Daemon::Bird => Hop::Multi { min_ttl: 63 },
            Daemon::Frr => Hop::Multi { min_ttl: 254 },
        }
    }
}

/// A daemon on `near` (single-hop) or `far` (multihop).
enum Peer {
    Bird(Bird),
    Frr(Bfdd),
}

impl Peer {
    fn start(daemon: Daemon, node: &Node, config: &BgpConfig) -> Self {
        match daemon {
            Daemon::Bird => Peer::Bird(Bird::start(node, config).unwrap()),
            Daemon::Frr => Peer::Frr(Bfdd::start(node, config).unwrap()),
        }
    }

    fn bfd(&self) -> &dyn BfdPeer {
        match self {
            Peer::Bird(bird) => bird,
            Peer::Frr(bfdd) => bfdd,
        }
    }

    /// The daemon's diagnostic of its session with `remote`, where it shows one
    /// (BIRD's CLI does not).
    fn diagnostic(&self, remote: IpAddr) -> Option<String> {
        let Peer::Frr(bfdd) = self else {
            return None;
        };
        let peer = bfdd.peer(remote).unwrap()?;
        Some(peer["diagnostic"].as_str()?.to_owned())
    }
}

struct Topology {
    lab: Lab,
    daemon: Daemon,
    near: Option<Peer>,
    far: Option<Peer>,
}

impl Topology {
    fn new(test: &str, daemon: Daemon) -> Self {
        let lab = Lab::new(test)
            .subnet("a", "10.0.1.0/24")
            .ipv6("a", "fd00:1::/64")
            .subnet("b", "10.0.2.0/24")
            .ipv6("b", "fd00:2::/64")
            .node("tabby", "a")
            .node("near", "a")
            .node("far", "b")
            .build()
            .unwrap();
        let mut topology = Self {
            lab,
            daemon,
            near: None,
            far: None,
        };
        topology.start_peers();
        topology
    }

    fn node(&self, name: &str) -> &Node {
        self.lab.node(name)
    }

    /// The addresses of `node` (IPv4, IPv6).
    fn addresses(&self, node: &str) -> [IpAddr; 2] {
        let node = self.node(node);
        [node.address(), node.address6().unwrap()]
    }

    /// (tabby's address, the peer's address, multihop) of every session.
    fn sessions(&self) -> Vec<(IpAddr, IpAddr, bool)> {
        let tabby = self.addresses("tabby");
        let mut sessions = Vec::new();
        for (node, multihop) in [("near", false), ("far", true)] {
            for (local, remote) in tabby.into_iter().zip(self.addresses(node)) {
                sessions.push((local, remote, multihop));
            }
        }
        sessions
    }

    fn start_peers(&mut self) {
        let tabby = self.addresses("tabby");
        for (name, multihop) in [("near", false), ("far", true)] {
            let node = self.node(name);
            let mut config = BgpConfig::new(65001, node.ipv4().unwrap());
            for (local, remote) in self.addresses(name).into_iter().zip(tabby) {
                config = config.bfd_session(BfdSession {
                    remote,
                    local,
                    multihop,
                });
            }
            let peer = Some(Peer::start(self.daemon, node, &config));
            if multihop {
                self.far = peer;
            } else {
                self.near = peer;
            }
        }
    }

    /// Kills both daemons.
    fn stop_peers(&mut self) {
        self.near = None;
        self.far = None;
    }

    fn start_tabby(&self) -> TabbyBfd {
        let peers = self
            .sessions()
            .into_iter()
            .map(|(local, remote, multihop)| {
                let hop = if multihop {
                    self.daemon.multihop()
                } else {
                    Hop::Single
                };
                peer(local, remote, hop)
            })
            .collect();
        TabbyBfd::start(self.node("tabby"), peers)
    }

    /// The daemon holding the session with tabby's `remote`.
    fn peer_of(&self, remote: IpAddr) -> &Peer {
        let near = self.addresses("near").contains(&remote);
        let peer = if near { &self.near } else { &self.far };
        peer.as_ref().expect("the daemon runs")
    }

    /// Waits until tabby's session and the daemon's agree on `state`.
    fn wait_both(&self, tabby: &TabbyBfd, state: State, timeout: Duration) {
        for (local, remote, _) in self.sessions() {
            tabby.wait_state(remote, state, timeout).unwrap();
            self.peer_of(remote)
                .bfd()
                .wait_bfd_state(local, state, timeout)
                .unwrap();
        }
    }

    /// Waits until every daemon's session has left Up, printing how long that took
    /// and the daemon's diagnostic (FRR's CLI shows it; BIRD's does not), which
    /// must be `diagnostic`.
    fn wait_peers_down(&self, since: Instant, diagnostic: &str) {
        for (local, remote, _) in self.sessions() {
            let peer = self.peer_of(remote);
            let state = peer
                .bfd()
                .wait_bfd_down(local, DOWN)
                .unwrap_or_else(|e| panic!("{:?}'s session with {local}: {e:#}", self.daemon));
            let seen = peer.diagnostic(local);
            eprintln!(
                "{:?} on {remote}: session with {local} {state} ({}) after {:?}",
                self.daemon,
                seen.as_deref().unwrap_or("no diagnostic shown"),
                since.elapsed()
            );
            if let Some(seen) = seen {
                assert_eq!(seen, diagnostic, "{:?} on {remote}", self.daemon);
            }
        }
    }

    /// Waits until every tabby session has left Up, printing how long that took,
    /// and checks the owner was told Down with one of `diagnostics`.
    fn wait_tabby_down(&self, tabby: &mut TabbyBfd, since: Instant, diagnostics: &[Diagnostic]) {
        for (_, remote, _) in self.sessions() {
            let status = tabby.wait_down(remote, DOWN).unwrap();
            eprintln!(
                "tabby's session with {remote} {} after {:?}",
                status.state,
                since.elapsed()
            );
        }
        let events = tabby.events();
        for session in tabby.sessions() {
            let down = events
                .iter()
                .find(|e| e.key == session.key() && e.state == State::Down);
            assert!(
                down.is_some_and(|e| diagnostics.contains(&e.diagnostic)),
                "{}: expected Down with one of {diagnostics:?} in {events:?}",
                session.key()
            );
        }
    }
}

/// Both sides Up, and tabby's events so far read.
fn up(test: &str, daemon: Daemon) -> (Topology, TabbyBfd) {
    let topology = Topology::new(test, daemon);
    let mut tabby = topology.start_tabby();
    topology.wait_both(&tabby, State::Up, UP);
    tabby.events();
    (topology, tabby)
}

fn peer_is_killed(test: &str, daemon: Daemon) {
    let (mut topology, mut tabby) = up(test, daemon);
    let since = Instant::now();
    topology.stop_peers();
    topology.wait_tabby_down(
        &mut tabby,
        since,
        &[Diagnostic::ControlDetectionTimeExpired],
    );
    topology.start_peers();
    topology.wait_both(&tabby, State::Up, UP);
    for session in tabby.sessions() {
        assert_eq!(session.status().flaps, 1, "{}", session.key());
    }
}

fn tabby_stops(test: &str, daemon: Daemon) {
    let (topology, tabby) = up(test, daemon);
    // Killed: the peers hear nothing more.
    let since = Instant::now();
    tabby.crash();
    topology.wait_peers_down(since, "control detection time expired");
    let tabby = topology.start_tabby();
    topology.wait_both(&tabby, State::Up, UP);
    // Held down: the peers are told (RFC 5880 section 6.8.16).
    let since = Instant::now();
    for session in tabby.sessions() {
        session.admin_down();
    }
    topology.wait_peers_down(since, "neighbor signaled session down");
    for session in tabby.sessions() {
        assert_eq!(session.status().state, State::AdminDown);
        session.admin_up();
    }
    topology.wait_both(&tabby, State::Up, UP);
}

fn link_goes_down(test: &str, daemon: Daemon) {
    let (topology, mut tabby) = up(test, daemon);
    // The cable is cut: tabby's eth0 loses its carrier, its routes stay.
    let since = Instant::now();
    topology
        .lab
        .underlay()
        .ip("link set dev v-tabby down")
        .unwrap();
    topology.wait_tabby_down(
        &mut tabby,
        since,
        &[Diagnostic::ControlDetectionTimeExpired],
    );
    topology.wait_peers_down(since, "control detection time expired");
    topology
        .lab
        .underlay()
        .ip("link set dev v-tabby up")
        .unwrap();
    topology.wait_both(&tabby, State::Up, UP);
}

/// An nftables table in tabby's namespace dropping BFD packets in one direction.
fn drop_bfd(node: &Node, hook: &str) {
    let ruleset = format!(
        "table inet tabby_bfd_test {{ chain filter {{ type filter hook {hook} priority 0; \
         udp dport {{ 3784, 4784 }} drop; }}; }}"
    );
    node.exec("nft", &[&ruleset]).unwrap();
}

fn packets_are_dropped(test: &str, daemon: Daemon) {
    let (topology, mut tabby) = up(test, daemon);
    let node = topology.node("tabby");
    // What the peers send is lost: tabby notices the silence and says Down, but
    // with Your Discriminator zero after a Detection Time of silence (RFC 5880
    // section 6.8.1), which FRR ignores while Up: FRR times out as well.
    let since = Instant::now();
    drop_bfd(node, "input");
    topology.wait_tabby_down(
        &mut tabby,
        since,
        &[Diagnostic::ControlDetectionTimeExpired],
    );
    topology.wait_peers_down(since, "control detection time expired");
    node.exec("nft", &["delete table inet tabby_bfd_test"])
        .unwrap();
    topology.wait_both(&tabby, State::Up, UP);
    // What tabby sends is lost: the peers notice and tell tabby.
    let since = Instant::now();
    drop_bfd(node, "output");
    topology.wait_peers_down(since, "control detection time expired");
    topology.wait_tabby_down(
        &mut tabby,
        since,
        &[
            Diagnostic::NeighborSignaledSessionDown,
            Diagnostic::ControlDetectionTimeExpired,
        ],
    );
    node.exec("nft", &["delete table inet tabby_bfd_test"])
        .unwrap();
    topology.wait_both(&tabby, State::Up, UP);
}

#[test]
#[ignore = "needs root"]
fn interop_bfd_with_bird_goes_down_when_bird_is_killed_and_comes_back_up() {
    require_root();
    peer_is_killed(
        "interop_bfd_with_bird_goes_down_when_bird_is_killed_and_comes_back_up",
        Daemon::Bird,
    );
}

#[test]
#[ignore = "needs root"]
fn interop_bfd_with_frr_goes_down_when_bfdd_is_killed_and_comes_back_up() {
    require_root();
    peer_is_killed(
        "interop_bfd_with_frr_goes_down_when_bfdd_is_killed_and_comes_back_up",
        Daemon::Frr,
    );
}

#[test]
#[ignore = "needs root"]
fn interop_bfd_with_bird_goes_down_when_tabby_stops_or_holds_it_down_and_comes_back_up() {
    require_root();
    tabby_stops(
        "interop_bfd_with_bird_goes_down_when_tabby_stops_or_holds_it_down_and_comes_back_up",
        Daemon::Bird,
    );
}

#[test]
#[ignore = "needs root"]
fn interop_bfd_with_frr_goes_down_when_tabby_stops_or_holds_it_down_and_comes_back_up() {
    require_root();
    tabby_stops(
        "interop_bfd_with_frr_goes_down_when_tabby_stops_or_holds_it_down_and_comes_back_up",
        Daemon::Frr,
    );
}

#[test]
#[ignore = "needs root"]
fn interop_bfd_with_bird_goes_down_when_the_link_goes_down_and_comes_back_up() {
    require_root();
    link_goes_down(
        "interop_bfd_with_bird_goes_down_when_the_link_goes_down_and_comes_back_up",
        Daemon::Bird,
    );
}

#[test]
#[ignore = "needs root"]
fn interop_bfd_with_frr_goes_down_when_the_link_goes_down_and_comes_back_up() {
    require_root();
    link_goes_down(
        "interop_bfd_with_frr_goes_down_when_the_link_goes_down_and_comes_back_up",
        Daemon::Frr,
    );
}

#[test]
#[ignore = "needs root"]
fn interop_bfd_with_bird_goes_down_when_nftables_drops_either_direction_and_comes_back_up() {
    require_root();
    packets_are_dropped(
        "interop_bfd_with_bird_goes_down_when_nftables_drops_either_direction_and_comes_back_up",
        Daemon::Bird,
    );
}

#[test]
#[ignore = "needs root"]
fn interop_bfd_with_frr_goes_down_when_nftables_drops_either_direction_and_comes_back_up() {
    require_root();
    packets_are_dropped(
        "interop_bfd_with_frr_goes_down_when_nftables_drops_either_direction_and_comes_back_up",
        Daemon::Frr,
    );
}
