//! tabby-agent with a VXLAN CrossSubnet pool on two subnets joined by a router:
//! nodes on one subnet route each other's pods directly, and over `vxlan.tabby`
//! to the node behind the router, with VTEP entries from the datastore. Needs root.

mod cni_support;
mod daemon_support;

use std::collections::BTreeSet;
use std::sync::Arc;

use api::datastore::MemoryStore;
use api::resources::EncapsulationMode;
use cni_support::Runtime;
use daemon_support::{
    RunningAgent, block_range, claim_block, options, pod, pool, set_vtep, wait_for_routes,
};
use serde_json::Value;
use tests::Lab;

#[test]
fn daemon_vxlan_crosssubnet_goes_direct_on_the_subnet_and_over_vxlan_across_the_router() {
    if !tests::require_root() {
        return;
    }
    let lab = Lab::new("daemon_vxlan_crosssubnet")
        .subnet("a", "10.0.1.0/24")
        .subnet("b", "10.0.2.0/24")
        .node("n1", "a")
        .node("n2", "a")
        .node("n3", "b")
        .build()
        .unwrap();
    let store = Arc::new(MemoryStore::new());
    pool(
        &store,
        "10.244.0.0/16",
        EncapsulationMode::Never,
        EncapsulationMode::CrossSubnet,
    );
    let names = ["n1", "n2", "n3"];
    let mut agents = Vec::new();
    let mut pods = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let node = lab.node(name);
        let block = format!("10.244.{}.0/26", i + 1);
        claim_block(&store, name, &block);
        agents.push(RunningAgent::start(node, store.clone(), options(node)));
        // The block's first address is the node's VTEP (host-local never hands
        // out .1, its gateway).
        set_vtep(
            &store,
            name,
            &format!("10.244.{}.1", i + 1),
            [0x66, 0, 0, 0, 0, i as u8 + 1],
        );
        let runtime = Runtime::new(&lab, node, block_range(&block));
        let netns = lab.pod(&format!("p{}", i + 1)).unwrap();
        let ip = pod(&store, &runtime, node, &format!("p{}", i + 1), &netns);
        pods.push((runtime.host_veth(&format!("p{}", i + 1)), ip, netns));
    }
    let local = |i: usize| {
        let (veth, ip, _) = &pods[i];
        [
            format!("{ip}/32 dev {veth} scope link"),
            format!("blackhole 10.244.{}.0/26", i + 1),
        ]
    };
    let table = |i: usize, others: [String; 2]| -> BTreeSet<String> {
        local(i).into_iter().chain(others).collect()
    };
    wait_for_routes(
        lab.node("n1"),
        &table(
            0,
            [
                "10.244.2.0/26 via 10.0.1.11 dev eth0".into(),
                "10.244.3.0/26 via 10.244.3.1 dev vxlan.tabby onlink".into(),
            ],
        ),
    );
    wait_for_routes(
        lab.node("n3"),
        &table(
            2,
            [
                "10.244.1.0/26 via 10.244.1.1 dev vxlan.tabby onlink".into(),
                "10.244.2.0/26 via 10.244.2.1 dev vxlan.tabby onlink".into(),
            ],
        ),
    );
    // The device, its address and the VTEP entries, as ip and bridge read them.
    let n3 = lab.node("n3");
    let link: Value = serde_json::from_str(&n3.ip("-j -d addr show vxlan.tabby").unwrap()).unwrap();
    assert_eq!(link[0]["mtu"], 1450);
    assert_eq!(link[0]["linkinfo"]["info_data"]["id"], 4096);
    assert_eq!(link[0]["linkinfo"]["info_data"]["local"], "10.0.2.10");
    let addresses: Vec<&str> = link[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["family"] == "inet")
        .map(|a| a["local"].as_str().unwrap())
        .collect();
    assert_eq!(addresses, ["10.244.3.1"]);
    let fdb = n3
        .exec("bridge", &["fdb", "show", "dev", "vxlan.tabby"])
        .unwrap();
    for (mac, underlay) in [
        ("66:00:00:00:00:01", "10.0.1.10"),
        ("66:00:00:00:00:02", "10.0.1.11"),
    ] {
        assert!(
            fdb.contains(&format!("{mac} dst {underlay} self permanent")),
            "{fdb}"
        );
    }
    for (_, _, from) in &pods {
        for (_, to, _) in &pods {
            from.ping(*to).unwrap();
        }
    }
}
