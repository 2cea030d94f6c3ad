//! Peers discovered from `Node` resources (the in-memory datastore backend; the
//! etcd one follows the same trait): tabby-reflector takes its AS from the
//! cluster's BGPConfiguration and its cluster id from its own Node, peers with
//! every other Node, and follows additions and removals.

mod support;

use std::net::Ipv4Addr;
use std::sync::Arc;

use api::datastore::{Datastore, MemoryStore};
use api::resources::{
    AsNumber, BGPConfiguration, BGPConfigurationSpec, Cidr, Node, NodeBgpSpec, NodeSpec,
};
use reflector::daemon::{self, Control, Options};
use tests::peers::{BgpConfig, BgpPeer, Bird, Frr, Neighbor};
use tests::require_root;
use tokio::sync::mpsc;

const CLUSTER_AS: u32 = 64513;
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

fn node(name: &str, address: &tests::Node, cluster_id: Option<Ipv4Addr>) -> Node {
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

#[test]
fn reflector_peers_with_every_node_in_the_datastore_and_follows_additions_and_removals() {
    if !require_root() {
        return;
    }
    let lab = support::lab("reflector_discovery");
    let (rr, c1, c2) = (lab.node("rr"), lab.node("bird"), lab.node("frr"));
    let client = |n: &tests::Node, route: &str| {
        BgpConfig::new(CLUSTER_AS, n.ipv4().unwrap())
            .neighbor(Neighbor::new(rr.address(), CLUSTER_AS))
            .route(route.parse().unwrap())
    };
    let bird = Bird::start(c1, &client(c1, "10.100.1.0/24")).unwrap();
    let frr = Frr::start(c2, &client(c2, "10.100.2.0/24")).unwrap();

    let _ = tracing_subscriber::fmt()
        .with_env_filter("debug")
        .try_init();
    let store = Arc::new(MemoryStore::new());
    let runtime = tests::runtime();
    runtime.block_on(async {
        let cluster = BGPConfigurationSpec {
            as_number: Some(AsNumber(CLUSTER_AS)),
            ..BGPConfigurationSpec::default()
        };
        store
            .create(&BGPConfiguration::new("default", cluster))
            .await
            .unwrap();
        let own = node("rr-node", rr, Some(Ipv4Addr::new(2, 2, 2, 2)));
        store.create(&own).await.unwrap();
        store.create(&node("bird-node", c1, None)).await.unwrap();
    });

    // No asNumber, clusterId or peers in the file: they come from the datastore.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("reflector.yaml");
    std::fs::write(
        &config,
        format!(
            "routerId: {}\napi: {{socket: {}}}\n",
            rr.address(),
            dir.path().join("api.sock").display()
        ),
    )
    .unwrap();
    let (controls, receiver) = mpsc::channel(1);
    let options = Options {
        config,
        node_name: Some("rr-node".into()),
    };
    let daemon_store = Arc::clone(&store);
    let netns = rr.netns().name().to_owned();
    let daemon = std::thread::spawn(move || {
        tests::in_netns(&netns, move || {
            tests::runtime().block_on(daemon::run(options, Some(daemon_store), receiver))
        })
    });

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

    // A node removed: its session goes.
    runtime
        .block_on(store.delete::<Node>("bird-node", None))
        .unwrap();
    bird.wait_down(rr.address(), TIMEOUT).unwrap();
    assert!(frr.established(rr.address()).unwrap());

    controls.blocking_send(Control::Shutdown).unwrap();
    daemon.join().unwrap().unwrap().unwrap();
}
