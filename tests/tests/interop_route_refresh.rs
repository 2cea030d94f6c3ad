//! Enhanced route refresh (RFC 7313) between tabby's speaker and real BIRD and
//! FRR: both ends negotiate it; a refresh BIRD asks for is answered between a
//! beginning and an end marker with every route sent again, so BIRD, which
//! removes at the end what was not sent again, keeps them; and a refresh tabby
//! asks for after an import policy change is bracketed by FRR and loses tabby
//! nothing.

use std::time::Duration;

use bgp::rib::{Change, Filter};
use bgp::session::GracefulRestartConfig;
use bgp::speaker::{self, Notice, PeerConfig, Policy, Request, SpeakerConfig, SpeakerHandle};
use harness::peers::{BgpConfig, BgpPeer, Bird, Frr, Neighbor};
use harness::{Lab, Node, require_root};
use ipnet::IpNet;

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

/// tabby's speaker as its daemons run it: offering graceful restart, beside
/// which it offers enhanced route refresh.
fn tabby_speaker(router_id: std::net::Ipv4Addr) -> SpeakerConfig {
    SpeakerConfig {
        graceful_restart: Some(GracefulRestartConfig {
            restart_time: 120,
            restarting: false,
            forwarding_preserved: true,
        }),
        ..SpeakerConfig::new(TABBY_AS, router_id)
    }
}

fn tabby_peer(peer: &Node) -> PeerConfig {
    PeerConfig {
        import: Some(Policy::Accept),
        export: Some(Policy::Accept),
        ..PeerConfig::new(peer.address(), Some(PEER_AS))
    }
}

/// The next best-path change of `prefix` at tabby.
async fn change(handle: &mut SpeakerHandle, prefix: IpNet) -> Change {
    tokio::time::timeout(TIMEOUT, async {
        loop {
            match handle.notices.recv().await.expect("speaker running") {
                Notice::Best(change @ Change::Best { prefix: p, .. }) if p == prefix => {
                    return change;
                }
                Notice::Best(change @ Change::Withdrawn { prefix: p }) if p == prefix => {
                    return change;
                }
                _ => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no change of {prefix} at tabby"))
}

/// Polls `done` without blocking the thread the speaker shares.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// BIRD's count of UPDATEs (announcements) received from its neighbour.
fn bird_import_updates(bird: &Bird, protocol: &str) -> u64 {
    let all = bird
        .birdc(&format!("show protocols all {protocol}"))
        .unwrap();
    all.lines()
        .find_map(|line| line.trim().strip_prefix("Import updates:"))
        .and_then(|counts| counts.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no import counts in:\n{all}"))
}

#[test]
#[ignore = "needs root"]
fn interop_route_refresh_bird_asks_and_tabby_answers_between_begin_and_end_keeping_every_route() {
    require_root();
    let lab = lab(
        "interop_route_refresh_bird_asks_and_tabby_answers_between_begin_and_end_keeping_every_route",
    );
    let (peer, tabby) = (lab.node("peer"), lab.node("tabby"));
    let config = BgpConfig::new(PEER_AS, peer.ipv4().unwrap())
        .neighbor(Neighbor::new(tabby.address(), TABBY_AS));
    let bird = Bird::start(peer, &config).unwrap();
    let protocol = bird.protocol(tabby.address()).unwrap().to_owned();
    let blocks = [net("10.244.5.0/26"), net("10.244.5.64/26")];
    let router_id = tabby.ipv4().unwrap();
    tabby
        .run(|| {
            harness::runtime().block_on(async {
                let handle = speaker::start(tabby_speaker(router_id)).unwrap();
                handle
                    .requests
                    .send(Request::AddPeer(tabby_peer(peer)))
                    .unwrap();
                for block in blocks {
                    handle.requests.send(Request::Originate(block)).unwrap();
                }
                let learned = || {
                    blocks
                        .iter()
                        .all(|b| bird.route(*b).ok().flatten().is_some())
                };
                eventually("BIRD to learn both blocks", learned).await;
                let all = bird
                    .birdc(&format!("show protocols all {protocol}"))
                    .unwrap();
                let caps = all
                    .split("Neighbor capabilities")
                    .nth(1)
                    .unwrap_or_default();
                assert!(caps.contains("Enhanced refresh"), "not negotiated:\n{all}");
                let before = bird_import_updates(&bird, &protocol);
                bird.birdc(&format!("reload in {protocol}")).unwrap();
                // Both blocks come again; BIRD then ends the refresh and would
                // drop any block not among them.
                eventually("the refreshed blocks at BIRD", || {
                    bird_import_updates(&bird, &protocol) >= before + 2
                })
                .await;
                tokio::time::sleep(Duration::from_millis(500)).await;
                assert!(
                    learned(),
                    "BIRD lost a block in the refresh:\n{}",
                    bird.birdc("show route").unwrap()
                );
                drop(handle);
            })
        })
        .unwrap();
}

#[test]
#[ignore = "needs root"]
fn interop_route_refresh_tabby_asks_frr_after_an_import_change_and_keeps_what_frr_sends_again() {
    require_root();
    let lab = lab(
        "interop_route_refresh_tabby_asks_frr_after_an_import_change_and_keeps_what_frr_sends_again",
    );
    let (peer, tabby) = (lab.node("peer"), lab.node("tabby"));
    let (kept, admitted) = (net("10.100.1.0/24"), net("10.100.2.0/24"));
    let config = BgpConfig::new(PEER_AS, peer.ipv4().unwrap())
        .neighbor(Neighbor::new(tabby.address(), TABBY_AS))
        .route(kept)
        .route(admitted);
    let frr = Frr::start(peer, &config).unwrap();
    let router_id = tabby.ipv4().unwrap();
    // First only `kept` is taken; then everything, which asks FRR for a refresh.
    let only_kept: Filter = yaml_serde::from_str(&format!(
        "terms:\n- match: {{ prefixes: [{{ prefix: {kept} }}] }}\n  action: accept\n- action: reject\n"
    ))
    .unwrap();
    tabby
        .run(|| {
            harness::runtime().block_on(async {
                let mut handle = speaker::start(tabby_speaker(router_id)).unwrap();
                let first = PeerConfig {
                    import_filter: Some(only_kept),
                    ..tabby_peer(peer)
                };
                handle.requests.send(Request::AddPeer(first)).unwrap();
                assert!(matches!(
                    change(&mut handle, kept).await,
                    Change::Best { .. }
                ));
                handle
                    .requests
                    .send(Request::UpdatePeer(tabby_peer(peer)))
                    .unwrap();
                assert!(matches!(
                    change(&mut handle, admitted).await,
                    Change::Best { .. }
                ));
                let stats = || {
                    frr.vtysh_json(&format!("show bgp neighbors {} json", tabby.address()))
                        .unwrap()[tabby.address().to_string()]
                    .clone()
                };
                let caps = &stats()["neighborCapabilities"];
                assert_eq!(
                    caps["enhancedRouteRefresh"], "advertisedAndReceived",
                    "{caps:#}"
                );
                // FRR's Beginning and End of Route Refresh are out...
                eventually("FRR's BoRR and EoRR", || {
                    stats()["messageStats"]["routeRefreshSent"].as_u64() >= Some(2)
                })
                .await;
                // ...and nothing it sent again went at the end, `kept` above all.
                let quiet = tokio::time::timeout(Duration::from_secs(1), change(&mut handle, kept));
                if let Ok(moved) = quiet.await {
                    panic!("{kept} changed in the refresh: {moved:?}");
                }
                let (reply, status) = tokio::sync::oneshot::channel();
                handle.requests.send(Request::Status(reply)).unwrap();
                assert_eq!(status.await.unwrap()[0].prefixes_accepted, 2);
            })
        })
        .unwrap();
}
