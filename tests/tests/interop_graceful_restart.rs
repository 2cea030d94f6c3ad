//! Graceful restart (RFC 4724) with BIRD, in both roles. tabby "crashes" by dropping
//! its runtime: its sockets close without a NOTIFICATION, as when the process is
//! killed. BIRD crashes by SIGKILL and comes back with `bird -R`.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use bgp::rib::Change;
use bgp::session::GracefulRestartConfig;
use bgp::speaker::{self, Notice, PeerConfig, Policy, Request, SpeakerConfig, SpeakerHandle};
use ipnet::IpNet;
use tests::peers::{BgpConfig, BgpPeer, Bird, Neighbor};
use tests::{Lab, Node, require_root};

const PEER_AS: u32 = 65001;
const TABBY_AS: u32 = 65002;
const TIMEOUT: Duration = Duration::from_secs(30);

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn lab(test: &str) -> Lab {
    Lab::new(test)
        .subnet("a", "10.0.1.0/24")
        .node("peer", "a")
        .node("tabby", "a")
        .build()
        .unwrap()
}

fn bird_config(peer: &Node, tabby: &Node, route: Option<IpNet>) -> BgpConfig {
    let config = BgpConfig::new(PEER_AS, peer.ipv4().unwrap())
        .neighbor(Neighbor::new(tabby.address(), TABBY_AS).graceful_restart(120));
    match route {
        Some(route) => config.route(route),
        None => config,
    }
}

/// A tabby speaker peering with `peer`, offering graceful restart.
fn tabby_speaker(tabby: &Node, peer: IpAddr, restart_time: u16, restarting: bool) -> SpeakerHandle {
    let handle = speaker::start(SpeakerConfig {
        graceful_restart: Some(GracefulRestartConfig {
            restart_time,
            restarting,
            forwarding_preserved: true,
        }),
        ..SpeakerConfig::new(TABBY_AS, tabby.ipv4().unwrap())
    })
    .unwrap();
    let config = PeerConfig {
        import: Some(Policy::Accept),
        export: Some(Policy::Accept),
        ..PeerConfig::new(peer, Some(PEER_AS))
    };
    handle.requests.send(Request::AddPeer(config)).unwrap();
    handle
}

fn has(bird: &Bird, prefix: IpNet) -> bool {
    bird.routes()
        .unwrap_or_default()
        .iter()
        .any(|r| r.prefix == prefix)
}

/// Polls (without blocking the speaker on this thread) until `bird` has `prefix`.
async fn until_bird_has(bird: &Bird, prefix: IpNet) {
    let deadline = Instant::now() + TIMEOUT;
    while !has(bird, prefix) {
        assert!(Instant::now() < deadline, "BIRD never learned {prefix}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn interop_graceful_restart_bird_keeps_tabbys_routes_while_tabby_restarts() {
    if !require_root() {
        return;
    }
    let lab = lab("interop_graceful_restart_bird_keeps_tabbys_routes_while_tabby_restarts");
    let (peer, tabby) = (lab.node("peer"), lab.node("tabby"));
    let bird = Bird::start(peer, &bird_config(peer, tabby, None)).unwrap();
    let block = net("10.244.5.0/26");
    let peer_address = peer.address();
    tabby
        .run(|| {
            tests::runtime().block_on(async {
                let handle = tabby_speaker(tabby, peer_address, 120, false);
                handle.requests.send(Request::Originate(block)).unwrap();
                until_bird_has(&bird, block).await;
            })
        })
        .unwrap();
    // tabby is gone without a NOTIFICATION; BIRD keeps the route as stale.
    assert!(
        bird.wait_established(tabby.address(), Duration::ZERO)
            .is_err()
    );
    assert!(
        has(&bird, block),
        "BIRD dropped the route when tabby went away"
    );
    tabby
        .run(|| {
            tests::runtime().block_on(async {
                let handle = tabby_speaker(tabby, peer_address, 120, true);
                handle.requests.send(Request::Originate(block)).unwrap();
                // Until the session is back and End-of-RIB has swept, the route
                // must never have left BIRD's table.
                let deadline = Instant::now() + TIMEOUT;
                while !bird.established(tabby.address()).unwrap_or(false) {
                    assert!(
                        has(&bird, block),
                        "BIRD withdrew the route during the restart"
                    );
                    assert!(Instant::now() < deadline, "the session never came back");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                for _ in 0..20 {
                    assert!(has(&bird, block), "the route vanished after the restart");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        })
        .unwrap();
}

#[test]
fn interop_graceful_restart_bird_drops_tabbys_routes_when_tabby_does_not_return() {
    if !require_root() {
        return;
    }
    let lab = lab("interop_graceful_restart_bird_drops_tabbys_routes_when_tabby_does_not_return");
    let (peer, tabby) = (lab.node("peer"), lab.node("tabby"));
    let bird = Bird::start(peer, &bird_config(peer, tabby, None)).unwrap();
    let block = net("10.244.5.0/26");
    let peer_address = peer.address();
    tabby
        .run(|| {
            tests::runtime().block_on(async {
                let handle = tabby_speaker(tabby, peer_address, 3, false);
                handle.requests.send(Request::Originate(block)).unwrap();
                until_bird_has(&bird, block).await;
            })
        })
        .unwrap();
    assert!(has(&bird, block), "BIRD dropped the route at once");
    tests::wait_until(TIMEOUT, "BIRD drops the stale route", || {
        Ok(if has(&bird, block) {
            Err("still there".to_owned())
        } else {
            Ok(())
        })
    })
    .unwrap();
}

#[test]
fn interop_graceful_restart_tabby_keeps_a_restarting_birds_routes_until_end_of_rib() {
    if !require_root() {
        return;
    }
    let lab =
        lab("interop_graceful_restart_tabby_keeps_a_restarting_birds_routes_until_end_of_rib");
    let (peer, tabby) = (lab.node("peer"), lab.node("tabby"));
    let (kept, dropped) = (net("10.100.1.0/24"), net("10.100.2.0/24"));
    let mut bird = Bird::start(peer, &bird_config(peer, tabby, Some(kept)).route(dropped)).unwrap();
    let peer_address = peer.address();
    tabby
        .run(|| {
            tests::runtime().block_on(async {
                let mut handle = tabby_speaker(tabby, peer_address, 120, false);
                let mut learned = Vec::new();
                while learned.len() < 2 {
                    if let Some(Notice::Best(Change::Best { prefix, .. })) =
                        handle.notices.recv().await
                    {
                        learned.push(prefix);
                    }
                }
                bird.kill();
                // BIRD returns without `dropped`; it announces the restart bit.
                bird = Bird::start_restarting(peer, &bird_config(peer, tabby, Some(kept))).unwrap();
                let mut fresh = false;
                tokio::time::timeout(TIMEOUT, async {
                    while let Some(notice) = handle.notices.recv().await {
                        match notice {
                            Notice::Best(Change::Withdrawn { prefix }) if prefix == dropped => {
                                // Swept at End-of-RIB, only after `kept` came back fresh.
                                assert!(fresh, "stale routes swept before BIRD re-announced");
                                return;
                            }
                            Notice::Best(Change::Withdrawn { prefix }) => {
                                panic!("{prefix} withdrawn during BIRD's restart")
                            }
                            Notice::Best(Change::Best { prefix, paths }) if prefix == kept => {
                                fresh = !paths[0].stale;
                            }
                            _ => {}
                        }
                    }
                })
                .await
                .expect("the stale route was never swept");
            })
        })
        .unwrap();
}
