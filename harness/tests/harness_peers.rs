//! Real peers run here: BIRD and GoBGP exchange routes both ways; FRR's bgpd runs
//! without zebra and learns a route.

use std::time::Duration;

use harness::peers::{BgpConfig, BgpPeer, Bird, Frr, GoBgp, Neighbor};
use harness::{Lab, require_root};
use ipnet::IpNet;

const TIMEOUT: Duration = Duration::from_secs(30);

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn two_nodes(test: &str) -> Lab {
    Lab::new(test)
        .subnet("a", "10.0.1.0/24")
        .node("n1", "a")
        .node("n2", "a")
        .build()
        .unwrap()
}

#[test]
#[ignore = "needs root"]
fn harness_bird_and_gobgp_exchange_routes_over_ebgp() {
    require_root();
    let lab = two_nodes("harness_bird_and_gobgp_exchange_routes_over_ebgp");
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));
    let bird = Bird::start(
        n1,
        &BgpConfig::new(65001, n1.ipv4().unwrap())
            .neighbor(Neighbor::new(n2.address(), 65002))
            .route(net("10.100.1.0/24")),
    )
    .unwrap();
    let gobgp = GoBgp::start(
        n2,
        &BgpConfig::new(65002, n2.ipv4().unwrap())
            .neighbor(Neighbor::new(n1.address(), 65001))
            .route(net("10.100.2.0/24")),
    )
    .unwrap();

    bird.wait_established(n2.address(), TIMEOUT).unwrap();
    gobgp.wait_established(n1.address(), TIMEOUT).unwrap();

    let at_bird = bird.wait_route(net("10.100.2.0/24"), TIMEOUT).unwrap();
    assert_eq!(at_bird.next_hop, Some(n2.address()));
    assert_eq!(at_bird.as_path, [65002]);
    let at_gobgp = gobgp.wait_route(net("10.100.1.0/24"), TIMEOUT).unwrap();
    assert_eq!(at_gobgp.next_hop, Some(n1.address()));
    assert_eq!(at_gobgp.as_path, [65001]);
}

#[test]
#[ignore = "needs root"]
fn harness_frr_bgpd_runs_without_zebra_and_learns_a_route() {
    require_root();
    let lab = two_nodes("harness_frr_bgpd_runs_without_zebra_and_learns_a_route");
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));
    let frr = Frr::start(
        n1,
        &BgpConfig::new(65001, n1.ipv4().unwrap())
            .neighbor(Neighbor::new(n2.address(), 65002).passive())
            .route(net("10.101.1.0/24")),
    )
    .unwrap();
    let gobgp = GoBgp::start(
        n2,
        &BgpConfig::new(65002, n2.ipv4().unwrap())
            .neighbor(Neighbor::new(n1.address(), 65001))
            .route(net("10.101.2.0/24")),
    )
    .unwrap();

    frr.wait_established(n2.address(), TIMEOUT).unwrap();
    let at_frr = frr.wait_route(net("10.101.2.0/24"), TIMEOUT).unwrap();
    assert_eq!(at_frr.next_hop, Some(n2.address()));
    assert_eq!(at_frr.as_path, [65002]);
    let at_gobgp = gobgp.wait_route(net("10.101.1.0/24"), TIMEOUT).unwrap();
    assert_eq!(at_gobgp.as_path, [65001]);
}

#[test]
#[ignore = "needs root"]
fn harness_bird_from_a_hand_written_config_answers_birdc_as_soon_as_it_is_started() {
    require_root();
    let lab = Lab::new("harness_bird_answers_birdc_at_once")
        .subnet("a", "10.0.1.0/24")
        .node("n1", "a")
        .build()
        .unwrap();
    let bird = Bird::start_text(
        lab.node("n1"),
        "router id 10.0.1.10;\nprotocol device {}\n\
         protocol static static1 {\n  ipv4;\n  route 10.102.0.0/24 blackhole;\n}\n",
    )
    .unwrap();
    // At once: a caller has no other way of knowing when BIRD's socket is there.
    let status = bird.birdc("show protocols static1").unwrap();
    assert!(status.contains("static1"), "{status}");
}
