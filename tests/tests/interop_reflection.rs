//! tabby as a route reflector (RFC 4456) for real BIRD, FRR and GoBGP clients on
//! one subnet: each client sees the others' routes with ORIGINATOR_ID and
//! CLUSTER_LIST set (read with its own CLI), and a route that comes back carrying
//! tabby's cluster id is dropped.

use std::net::Ipv4Addr;
use std::time::Duration;

use bgp::speaker::{self, PeerConfig, PeerStatus, Request, SpeakerConfig};
use harness::peers::{BgpConfig, BgpPeer, Bird, Frr, GoBgp, Neighbor};
use harness::{Lab, require_root};
use ipnet::IpNet;

const AS: u32 = 64512;
const TIMEOUT: Duration = Duration::from_secs(30);
const CLUSTER: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 250);

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// Runs a reflector on the `rr` node with these clients while `check` runs;
/// returns the reflector's peer status at the end.
fn reflect(
    rr: &harness::Node,
    clients: &[std::net::IpAddr],
    check: impl FnOnce() + Send,
) -> Vec<PeerStatus> {
    let router_id = rr.ipv4().unwrap();
    rr.run(|| {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::scope(|scope| {
            // Spawned from inside the namespace, the thread is in it too.
            let speaker = scope.spawn(|| {
                harness::runtime().block_on(async {
                    let handle = speaker::start(SpeakerConfig {
                        cluster_id: Some(CLUSTER),
                        ..SpeakerConfig::new(AS, router_id)
                    })
                    .unwrap();
                    for &client in clients {
                        let peer = PeerConfig {
                            rr_client: true,
                            ..PeerConfig::new(client, Some(AS))
                        };
                        handle.requests.send(Request::AddPeer(peer)).unwrap();
                    }
                    let _ = stopped.await;
                    let (reply, status) = tokio::sync::oneshot::channel();
                    handle.requests.send(Request::Status(reply)).unwrap();
                    status.await.unwrap()
                })
            });
            check();
            drop(stop);
            speaker.join().unwrap()
        })
    })
    .unwrap()
}

#[test]
#[ignore = "needs root"]
fn interop_reflection_bird_frr_and_gobgp_clients_see_each_others_routes_with_originator_and_cluster_list()
 {
    require_root();
    let lab = Lab::new("interop_reflection_clients")
        .subnet("a", "10.0.1.0/24")
        .node("rr", "a")
        .node("bird", "a")
        .node("frr", "a")
        .node("gobgp", "a")
        .build()
        .unwrap();
    let rr = lab.node("rr");
    let config = |name: &str, route: &str| {
        let node = lab.node(name);
        BgpConfig::new(AS, node.ipv4().unwrap())
            .neighbor(Neighbor::new(rr.address(), AS))
            .route(net(route))
    };
    let routes = [
        net("10.101.0.0/24"),
        net("10.102.0.0/24"),
        net("10.103.0.0/24"),
    ];
    let bird = Bird::start(lab.node("bird"), &config("bird", "10.101.0.0/24")).unwrap();
    let frr = Frr::start(lab.node("frr"), &config("frr", "10.102.0.0/24")).unwrap();
    let gobgp = GoBgp::start(lab.node("gobgp"), &config("gobgp", "10.103.0.0/24")).unwrap();
    let ids = ["bird", "frr", "gobgp"].map(|n| lab.node(n).ipv4().unwrap());
    let clients = ["bird", "frr", "gobgp"].map(|n| lab.node(n).address());
    let daemons: [&(dyn BgpPeer + Sync); 3] = [&bird, &frr, &gobgp];
    let _ = reflect(rr, &clients, || {
        for (i, daemon) in daemons.iter().enumerate() {
            for (j, route) in routes.iter().enumerate() {
                if i == j {
                    continue;
                }
                let got = daemon.wait_route(*route, TIMEOUT).unwrap();
                assert_eq!(got.originator_id, Some(ids[j]), "client {i}: {got:?}");
                assert_eq!(got.cluster_list, [CLUSTER], "client {i}: {got:?}");
                assert_eq!(got.next_hop, Some(clients[j]), "client {i}: {got:?}");
                assert!(got.as_path.is_empty(), "client {i}: {got:?}");
            }
        }
    });
}

#[test]
#[ignore = "needs root"]
fn interop_reflection_a_route_carrying_tabbys_cluster_id_is_dropped() {
    require_root();
    // frr ── bird (a reflector, by mistake with tabby's cluster id) ── tabby ── gobgp
    let lab = Lab::new("interop_reflection_cluster_loop")
        .subnet("a", "10.0.1.0/24")
        .node("rr", "a")
        .node("bird", "a")
        .node("frr", "a")
        .node("gobgp", "a")
        .build()
        .unwrap();
    let (rr, bird_node, frr_node, gobgp_node) = (
        lab.node("rr"),
        lab.node("bird"),
        lab.node("frr"),
        lab.node("gobgp"),
    );
    let (looped, control) = (net("10.102.0.0/24"), net("10.101.0.0/24"));
    let _frr = Frr::start(
        frr_node,
        &BgpConfig::new(AS, frr_node.ipv4().unwrap())
            .neighbor(Neighbor::new(bird_node.address(), AS))
            .route(looped),
    )
    .unwrap();
    let bird = Bird::start(
        bird_node,
        &BgpConfig::new(AS, bird_node.ipv4().unwrap())
            .cluster_id(CLUSTER)
            .neighbor(Neighbor::new(frr_node.address(), AS).rr_client())
            .neighbor(Neighbor::new(rr.address(), AS))
            .route(control),
    )
    .unwrap();
    let gobgp = GoBgp::start(
        gobgp_node,
        &BgpConfig::new(AS, gobgp_node.ipv4().unwrap()).neighbor(Neighbor::new(rr.address(), AS)),
    )
    .unwrap();
    bird.wait_route(looped, TIMEOUT).unwrap();
    let clients = [bird_node.address(), gobgp_node.address()];
    let status = reflect(rr, &clients, || {
        // BIRD's own route passes; the one it reflected with our cluster
        // id in CLUSTER_LIST never does.
        gobgp.wait_route(control, TIMEOUT).unwrap();
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(gobgp.route(looped).unwrap(), None);
    });
    // BIRD did send it: received, not accepted.
    let from_bird = status
        .iter()
        .find(|s| s.address == bird_node.address())
        .unwrap();
    assert_eq!(from_bird.prefixes_received, 2, "{from_bird:?}");
    assert_eq!(from_bird.prefixes_accepted, 1, "{from_bird:?}");
}
