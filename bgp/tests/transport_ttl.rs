//! TTL policy on real routed paths: two nodes on different subnets, one router
//! namespace between them, so segments arrive with their TTL decremented once.

use std::net::SocketAddr;
use std::time::Duration;

use bgp::transport::{Endpoint, TtlPolicy, connect, listen};
use harness::{Lab, Node, require_root, runtime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn routed_lab(test: &str) -> Lab {
    Lab::new(test)
        .subnet("a", "10.0.1.0/24")
        .subnet("b", "10.0.2.0/24")
        .node("n1", "a")
        .node("n2", "b")
        .build()
        .unwrap()
}

/// Listens in `server` with `listen_policy`, connects from `client` with
/// `connect_policy`, and says whether a byte made it across within two seconds.
fn reaches(
    client: &Node,
    server: &Node,
    listen_policy: TtlPolicy,
    connect_policy: TtlPolicy,
) -> bool {
    let address = SocketAddr::new(server.address(), 0);
    // The socket is created in the server's namespace; tokio registers it later.
    let listener = server
        .run(|| {
            let runtime = runtime();
            let _entered = runtime.enter();
            listen(address, listen_policy).unwrap().into_std().unwrap()
        })
        .unwrap();
    let endpoint = Endpoint {
        remote: listener.local_addr().unwrap(),
        local: None,
        md5_key: None,
        ttl: connect_policy,
    };
    client
        .run(|| {
            runtime().block_on(async {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let exchange = async {
                    let (accepted, connected) = tokio::join!(listener.accept(), connect(&endpoint));
                    let (mut server, mut client) = (accepted.ok()?.0, connected.ok()?);
                    client.write_all(b"x").await.ok()?;
                    server.read_u8().await.ok()
                };
                tokio::time::timeout(Duration::from_secs(2), exchange)
                    .await
                    .ok()
                    .flatten()
                    == Some(b'x')
            })
        })
        .unwrap()
}

#[test]
#[ignore = "needs root"]
fn transport_gtsm_accepts_a_peer_within_its_hop_count() {
    require_root();
    let lab = routed_lab("transport_gtsm_accepts_a_peer_within_its_hop_count");
    let security = TtlPolicy::Security { hops: 2 };
    assert!(reaches(lab.node("n1"), lab.node("n2"), security, security));
}

#[test]
#[ignore = "needs root"]
fn transport_gtsm_drops_a_peer_one_router_too_far() {
    require_root();
    let lab = routed_lab("transport_gtsm_drops_a_peer_one_router_too_far");
    let security = TtlPolicy::Security { hops: 1 };
    assert!(!reaches(lab.node("n1"), lab.node("n2"), security, security));
}

#[test]
#[ignore = "needs root"]
fn transport_single_hop_ttl_does_not_cross_a_router() {
    require_root();
    let lab = routed_lab("transport_single_hop_ttl_does_not_cross_a_router");
    let open = TtlPolicy::Hops(64);
    assert!(!reaches(
        lab.node("n1"),
        lab.node("n2"),
        open,
        TtlPolicy::Hops(1)
    ));
    assert!(reaches(
        lab.node("n1"),
        lab.node("n2"),
        open,
        TtlPolicy::Hops(2)
    ));
}
