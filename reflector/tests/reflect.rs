//! tabby-reflector between real BIRD and FRR clients: routes reflected as their
//! CLIs show them, the gRPC API over the Unix socket, and the metrics scrape.

mod support;

use harness::peers::{BgpConfig, BgpPeer, Bird, Frr, Neighbor};
use harness::require_root;
use ipnet::IpNet;
use proto::bgp_status::bgp_status_client::BgpStatusClient;
use proto::bgp_status::{HealthRequest, ListRoutesRequest, PeerType};
use support::{AS, Reflector, TIMEOUT, peer};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

#[test]
#[ignore = "needs root"]
fn reflector_passes_routes_between_bird_and_frr_clients_and_reports_them_over_grpc_and_metrics() {
    require_root();
    let lab = support::lab("reflector_reflects_between_bird_and_frr");
    let (rr, c1, c2) = (lab.node("rr"), lab.node("bird"), lab.node("frr"));
    let (r1, r2) = (net("10.100.1.0/24"), net("10.100.2.0/24"));
    let client = |node: &harness::Node, route| {
        BgpConfig::new(AS, node.ipv4().unwrap())
            .neighbor(Neighbor::new(rr.address(), AS))
            .route(route)
    };
    let bird = Bird::start(c1, &client(c1, r1)).unwrap();
    let frr = Frr::start(c2, &client(c2, r2)).unwrap();
    let reflector = Reflector::start(
        rr,
        &format!(
            "asNumber: {AS}\nrouterId: {}\nclusterId: 1.1.1.1\npeers:\n{}{}",
            rr.address(),
            peer(c1.address()),
            peer(c2.address())
        ),
    );

    // Each client learns the other's route, next hop unchanged, no AS added.
    let at_bird = bird.wait_route(r2, TIMEOUT).unwrap();
    assert_eq!(at_bird.next_hop, Some(c2.address()));
    assert!(at_bird.as_path.is_empty(), "{at_bird:?}");
    let at_frr = frr.wait_route(r1, TIMEOUT).unwrap();
    assert_eq!(at_frr.next_hop, Some(c1.address()));
    let bird_view = bird.birdc("show route all 10.100.2.0/24").unwrap();
    assert!(
        bird_view.contains("BGP.cluster_list: 1.1.1.1"),
        "{bird_view}"
    );
    assert!(
        bird_view.contains(&format!("BGP.originator_id: {}", c2.address())),
        "{bird_view}"
    );

    // The API over the Unix socket: both peers, static, with their prefixes.
    let from_bird = reflector.wait_established(c1.address());
    reflector.wait_established(c2.address());
    assert_eq!(from_bird.r#type(), PeerType::Static);
    assert!(from_bird.route_reflector_client && from_bird.internal);
    assert_eq!(from_bird.remote_as, AS);
    harness::wait_until(TIMEOUT, "prefix counts", || {
        let peers = reflector.peers()?;
        let bird_peer = peers.iter().find(|p| p.address == c1.address().to_string());
        Ok(bird_peer
            .filter(|p| p.prefixes_received == 1 && p.prefixes_advertised == 1)
            .cloned()
            .ok_or(format!("{peers:?}")))
    })
    .unwrap();
    let socket = reflector.socket.clone();
    let (routes, health) = harness::runtime().block_on(async move {
        let channel = proto::client::connect_unix(&socket).await.unwrap();
        let mut api = BgpStatusClient::new(channel);
        let routes = api
            .list_routes(ListRoutesRequest {
                prefix: "10.100.1.0/24".into(),
                ..ListRoutesRequest::default()
            })
            .await
            .unwrap()
            .into_inner();
        let bad = api
            .list_routes(ListRoutesRequest {
                peer: "not-an-address".into(),
                ..ListRoutesRequest::default()
            })
            .await
            .unwrap_err();
        assert_eq!(bad.code(), tonic::Code::InvalidArgument);
        let health = api.health(HealthRequest {}).await.unwrap().into_inner();
        (routes, health)
    });
    assert_eq!(routes.routes.len(), 1, "{routes:?}");
    let path = &routes.routes[0].paths[0];
    assert_eq!(path.peer, c1.address().to_string());
    assert_eq!(path.next_hop, c1.address().to_string());
    assert!(path.best);
    assert!(health.ready);
    assert_eq!((health.peers_configured, health.peers_established), (2, 2));

    // The metrics scrape and the probes.
    let metrics = reflector.http_get("/metrics");
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(
        metrics.contains("tabby_reflector_peers{state=\"established\"} 2"),
        "{metrics}"
    );
    let line = format!(
        "tabby_reflector_prefixes_received{{peer=\"{}\"}} 1",
        c2.address()
    );
    assert!(metrics.contains(&line), "{metrics}");
    assert!(reflector.http_get("/readyz").starts_with("HTTP/1.1 200"));
    assert!(reflector.http_get("/healthz").starts_with("HTTP/1.1 200"));
}
