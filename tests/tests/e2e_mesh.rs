//! tabby end to end in the node-to-node mesh: five nodes (three on subnet a, two on
//! subnet b behind a router), etcd, `tabby-agent` processes, pods attached by
//! `tabby-cni` with `tabby-ipam` as a runtime attaches them. Every node's kernel
//! routes are compared with the table the datastore implies, and pods ping each
//! other. Needs root.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use api::datastore::{Backend, Datastore, ListOptions};
use api::resources::{
    AffinityState, BlockAffinity, Cidr, EncapsulationMode, IPAMBlock, IPPool, IPPoolSpec, Node,
};
use tests::e2e::{Cluster, Pod};
use tests::routes::routes;
use tests::{Lab, wait_until};

const READY: Duration = Duration::from_secs(60);
const CONVERGED: Duration = Duration::from_secs(30);

/// Subnet a: n1, n2, n3 (10.0.1.10-12); subnet b: n4, n5 (10.0.2.10-11).
fn lab(test: &str, nodes: &[&str]) -> Lab {
    let mut builder = Lab::new(test)
        .subnet("a", "10.0.1.0/24")
        .subnet("b", "10.0.2.0/24");
    for node in nodes {
        let subnet = if ["n1", "n2", "n3"].contains(node) {
            "a"
        } else {
            "b"
        };
        builder = builder.node(node, subnet);
    }
    builder.build().unwrap()
}

/// How pods' traffic between nodes is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Direct,
    VxlanCrossSubnet,
    VxlanAlways,
}

/// A cluster of `nodes` with one pool in `mode`, every agent ready and one pod
/// per node.
fn cluster(test: &str, nodes: &[&str], mode: Mode) -> (Cluster, Vec<Pod>) {
    let mut cluster = Cluster::new(lab(test, nodes)).unwrap();
    let mut spec = IPPoolSpec::new(Cidr("10.244.0.0/16".parse().unwrap()));
    spec.vxlan_mode = match mode {
        Mode::Direct => EncapsulationMode::Never,
        Mode::VxlanCrossSubnet => EncapsulationMode::CrossSubnet,
        Mode::VxlanAlways => EncapsulationMode::Always,
    };
    cluster
        .datastore(async |store| {
            store
                .create(&IPPool::new("default-ipv4-ippool", spec))
                .await
        })
        .unwrap()
        .unwrap();
    for node in nodes {
        cluster.start_agent(node).unwrap();
    }
    for node in nodes {
        cluster.wait_ready(node, READY).unwrap();
    }
    let pods = nodes
        .iter()
        .map(|node| cluster.add_pod(node, &format!("pod-{node}")).unwrap())
        .collect();
    (cluster, pods)
}

/// What the datastore says: block owners, and nodes' addresses and VTEPs.
struct Facts {
    owners: BTreeMap<String, Vec<String>>,
    address: BTreeMap<String, IpAddr>,
    vtep: BTreeMap<String, IpAddr>,
}

fn facts(cluster: &Cluster) -> Facts {
    cluster
        .datastore(async |store| {
            let all = ListOptions::default();
            let blocks = store.list::<IPAMBlock>(&all).await.unwrap().items;
            let affinities = store.list::<BlockAffinity>(&all).await.unwrap().items;
            let nodes = store.list::<Node>(&all).await.unwrap().items;
            let mut owners: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for block in &blocks {
                let Some(node) = block
                    .spec
                    .affinity
                    .as_deref()
                    .and_then(|a| a.strip_prefix("host:"))
                else {
                    continue;
                };
                let confirmed = affinities.iter().any(|a| {
                    a.spec.node == node
                        && a.spec.cidr == block.spec.cidr
                        && a.spec.state == AffinityState::Confirmed
                });
                if confirmed {
                    owners
                        .entry(node.to_owned())
                        .or_default()
                        .push(block.spec.cidr.to_string());
                }
            }
            let address = nodes
                .iter()
                .filter_map(|n| {
                    let cidr = n.spec.bgp.as_ref()?.ipv4_address?;
                    Some((n.metadata.name.clone(), cidr.0.addr()))
                })
                .collect();
            let vtep = nodes
                .iter()
                .filter_map(|n| {
                    Some((
                        n.metadata.name.clone(),
                        n.spec.ipv4_vxlan_tunnel_addr?.into(),
                    ))
                })
                .collect();
            Facts {
                owners,
                address,
                vtep,
            }
        })
        .unwrap()
}

fn same_subnet(a: &str, b: &str) -> bool {
    let on_a = |n: &str| ["n1", "n2", "n3"].contains(&n);
    on_a(a) == on_a(b)
}

/// Node `node`'s expected table of tabby's routes.
fn table(node: &str, pods: &[Pod], facts: &Facts, mode: Mode) -> BTreeSet<String> {
    let mut lines = BTreeSet::new();
    for pod in pods.iter().filter(|p| p.node == node) {
        lines.insert(format!("{}/32 dev {} scope link", pod.ip, pod.veth));
    }
    for (owner, blocks) in &facts.owners {
        for block in blocks {
            let line = if owner == node {
                format!("blackhole {block}")
            } else {
                let direct = match mode {
                    Mode::Direct => true,
                    Mode::VxlanCrossSubnet => same_subnet(node, owner),
                    Mode::VxlanAlways => false,
                };
                if direct {
                    format!("{block} via {} dev eth0", facts.address[owner])
                } else {
                    format!("{block} via {} dev vxlan.tabby onlink", facts.vtep[owner])
                }
            };
            lines.insert(line);
        }
    }
    lines
}

fn wait_for_tables(cluster: &Cluster, nodes: &[&str], pods: &[Pod], mode: Mode) {
    for node in nodes {
        wait_until(CONVERGED, &format!("{node}'s routes"), || {
            let expected = table(node, pods, &facts(cluster), mode);
            let actual = routes(cluster.lab.node(node), "84")?;
            anyhow::Ok(if actual == expected {
                Ok(())
            } else {
                Err(format!("expected {expected:#?}, kernel has {actual:#?}"))
            })
        })
        .unwrap();
    }
}

fn ping_all(pods: &[Pod]) {
    for from in pods {
        for to in pods {
            from.netns.ping(to.ip).unwrap();
        }
    }
}

const FIVE: [&str; 5] = ["n1", "n2", "n3", "n4", "n5"];

#[test]
fn e2e_mesh_vxlan_crosssubnet_five_nodes_two_subnets_every_pod_reaches_every_pod() {
    if !tests::require_root() {
        return;
    }
    let (cluster, pods) = cluster("e2e_mesh_vxlan_crosssubnet", &FIVE, Mode::VxlanCrossSubnet);
    wait_for_tables(&cluster, &FIVE, &pods, Mode::VxlanCrossSubnet);
    ping_all(&pods);
}

#[test]
fn e2e_mesh_vxlan_always_five_nodes_every_pod_reaches_every_pod() {
    if !tests::require_root() {
        return;
    }
    let (cluster, pods) = cluster("e2e_mesh_vxlan_always", &FIVE, Mode::VxlanAlways);
    wait_for_tables(&cluster, &FIVE, &pods, Mode::VxlanAlways);
    ping_all(&pods);
}

const SUBNET_A: [&str; 3] = ["n1", "n2", "n3"];

#[test]
fn e2e_mesh_without_encapsulation_routes_pods_over_bgp_on_one_subnet() {
    if !tests::require_root() {
        return;
    }
    let (cluster, pods) = cluster("e2e_mesh_direct", &SUBNET_A, Mode::Direct);
    wait_for_tables(&cluster, &SUBNET_A, &pods, Mode::Direct);
    ping_all(&pods);
}

#[test]
fn e2e_a_deleted_pod_and_its_released_block_leave_every_nodes_table() {
    if !tests::require_root() {
        return;
    }
    let (cluster, mut pods) = cluster("e2e_pod_deleted", &SUBNET_A, Mode::Direct);
    wait_for_tables(&cluster, &SUBNET_A, &pods, Mode::Direct);
    let gone = pods.pop().unwrap();
    let node = gone.node.clone();
    cluster.delete_pod(gone).unwrap();
    // IPAM's housekeeping releases the block that emptied.
    let released = cluster
        .datastore(async |store: std::sync::Arc<dyn Backend>| {
            ipam::Allocator::new(store, node.clone())
                .release_empty_blocks()
                .await
        })
        .unwrap()
        .unwrap();
    assert_eq!(released.len(), 1, "{released:?}");
    assert!(!facts(&cluster).owners.contains_key(&node));
    wait_for_tables(&cluster, &SUBNET_A, &pods, Mode::Direct);
    ping_all(&pods);
}

#[test]
fn e2e_a_removed_node_is_dropped_and_its_routes_withdrawn_everywhere() {
    if !tests::require_root() {
        return;
    }
    let (mut cluster, mut pods) = cluster("e2e_node_removed", &SUBNET_A, Mode::Direct);
    wait_for_tables(&cluster, &SUBNET_A, &pods, Mode::Direct);
    // The node is decommissioned: its agent stops, its Node resource goes.
    cluster.kill_agent("n3");
    pods.retain(|p| p.node != "n3");
    cluster
        .datastore(async |store| store.delete::<Node>("n3", None).await)
        .unwrap()
        .unwrap();
    for node in ["n1", "n2"] {
        wait_until(CONVERGED, &format!("{node} to forget n3"), || {
            let table = routes(cluster.lab.node(node), "84")?;
            anyhow::Ok(if table.iter().any(|l| l.contains("10.0.1.12")) {
                Err(format!("{table:#?}"))
            } else {
                Ok(())
            })
        })
        .unwrap();
    }
    ping_all(&pods);
}
