//! tabby's speaker (sessions, RIB, import and export) exchanging routes with real
//! BIRD, FRR and GoBGP, over eBGP (IPv4 and IPv6) and iBGP: the daemon learns the
//! block tabby originates with the right AS path and next hop, tabby learns the
//! daemon's route as a best path, and a withdrawal reaches the daemon. Then
//! enhanced route refresh (RFC 7313) with BIRD and FRR: a refresh BIRD asks for is
//! answered between a beginning and an end marker with every route sent again, so
//! BIRD, which removes at the end what was not sent again, keeps them; and a
//! refresh tabby asks for after an import policy change is bracketed by FRR and
//! loses tabby nothing. Route reflection is in `interop_reflection.rs`.

use std::net::IpAddr;
use std::time::Duration;

use bgp::codec::{Attributes, Community};
use bgp::rib::{Change, Filter};
use bgp::session::GracefulRestartConfig;
use bgp::speaker::{self, Notice, PeerConfig, Policy, Request, SpeakerConfig};
use harness::peers::{BgpConfig, BgpPeer, Bird, Frr, GoBgp, Neighbor};
use harness::{Lab, Node, require_root};
use ipnet::IpNet;

const PEER_AS: u32 = 65001;
const TABBY_AS: u32 = 65002;
const TIMEOUT: Duration = Duration::from_secs(30);

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// One cell of the matrix: the session's address family and whether it is iBGP.
#[derive(Clone, Copy, Debug)]
struct Case {
    ipv6: bool,
    internal: bool,
}

impl Case {
    fn peer_as(self) -> u32 {
        if self.internal { TABBY_AS } else { PEER_AS }
    }

    fn address(self, node: &Node) -> IpAddr {
        if self.ipv6 {
            node.address6().unwrap()
        } else {
            node.address()
        }
    }

    /// (the daemon's route, tabby's block)
    fn prefixes(self) -> (IpNet, IpNet) {
        if self.ipv6 {
            (net("fd00:100:1::/48"), net("fd00:244:5::/122"))
        } else {
            (net("10.100.1.0/24"), net("10.244.5.0/26"))
        }
    }
}

fn lab(test: &str) -> Lab {
    Lab::new(test)
        .subnet("a", "10.0.1.0/24")
        .ipv6("a", "fd00:1::/64")
        .node("peer", "a")
        .node("tabby", "a")
        .build()
        .unwrap()
}

fn peer_config(case: Case, peer: &Node, tabby: &Node) -> BgpConfig {
    BgpConfig::new(case.peer_as(), peer.ipv4().unwrap())
        .neighbor(Neighbor::new(case.address(tabby), TABBY_AS))
        .route(case.prefixes().0)
        .community(DAEMON_COMMUNITY)
}

/// The daemon tags its route with this; tabby tags its block with
/// `TABBY_COMMUNITY` and MED 5.
const DAEMON_COMMUNITY: &str = "65001:7";
const TABBY_COMMUNITY: Community = Community(65002 << 16 | 42);

/// Polls the daemon's table from inside the async test without a blocking wait
/// (the speaker shares this thread).
async fn daemon_route(daemon: &(dyn BgpPeer + Sync), prefix: IpNet) -> harness::peers::Route {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Ok(Some(route)) = daemon.route(prefix) {
            return route;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the daemon never learned {prefix}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn daemon_loses(daemon: &(dyn BgpPeer + Sync), prefix: IpNet) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while daemon.route(prefix).ok().flatten().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the daemon kept {prefix}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The next best-path change of `prefix`.
async fn change(handle: &mut speaker::SpeakerHandle, prefix: IpNet) -> Change {
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

fn exchange(case: Case, tabby: &Node, peer: &Node, daemon: &(dyn BgpPeer + Sync)) {
    let (theirs, block) = case.prefixes();
    let tabby_address = case.address(tabby);
    let peer_address = case.address(peer);
    let router_id = tabby.ipv4().unwrap();
    tabby
        .run(|| {
            harness::runtime().block_on(async {
                let mut handle = speaker::start(SpeakerConfig::new(TABBY_AS, router_id)).unwrap();
                let requests = handle.requests.clone();
                requests
                    .send(Request::AddPeer(PeerConfig {
                        import: Some(Policy::Accept),
                        export: Some(Policy::Accept),
                        ..PeerConfig::new(peer_address, Some(case.peer_as()))
                    }))
                    .unwrap();
                requests
                    .send(Request::OriginateWith {
                        prefix: block,
                        attributes: Attributes {
                            communities: vec![TABBY_COMMUNITY],
                            med: Some(5),
                            ..Attributes::default()
                        },
                    })
                    .unwrap();

                let Change::Best { paths: learned, .. } = change(&mut handle, theirs).await else {
                    panic!("withdrawn before learned")
                };
                assert_eq!(learned[0].next_hop, peer_address);
                assert_eq!(learned[0].source.remote_as, case.peer_as());
                assert_eq!(learned[0].source.internal, case.internal);
                let expected_path: &[u32] = if case.internal { &[] } else { &[PEER_AS] };
                let learned_path: Vec<u32> = learned[0]
                    .attributes
                    .as_path
                    .iter()
                    .flat_map(|p| &p.segments)
                    .flat_map(|s| s.asns.clone())
                    .collect();
                assert_eq!(learned_path, expected_path);
                assert_eq!(
                    learned[0].attributes.communities,
                    [Community::new(65001, 7)]
                );

                // Checked with the daemon's own CLI.
                let at_daemon = daemon_route(daemon, block).await;
                assert_eq!(at_daemon.next_hop, Some(tabby_address));
                let expected_path: &[u32] = if case.internal { &[] } else { &[TABBY_AS] };
                assert_eq!(at_daemon.as_path, expected_path);
                assert_eq!(at_daemon.communities, ["65002:42"], "{at_daemon:?}");
                assert_eq!(at_daemon.med, Some(5), "{at_daemon:?}");
                if case.internal {
                    assert_eq!(at_daemon.local_pref, Some(100), "{at_daemon:?}");
                }

                // Withdrawals both ways.
                requests.send(Request::Withdraw(block)).unwrap();
                daemon_loses(daemon, block).await;
                daemon.withdraw(theirs).unwrap();
                assert_eq!(
                    change(&mut handle, theirs).await,
                    Change::Withdrawn { prefix: theirs }
                );
                let (reply, status) = tokio::sync::oneshot::channel();
                handle.requests.send(Request::Status(reply)).unwrap();
                let status = status.await.unwrap();
                assert_eq!(status.len(), 1);
                assert!(status[0].established);
                assert_eq!(status[0].prefixes_accepted, 0);
                // The daemon's route; FRR also sends tabby's own block back over
                // eBGP, received but refused (our AS is in its path).
                assert!(status[0].prefixes_received >= 1);
            })
        })
        .unwrap();
}

/// One test per daemon and case, named `interop_speaker_<case>_with_<daemon>`.
macro_rules! matrix {
    ($($name:ident: $daemon:ident, ipv6 = $ipv6:expr, internal = $internal:expr;)*) => {$(
        #[test]
        #[ignore = "needs root"]
        fn $name() {
            require_root();
            let case = Case { ipv6: $ipv6, internal: $internal };
            let lab = lab(stringify!($name));
            let (peer, tabby) = (lab.node("peer"), lab.node("tabby"));
            let daemon = $daemon::start(peer, &peer_config(case, peer, tabby)).unwrap();
            exchange(case, tabby, peer, &daemon);

        }
    )*};
}

matrix! {
    interop_speaker_ebgp_ipv4_with_bird: Bird, ipv6 = false, internal = false;
    interop_speaker_ebgp_ipv4_with_frr: Frr, ipv6 = false, internal = false;
    interop_speaker_ebgp_ipv4_with_gobgp: GoBgp, ipv6 = false, internal = false;
    interop_speaker_ebgp_ipv6_with_bird: Bird, ipv6 = true, internal = false;
    interop_speaker_ebgp_ipv6_with_frr: Frr, ipv6 = true, internal = false;
    interop_speaker_ebgp_ipv6_with_gobgp: GoBgp, ipv6 = true, internal = false;
    interop_speaker_ibgp_ipv4_with_bird: Bird, ipv6 = false, internal = true;
    interop_speaker_ibgp_ipv4_with_frr: Frr, ipv6 = false, internal = true;
    interop_speaker_ibgp_ipv4_with_gobgp: GoBgp, ipv6 = false, internal = true;
    interop_speaker_ibgp_ipv6_with_bird: Bird, ipv6 = true, internal = true;
    interop_speaker_ibgp_ipv6_with_frr: Frr, ipv6 = true, internal = true;
    interop_speaker_ibgp_ipv6_with_gobgp: GoBgp, ipv6 = true, internal = true;
}

#[test]
#[ignore = "needs root"]
fn interop_speaker_resets_a_bird_session_over_its_prefix_limit() {
    require_root();
    let lab = lab("interop_speaker_resets_a_bird_session_over_its_prefix_limit");
    let (peer, tabby) = (lab.node("peer"), lab.node("tabby"));
    let mut config = BgpConfig::new(PEER_AS, peer.ipv4().unwrap())
        .neighbor(Neighbor::new(tabby.address(), TABBY_AS));
    for prefix in ["10.100.1.0/24", "10.100.2.0/24", "10.100.3.0/24"] {
        config = config.route(net(prefix));
    }
    let bird = Bird::start(peer, &config).unwrap();
    let (peer_address, router_id) = (peer.address(), tabby.ipv4().unwrap());
    tabby
        .run(|| {
            harness::runtime().block_on(async {
                let mut handle = speaker::start(SpeakerConfig::new(TABBY_AS, router_id)).unwrap();
                let limited = PeerConfig {
                    import: Some(Policy::Accept),
                    max_prefixes: Some(2),
                    ..PeerConfig::new(peer_address, Some(PEER_AS))
                };
                handle.requests.send(Request::AddPeer(limited)).unwrap();
                let reason = tokio::time::timeout(TIMEOUT, async {
                    loop {
                        if let Some(Notice::PeerDown { reason, .. }) = handle.notices.recv().await {
                            return reason;
                        }
                    }
                })
                .await
                .expect("the session was never reset");
                assert_eq!(reason, "sent NOTIFICATION 6/1");
            })
        })
        .unwrap();
    let status = bird.show_protocols().unwrap();
    assert!(
        status.contains("Maximum number of prefixes reached"),
        "BIRD does not report the reason:\n{status}"
    );
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
