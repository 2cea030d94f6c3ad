//! tabby-agent on lab nodes (in-process, one shared in-memory datastore, an IPAM
//! double) with pods attached by tabby-cni as a runtime attaches them: the mesh,
//! routes in the kernel against the expected table, pod-to-pod pings, a restart
//! that changes nothing, and a hijack that is refused. Needs root.

mod cni_support;
mod daemon_support;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use api::datastore::{Datastore, MemoryStore};
use api::resources::{Cidr, EncapsulationMode, IPPool, IPPoolSpec};
use cni_support::{Runtime, pod_ip};
use daemon_support::{RunningAgent, claim_block, options, record_pod, run};
use serde_json::json;
use tests::routes::{lines, routes};
use tests::{Lab, Netns, Node};

const WAIT: Duration = Duration::from_secs(30);

/// Subnet a: n1 (10.0.1.10) and n2 (10.0.1.11); the router gives both a default
/// route, which proxy ARP for the pods' gateway needs.
fn lab(test: &str) -> Lab {
    Lab::new(test)
        .subnet("a", "10.0.1.0/24")
        .node("n1", "a")
        .node("n2", "a")
        .router()
        .build()
        .unwrap()
}

fn pool(store: &MemoryStore, cidr: &str, ipip: EncapsulationMode) {
    let mut spec = IPPoolSpec::new(Cidr(cidr.parse().unwrap()));
    spec.ipip_mode = ipip;
    run(store.create(&IPPool::new("pool", spec))).unwrap();
}

/// A pod on `node` with an address from `block`, attached by tabby-cni and
/// recorded in IPAM as tabby-ipam records it.
fn pod(
    store: &MemoryStore,
    runtime: &Runtime<'_>,
    node: &Node,
    name: &str,
    netns: &Netns,
) -> IpAddr {
    let address = pod_ip(&runtime.add(name, netns), 0);
    record_pod(store, address, node.name(), runtime.namespace(), name);
    address
}

fn block_range(block: &str) -> serde_json::Value {
    json!([[{"subnet": block}]])
}

fn wait_for_routes(node: &Node, expected: &[&str]) {
    let expected = lines(expected);
    tests::wait_until(WAIT, &format!("{}'s routes", node.name()), || {
        let actual = routes(node, "84")?;
        anyhow::Ok(if actual == expected {
            Ok(())
        } else {
            Err(format!("{actual:#?}"))
        })
    })
    .unwrap();
}

#[test]
fn daemon_two_mesh_nodes_route_each_others_pods_and_blackhole_their_own() {
    if !tests::require_root() {
        return;
    }
    let lab = lab("daemon_mesh_routes");
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));
    let store = Arc::new(MemoryStore::new());
    pool(&store, "10.244.0.0/16", EncapsulationMode::Never);
    claim_block(&store, "n1", "10.244.1.0/26");
    claim_block(&store, "n2", "10.244.2.0/26");
    let _a1 = RunningAgent::start(n1, store.clone(), options(n1));
    let _a2 = RunningAgent::start(n2, store.clone(), options(n2));

    let (r1, r2) = (
        Runtime::new(&lab, n1, block_range("10.244.1.0/26")),
        Runtime::new(&lab, n2, block_range("10.244.2.0/26")),
    );
    let (web, db) = (lab.pod("web").unwrap(), lab.pod("db").unwrap());
    let web_ip = pod(&store, &r1, n1, "web", &web);
    let db_ip = pod(&store, &r2, n2, "db", &db);

    wait_for_routes(
        n1,
        &[
            &format!("{web_ip}/32 dev {} scope link", r1.host_veth("web")),
            "blackhole 10.244.1.0/26",
            "10.244.2.0/26 via 10.0.1.11 dev eth0",
        ],
    );
    wait_for_routes(
        n2,
        &[
            &format!("{db_ip}/32 dev {} scope link", r2.host_veth("db")),
            "blackhole 10.244.2.0/26",
            "10.244.1.0/26 via 10.0.1.10 dev eth0",
        ],
    );
    web.ping(db_ip).unwrap();
    db.ping(web_ip).unwrap();
}
