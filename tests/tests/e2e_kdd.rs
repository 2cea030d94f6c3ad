//! tabby on the Kubernetes datastore end to end, the mode users run: the API double
//! as a process (`tabby-kube-api`) on the lab's router with the CRDs and admission
//! policies of `manifests/`, and every binary (tabby-agent, tabby-cni with
//! tabby-ipam, tabby-reflector, tabby-ipam-controller) a process talking to it over
//! HTTP with its own service account's token, as the manifests install them. The
//! harness writes what kubelet would (core Nodes, Pods). Needs root.
//!
//! The same suites on etcd are `e2e_mesh`, `e2e_reflector` and the IPAM checks of
//! `e2e_faults`; `-E 'test(/kdd_/)'` selects the Kubernetes runs.

use std::time::Duration;

use api::datastore::config::DatastoreType;
use api::datastore::{Datastore, ListOptions};
use api::resources::{Cidr, EncapsulationMode, IPPool, IPPoolSpec, Node, Resource};
use harness::e2e::{Clients, Cluster, Pod, ping_all};
use harness::{Lab, wait_until};

const READY: Duration = Duration::from_secs(60);
const CONVERGED: Duration = Duration::from_secs(30);
/// n1 and n2 on subnet a, n3 on subnet b behind the router.
const NODES: [&str; 3] = ["n1", "n2", "n3"];

fn lab(test: &str) -> Lab {
    Lab::new(test)
        .subnet("a", "10.0.1.0/24")
        .subnet("b", "10.0.2.0/24")
        .node("n1", "a")
        .node("n2", "a")
        .node("n3", "b")
        .build()
        .unwrap()
}

/// [`NODES`] on the Kubernetes datastore with the default pool (VXLAN across
/// subnets: the host kernel has no IPIP), every agent ready, a pod on each node.
fn cluster(test: &str) -> (Cluster, Vec<Pod>) {
    let mut cluster = Cluster::on(lab(test), DatastoreType::Kubernetes).unwrap();
    let mut spec = IPPoolSpec::new(Cidr("10.244.0.0/16".parse().unwrap()));
    spec.vxlan_mode = EncapsulationMode::CrossSubnet;
    cluster
        .create(&IPPool::new("default-ipv4-ippool", spec))
        .unwrap();
    cluster.start_agents(&NODES, READY).unwrap();
    let pods = cluster.add_pod_per_node(&NODES).unwrap();
    cluster.wait_for_routes(&NODES, &pods, CONVERGED).unwrap();
    ping_all(&pods).unwrap();
    (cluster, pods)
}

/// The addresses the CNI handle of `pod` holds in IPAM.
fn held(cluster: &Cluster, pod: &str, node: &str) -> usize {
    let handle = ipam::handles::cni_handle_id("k8s-pod-network", &format!("ctr-{pod}"));
    cluster
        .datastore(async |store| ipam::handles::addresses_of(&*store, &handle, node).await)
        .unwrap()
        .unwrap()
        .len()
}

#[test]
#[ignore = "needs root"]
fn kdd_mesh_agents_register_clear_network_unavailable_route_pods_then_cni_del_releases() {
    harness::require_root();
    let (mut cluster, mut pods) = cluster("kdd_mesh");

    // Each ready agent cleared its Kubernetes Node's NetworkUnavailable condition
    // (a strategic merge patch of nodes/status on its own token).
    for node in NODES {
        wait_until(CONVERGED, &format!("{node}'s NetworkUnavailable"), || {
            anyhow::Ok(
                cluster.network_condition(node)?
                    == Some(("False".to_owned(), "TabbyIsUp".to_owned())),
            )
        })
        .unwrap();
    }

    // Each agent registered its own tabby Node through the API, on its own token
    // (the admission policy lets an agent write only its node's objects).
    let nodes = cluster
        .datastore(async |store| store.list::<Node>(&ListOptions::default()).await)
        .unwrap()
        .unwrap();
    let mut names: Vec<&str> = nodes.items.iter().map(|n| n.name()).collect();
    names.sort();
    assert_eq!(names, NODES);
    for node in &nodes.items {
        let address = cluster.lab.node(node.name()).address().to_string();
        let bgp = node
            .spec
            .bgp
            .as_ref()
            .expect("the agent wrote its BGP spec");
        let ipv4 = bgp.ipv4_address.as_ref().expect("an IPv4 address");
        assert!(ipv4.to_string().starts_with(&address), "{node:?}");
    }

    // CNI DEL: the pod's route goes from every node and its address back to IPAM.
    let gone = pods.pop().unwrap();
    assert_eq!(held(&cluster, &gone.name, &gone.node), 1);
    let (name, node) = (gone.name.clone(), gone.node.clone());
    cluster.delete_pod(gone).unwrap();
    cluster.wait_for_routes(&NODES, &pods, CONVERGED).unwrap();
    assert_eq!(held(&cluster, &name, &node), 0);
    ping_all(&pods).unwrap();
    nothing_pruned(&cluster);

    // An agent that stops sets the condition again; the others' stay clear.
    cluster.agent("n3").unwrap().stop(CONVERGED);
    assert_eq!(
        cluster.network_condition("n3").unwrap(),
        Some(("True".to_owned(), "TabbyIsDown".to_owned()))
    );
    assert_eq!(
        cluster.network_condition("n1").unwrap(),
        Some(("False".to_owned(), "TabbyIsUp".to_owned()))
    );
}

/// Every field the binaries wrote was in its CRD's schema (a real API server
/// would have dropped the others).
fn nothing_pruned(cluster: &Cluster) {
    let pruned = cluster.kube_api().unwrap().pruned();
    assert_eq!(pruned, Vec::<String>::new(), "fields pruned");
}

#[test]
#[ignore = "needs root"]
fn kdd_reflector_from_the_api_with_the_mesh_off_gives_every_pod_a_route() {
    harness::require_root();
    const AS: u32 = 64512;
    let machines = ["n1", "n2", "n3", "rr1"];
    let mut cluster = Cluster::with_reflectors(
        "kdd_reflector",
        "10.0.1.0/24",
        &machines,
        &["rr1"],
        AS,
        DatastoreType::Kubernetes,
    )
    .unwrap();
    cluster
        .start_reflector("rr1", AS, "10.0.1.250".parse().unwrap(), Clients::Datastore)
        .unwrap();
    cluster
        .start_behind_reflector("rr1", &NODES, READY, CONVERGED)
        .unwrap();
    nothing_pruned(&cluster);
}

#[test]
#[ignore = "needs root"]
fn kdd_ipam_controller_frees_the_address_of_a_pod_deleted_without_cni_del() {
    harness::require_root();
    let (mut cluster, mut pods) = cluster("kdd_ipam_gc");
    cluster.start_controller("1s", "1s").unwrap();
    let leaked = pods.pop().unwrap();
    assert_eq!(held(&cluster, &leaked.name, &leaked.node), 1);

    // The kubelet lost the pod: its object goes, no CNI DEL comes.
    cluster.delete_pod_object(&leaked.name).unwrap();
    wait_until(
        CONVERGED,
        "the controller to free the leaked address",
        || anyhow::Ok(held(&cluster, &leaked.name, &leaked.node) == 0),
    )
    .unwrap();
    // The live pods keep theirs, and the controller's passes succeed.
    for pod in &pods {
        assert_eq!(held(&cluster, &pod.name, &pod.node), 1, "{}", pod.name);
    }
    let passes = cluster.controller_passes().unwrap();
    assert!(passes.ok > 0 && passes.failed == 0, "{passes:?}");
    nothing_pruned(&cluster);
}
