//! Peers discovered from `Node` resources in a real etcd (`--datastore-type etcdv3`):
//! tabby-reflector takes its AS from the cluster's BGPConfiguration and its
//! cluster id from its own Node, peers with every other Node, and follows
//! additions and removals.

mod support;

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};

use api::datastore::{Datastore, EtcdStore};
use api::resources::{
    AsNumber, BGPConfiguration, BGPConfigurationSpec, Cidr, Node, NodeBgpSpec, NodeSpec,
};
use harness::etcd::Etcd;
use harness::peers::{BgpConfig, BgpPeer, Bird, Frr, Neighbor};
use harness::require_root;

const CLUSTER_AS: u32 = 64513;
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

fn node(name: &str, address: &harness::Node, cluster_id: Option<Ipv4Addr>) -> Node {
    Node::new(
        name,
        NodeSpec {
            bgp: Some(NodeBgpSpec {
                ipv4_address: Some(Cidr(format!("{}/24", address.address()).parse().unwrap())),
                route_reflector_cluster_id: cluster_id,
                ..NodeBgpSpec::default()
            }),
            ..NodeSpec::default()
        },
    )
}

/// Carries the reflector's connections from loopback in its namespace to etcd on
/// the host's: the listening socket is made in the namespace, the outgoing ones
/// on the host (a socket stays in the namespace it was made in).
fn forward_into(netns: &str, to: SocketAddr) -> SocketAddr {
    let lo = std::process::Command::new("ip")
        .args(["-n", netns, "link", "set", "lo", "up"])
        .status()
        .unwrap();
    assert!(lo.success(), "bringing up lo in {netns}");
    let listener = harness::in_netns(netns, || TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .unwrap()
        .unwrap();
    let at = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for inbound in listener.incoming() {
            let (Ok(inbound), Ok(outbound)) = (inbound, TcpStream::connect(to)) else {
                continue;
            };
            for (mut from, mut into) in [
                (inbound.try_clone().unwrap(), outbound.try_clone().unwrap()),
                (outbound, inbound),
            ] {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut into);
                    let _ = into.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
    at
}

#[test]
#[ignore = "needs root"]
fn reflector_peers_with_every_node_in_etcd_and_follows_additions_and_removals() {
    require_root();
    let lab = support::lab("reflector_discovery");
    let (rr, c1, c2) = (lab.node("rr"), lab.node("bird"), lab.node("frr"));
    let client = |n: &harness::Node, route: &str| {
        BgpConfig::new(CLUSTER_AS, n.ipv4().unwrap())
            .neighbor(Neighbor::new(rr.address(), CLUSTER_AS))
            .route(route.parse().unwrap())
    };
    let bird = Bird::start(c1, &client(c1, "10.100.1.0/24")).unwrap();
    let frr = Frr::start(c2, &client(c2, "10.100.2.0/24")).unwrap();

    let etcd = Etcd::start(lab.logs()).unwrap();
    let endpoint: SocketAddr = etcd.endpoint()["http://".len()..].parse().unwrap();
    let seen_from_rr = forward_into(rr.netns().name(), endpoint);
    let runtime = harness::runtime();
    let store = runtime
        .block_on(EtcdStore::connect(&[etcd.endpoint()]))
        .unwrap();
    let cluster = BGPConfigurationSpec {
        as_number: Some(AsNumber(CLUSTER_AS)),
        ..BGPConfigurationSpec::default()
    };
    runtime
        .block_on(store.create(&BGPConfiguration::new("default", cluster)))
        .unwrap();
    runtime
        .block_on(store.create(&node("rr-node", rr, Some(Ipv4Addr::new(2, 2, 2, 2)))))
        .unwrap();
    runtime
        .block_on(store.create(&node("bird-node", c1, None)))
        .unwrap();

    // No asNumber, clusterId or peers in the file: they come from the datastore.
    let args = [
        "--datastore-type=etcdv3".to_owned(),
        format!("--etcd-endpoints=http://{seen_from_rr}"),
        "--node-name=rr-node".to_owned(),
    ];
    let reflector =
        support::Reflector::start_with(rr, &format!("routerId: {}\n", rr.address()), &args);

    bird.wait_established(rr.address(), TIMEOUT).unwrap();
    assert!(
        !frr.established(rr.address()).unwrap(),
        "FRR's node is not in the datastore yet"
    );

    // A node added: FRR is peered and learns BIRD's route, reflected with the
    // cluster id from the reflector's own Node.
    runtime
        .block_on(store.create(&node("frr-node", c2, None)))
        .unwrap();
    frr.wait_established(rr.address(), TIMEOUT).unwrap();
    frr.wait_route("10.100.1.0/24".parse().unwrap(), TIMEOUT)
        .unwrap();
    bird.wait_route("10.100.2.0/24".parse().unwrap(), TIMEOUT)
        .unwrap();
    let reflected = bird.birdc("show route all 10.100.2.0/24").unwrap();
    assert!(
        reflected.contains("BGP.cluster_list: 2.2.2.2"),
        "{reflected}"
    );
    let peers = reflector.peers().unwrap();
    assert_eq!(peers.len(), 2, "{peers:?}");

    // A node removed: its session goes, the other stays.
    runtime
        .block_on(store.delete::<Node>("bird-node", None))
        .unwrap();
    bird.wait_down(rr.address(), TIMEOUT).unwrap();
    assert!(frr.established(rr.address()).unwrap());
}

#[test]
fn an_etcd_endpoint_that_is_not_a_url_fails_the_start_with_the_flag_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("reflector.yaml");
    std::fs::write(&config, "routerId: 10.0.0.1\n").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tabby-reflector"))
        .arg("--config")
        .arg(&config)
        .args([
            "--datastore-type",
            "etcdv3",
            "--etcd-endpoints",
            "not a url",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--etcd-endpoints"), "{stderr}");
}
