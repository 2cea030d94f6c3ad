//! Stopping and restarting tabby-reflector with real clients: SIGTERM ceases every
//! session with the configured RFC 9003 message (BIRD shows it), and a crash and
//! restart with graceful restart leaves the clients' reflected routes in place.

mod support;

use harness::peers::{BgpConfig, BgpPeer, Bird, Frr, Neighbor};
use harness::{Node, require_root};
use ipnet::IpNet;
use nix::sys::signal::Signal;
use support::{AS, Reflector, TIMEOUT, peer};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

const R1: &str = "10.100.1.0/24";
const R2: &str = "10.100.2.0/24";

/// BIRD on `c1` announcing R1, FRR on `c2` announcing R2, both clients of `rr`.
fn clients(rr: &Node, c1: &Node, c2: &Node, graceful_restart: bool) -> (Bird, Frr) {
    let mut neighbor = Neighbor::new(rr.address(), AS);
    if graceful_restart {
        neighbor = neighbor.graceful_restart(120);
    }
    let config = |node: &Node, route| {
        BgpConfig::new(AS, node.ipv4().unwrap())
            .neighbor(neighbor.clone())
            .route(net(route))
    };
    (
        Bird::start(c1, &config(c1, R1)).unwrap(),
        // FRR is a graceful-restart helper by default.
        Frr::start(c2, &config(c2, R2)).unwrap(),
    )
}

fn body(rr: &Node, c1: &Node, c2: &Node, extra: &str) -> String {
    format!(
        "asNumber: {AS}\nrouterId: {}\n{extra}peers:\n{}{}",
        rr.address(),
        peer(c1.address()),
        peer(c2.address())
    )
}

fn has(daemon: &dyn BgpPeer, prefix: &str) -> bool {
    daemon
        .routes()
        .unwrap_or_default()
        .iter()
        .any(|r| r.prefix == net(prefix))
}

#[test]
#[ignore = "needs root"]
fn sigterm_ceases_every_session_with_the_configured_shutdown_message() {
    require_root();
    let lab = support::lab("reflector_sigterm");
    let (rr, c1, c2) = (lab.node("rr"), lab.node("bird"), lab.node("frr"));
    let (bird, _frr) = clients(rr, c1, c2, false);
    let mut reflector = Reflector::start(
        rr,
        &body(rr, c1, c2, "shutdownMessage: maintenance window 42\n"),
    );
    bird.wait_route(net(R2), TIMEOUT).unwrap();

    reflector.signal(Signal::SIGTERM);
    harness::wait_until(TIMEOUT, "the reflector exits", || {
        Ok(!reflector.process.is_running())
    })
    .unwrap();
    bird.wait_down(rr.address(), TIMEOUT).unwrap();
    let status = bird.birdc("show protocols all peer0").unwrap();
    assert!(status.contains("Administrative shutdown"), "{status}");
    assert!(status.contains("maintenance window 42"), "{status}");
    // A NOTIFICATION ends graceful restart: the reflected route goes at once.
    assert!(!has(&bird, R2), "BIRD kept the route of a ceased session");
    let log = reflector.process.log();
    assert!(
        log.contains("shutting down: ceasing every session"),
        "{log}"
    );
    assert!(!reflector.socket.exists(), "the API socket is removed");
}

#[test]
#[ignore = "needs root"]
fn a_crashed_reflector_restarts_under_graceful_restart_and_clients_keep_their_routes() {
    require_root();
    let lab = support::lab("reflector_graceful_restart");
    let (rr, c1, c2) = (lab.node("rr"), lab.node("bird"), lab.node("frr"));
    let (bird, frr) = clients(rr, c1, c2, true);
    let mut reflector = Reflector::start(
        rr,
        &body(rr, c1, c2, "gracefulRestart: {restartTime: 120}\n"),
    );
    bird.wait_route(net(R2), TIMEOUT).unwrap();
    frr.wait_route(net(R1), TIMEOUT).unwrap();

    // A crash: SIGKILL, the sockets close without a NOTIFICATION.
    reflector.process.kill();
    bird.wait_down(rr.address(), TIMEOUT).unwrap();
    frr.wait_down(rr.address(), TIMEOUT).unwrap();
    assert!(
        has(&bird, R2),
        "BIRD dropped the route while the reflector restarts"
    );
    assert!(
        has(&frr, R1),
        "FRR dropped the route while the reflector restarts"
    );

    // Back up: the sessions return and the routes never leave the clients' tables.
    reflector.restart(rr);
    harness::wait_until(TIMEOUT, "both sessions back", || {
        assert!(has(&bird, R2), "BIRD lost the route during the restart");
        assert!(has(&frr, R1), "FRR lost the route during the restart");
        Ok(bird.established(rr.address())? && frr.established(rr.address())?)
    })
    .unwrap();
    // After End-of-RIB the routes are fresh again: BIRD no longer marks it stale.
    harness::wait_until(TIMEOUT, "BIRD's route refreshed", || {
        let route = bird.birdc(&format!("show route all {R2}"))?;
        Ok(if route.contains("stale") || !route.contains(R2) {
            Err(route)
        } else {
            Ok(())
        })
    })
    .unwrap();
    assert!(has(&frr, R1));
}
