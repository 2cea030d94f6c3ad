//! tabby end to end in the node-to-node mesh: five nodes (three on subnet a, two on
//! subnet b behind a router), etcd, `tabby-agent` processes, pods attached by
//! `tabby-cni` with `tabby-ipam` as a runtime attaches them (VXLAN-Always also
//! on the Kubernetes datastore, `kdd_`). Every node's kernel
//! routes are compared with the table the datastore implies, and pods ping each
//! other. Needs root.

use std::time::Duration;

use api::datastore::config::DatastoreType;
use api::datastore::{Backend, Datastore};
use api::resources::{Cidr, EncapsulationMode, IPPool, IPPoolSpec, Node};
use harness::e2e::{Cluster, Pod, ping_all};
use harness::routes::routes;
use harness::{Lab, wait_until};

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

/// A cluster of `nodes` on etcd with one pool (VXLAN as `vxlan` says, no IPIP:
/// the host kernel has none), every agent ready and one pod per node.
fn cluster(test: &str, nodes: &[&str], vxlan: EncapsulationMode) -> (Cluster, Vec<Pod>) {
    cluster_on(test, nodes, vxlan, DatastoreType::Etcd)
}

/// [`cluster`] on `datastore`.
fn cluster_on(
    test: &str,
    nodes: &[&str],
    vxlan: EncapsulationMode,
    datastore: DatastoreType,
) -> (Cluster, Vec<Pod>) {
    let mut cluster = Cluster::on(lab(test, nodes), datastore).unwrap();
    let mut spec = IPPoolSpec::new(Cidr("10.244.0.0/16".parse().unwrap()));
    spec.vxlan_mode = vxlan;
    cluster
        .create(&IPPool::new("default-ipv4-ippool", spec))
        .unwrap();
    cluster.start_agents(nodes, READY).unwrap();
    let pods = cluster.add_pod_per_node(nodes).unwrap();
    (cluster, pods)
}

fn wait_for_tables(cluster: &Cluster, nodes: &[&str], pods: &[Pod]) {
    cluster.wait_for_routes(nodes, pods, CONVERGED).unwrap();
}

const FIVE: [&str; 5] = ["n1", "n2", "n3", "n4", "n5"];

#[test]
#[ignore = "needs root"]
fn e2e_mesh_vxlan_crosssubnet_five_nodes_two_subnets_every_pod_reaches_every_pod() {
    harness::require_root();
    let (cluster, pods) = cluster(
        "e2e_mesh_vxlan_crosssubnet",
        &FIVE,
        EncapsulationMode::CrossSubnet,
    );
    wait_for_tables(&cluster, &FIVE, &pods);
    ping_all(&pods).unwrap();
}

#[test]
#[ignore = "needs root"]
fn e2e_mesh_vxlan_always_five_nodes_every_pod_reaches_every_pod() {
    harness::require_root();
    let (cluster, pods) = cluster("e2e_mesh_vxlan_always", &FIVE, EncapsulationMode::Always);
    wait_for_tables(&cluster, &FIVE, &pods);
    ping_all(&pods).unwrap();
}

#[test]
#[ignore = "needs root"]
fn kdd_mesh_vxlan_always_three_nodes_two_subnets_every_pod_reaches_every_pod() {
    harness::require_root();
    // (VXLAN CrossSubnet on Kubernetes is e2e_kdd's mesh.)
    let nodes = ["n1", "n2", "n4"];
    let (cluster, pods) = cluster_on(
        "kdd_mesh_vxlan_always",
        &nodes,
        EncapsulationMode::Always,
        DatastoreType::Kubernetes,
    );
    wait_for_tables(&cluster, &nodes, &pods);
    ping_all(&pods).unwrap();
}

const SUBNET_A: [&str; 3] = ["n1", "n2", "n3"];

#[test]
#[ignore = "needs root"]
fn e2e_mesh_without_encapsulation_routes_pods_over_bgp_on_one_subnet() {
    harness::require_root();
    let (cluster, pods) = cluster("e2e_mesh_direct", &SUBNET_A, EncapsulationMode::Never);
    wait_for_tables(&cluster, &SUBNET_A, &pods);
    ping_all(&pods).unwrap();
}

#[test]
#[ignore = "needs root"]
fn e2e_a_deleted_pod_and_its_released_block_leave_every_nodes_table() {
    harness::require_root();
    let (cluster, mut pods) = cluster("e2e_pod_deleted", &SUBNET_A, EncapsulationMode::Never);
    wait_for_tables(&cluster, &SUBNET_A, &pods);
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
    assert!(!cluster.facts().unwrap().owners.contains_key(&node));
    wait_for_tables(&cluster, &SUBNET_A, &pods);
    ping_all(&pods).unwrap();
}

#[test]
#[ignore = "needs root"]
fn e2e_a_removed_node_is_dropped_and_its_routes_withdrawn_everywhere() {
    harness::require_root();
    let (mut cluster, mut pods) = cluster("e2e_node_removed", &SUBNET_A, EncapsulationMode::Never);
    wait_for_tables(&cluster, &SUBNET_A, &pods);
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
    ping_all(&pods).unwrap();
}
