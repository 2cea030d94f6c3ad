//! tabby-agent with a VXLAN CrossSubnet pool on two subnets joined by a router:
//! nodes on one subnet route each other's pods directly, and over `vxlan.tabby`
//! to the node behind the router, with VTEP entries from the datastore. The VTEP
//! addresses come from tabby's IPAM (a tunnel-only pool), as the agent asks for
//! them. Needs root.

mod daemon_support;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use api::datastore::{Datastore, MemoryStore};
use api::resources::{
    AllowedUse, Cidr, EncapsulationMode, IPPool, IPPoolSpec, Node as NodeResource,
};
use daemon_support::{
    RunningAgent, block_range, claim_block, options, pod, run, tabby_cni, wait_for_routes,
};
use harness::Lab;
use harness::cni::HostLocal as Runtime;
use serde_json::Value;

/// A pool for one use, with VXLAN CrossSubnet.
fn vxlan_pool(store: &MemoryStore, name: &str, cidr: &str, used: AllowedUse) {
    let mut spec = IPPoolSpec::new(Cidr(cidr.parse().unwrap()));
    spec.vxlan_mode = EncapsulationMode::CrossSubnet;
    spec.allowed_uses = vec![used];
    run(store.create(&IPPool::new(name, spec))).unwrap();
}

/// Node `name`'s VTEP address once IPAM has given it one, and the tunnel block
/// that holds it.
fn vtep(store: &MemoryStore, name: &str) -> (IpAddr, String) {
    let address = harness::wait_until(Duration::from_secs(30), &format!("{name}'s VTEP"), || {
        let node: NodeResource = run(store.get(name))?;
        anyhow::Ok(node.spec.ipv4_vxlan_tunnel_addr)
    })
    .unwrap();
    let block = format!("{}/26", {
        let octets = address.octets();
        std::net::Ipv4Addr::new(octets[0], octets[1], octets[2], octets[3] & 0xc0)
    });
    (address.into(), block)
}

#[test]
#[ignore = "needs root"]
fn daemon_vxlan_crosssubnet_goes_direct_on_the_subnet_and_over_vxlan_across_the_router() {
    harness::require_root();
    let lab = Lab::new("daemon_vxlan_crosssubnet")
        .subnet("a", "10.0.1.0/24")
        .subnet("b", "10.0.2.0/24")
        .node("n1", "a")
        .node("n2", "a")
        .node("n3", "b")
        .build()
        .unwrap();
    let store = Arc::new(MemoryStore::new());
    vxlan_pool(&store, "pods", "10.244.0.0/16", AllowedUse::Workload);
    vxlan_pool(&store, "tunnels", "10.250.0.0/24", AllowedUse::Tunnel);
    let names = ["n1", "n2", "n3"];
    let mut agents = Vec::new();
    let mut pods = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let node = lab.node(name);
        let block = format!("10.244.{}.0/26", i + 1);
        claim_block(&store, name, &block);
        agents.push(RunningAgent::start(node, store.clone(), options(node)));
        let runtime = Runtime::new(&lab, node, block_range(&block), tabby_cni());
        let netns = lab.pod(&format!("p{}", i + 1)).unwrap();
        let ip = pod(&store, &runtime, node, &format!("p{}", i + 1), &netns);
        pods.push((runtime.host_veth(&format!("p{}", i + 1)), ip, netns));
    }
    let vteps: Vec<(IpAddr, String)> = names.iter().map(|n| vtep(&store, n)).collect();
    let underlay = ["10.0.1.10", "10.0.1.11", "10.0.2.10"];
    // Node i's table: its pod, its two blocks blackholed, and each other node's
    // two blocks, directly on the same subnet, over VXLAN across the router.
    let table = |i: usize| -> BTreeSet<String> {
        let (veth, ip, _) = &pods[i];
        let mut lines = BTreeSet::from([
            format!("{ip}/32 dev {veth} scope link"),
            format!("blackhole 10.244.{}.0/26", i + 1),
            format!("blackhole {}", vteps[i].1),
        ]);
        for j in (0..3).filter(|j| *j != i) {
            let same_subnet = (i < 2) == (j < 2);
            let via = if same_subnet {
                format!("via {} dev eth0", underlay[j])
            } else {
                format!("via {} dev vxlan.tabby onlink", vteps[j].0)
            };
            lines.insert(format!("10.244.{}.0/26 {via}", j + 1));
            lines.insert(format!("{} {via}", vteps[j].1));
        }
        lines
    };
    for (i, name) in names.iter().enumerate() {
        wait_for_routes(lab.node(name), &table(i));
    }
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
    assert_eq!(addresses, [vteps[2].0.to_string()]);
    let fdb = n3
        .exec("bridge", &["fdb", "show", "dev", "vxlan.tabby"])
        .unwrap();
    for (i, name) in ["n1", "n2"].iter().enumerate() {
        let node: NodeResource = run(store.get(name)).unwrap();
        let mac = node.spec.vxlan_tunnel_mac_addr.unwrap();
        assert!(
            fdb.contains(&format!("{mac} dst {} self permanent", underlay[i])),
            "{fdb}"
        );
    }
    for (_, _, from) in &pods {
        for (_, to, _) in &pods {
            from.ping(*to).unwrap();
        }
    }
    drop(agents);
}
