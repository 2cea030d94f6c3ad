//! tabby's CNI plugins called by a real container runtime: three lab nodes, each
//! with a tabby-agent over etcd (the first test also over the Kubernetes
//! datastore: `kdd_cri_…`) and containerd 1.6 with its CRI plugin, tabby
//! installed into the node's CNI directories by the agent image's
//! `tabby-install-cni` from `manifests/` (see `harness::e2e`'s `cri` module for the
//! two lab-only changes to the conflist). Pods are sandboxes asked for over the CRI
//! as kubelet asks (`harness::cri::CriClient`), so containerd passes the
//! `K8S_POD_*` CNI_ARGS and chains portmap. Needs root.
//!
//! The sandbox image: no registry is reachable, so `harness::cri::pause` writes a
//! one-layer image holding Debian's static busybox (`sleep` holds the namespaces)
//! as a `docker save` archive, imported with `ctr -n k8s.io images import`; the
//! CRI config's `sandbox_image` names its tag, so nothing is pulled.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use api::datastore::config::DatastoreType;
use api::datastore::{Datastore, ListOptions};
use api::resources::{Cidr, IPPool, IPPoolSpec, WorkloadEndpoint};
use harness::cri::{PodSpec, Sandbox};
use harness::e2e::Cluster;
use harness::{Lab, wait_until};
use ipnet::IpNet;

const NODES: [&str; 3] = ["n1", "n2", "n3"];
const POOL: &str = "10.244.0.0/16";
const NETWORK: &str = "k8s-pod-network";
const READY: Duration = Duration::from_secs(60);
const CONVERGED: Duration = Duration::from_secs(30);

/// Three nodes on one subnet (direct routes), etcd on the router, an agent and a
/// containerd per node.
fn cluster(test: &str) -> Cluster {
    cluster_on(test, DatastoreType::Etcd)
}

/// [`cluster`] on `datastore`.
fn cluster_on(test: &str, datastore: DatastoreType) -> Cluster {
    let lab = Lab::new(test)
        .subnet("a", "10.0.1.0/24")
        .node("n1", "a")
        .node("n2", "a")
        .node("n3", "a")
        .router()
        .build()
        .unwrap();
    let mut cluster = Cluster::on(lab, datastore).unwrap();
    cluster
        .create(&IPPool::new(
            "default-ipv4-ippool",
            IPPoolSpec::new(Cidr(POOL.parse().unwrap())),
        ))
        .unwrap();
    for node in NODES {
        cluster.start_agent(node).unwrap();
    }
    for node in NODES {
        cluster.wait_ready(node, READY).unwrap();
        cluster.start_containerd(node).unwrap();
    }
    cluster
}

/// Runs `pod` on `node` and checks the sandbox is ready with a pool address.
fn run(cluster: &mut Cluster, node: &str, pod: &PodSpec) -> Sandbox {
    let sandbox = cluster.run_pod(node, pod).unwrap();
    assert!(sandbox.ready, "{sandbox:?}");
    let ip = sandbox
        .ip
        .unwrap_or_else(|| panic!("no address: {sandbox:?}"));
    let pool: IpNet = POOL.parse().unwrap();
    assert!(pool.contains(&ip), "{ip} is outside {POOL}");
    sandbox
}

/// Every sandbox pings every other (waiting for the routes of the first ping).
fn ping_all(sandboxes: &[&Sandbox]) {
    for from in sandboxes {
        for to in sandboxes {
            let to = to.ip.unwrap();
            wait_until(CONVERGED, &format!("{} to reach {to}", from.id), || {
                anyhow::Ok(from.ping(to).map_err(|e| format!("{e:#}")))
            })
            .unwrap();
        }
    }
}

/// The WorkloadEndpoints in the datastore, by pod name.
fn endpoints(cluster: &Cluster) -> Vec<WorkloadEndpoint> {
    cluster
        .datastore(async |store| {
            store
                .list::<WorkloadEndpoint>(&ListOptions::default())
                .await
                .map(|list| list.items)
        })
        .unwrap()
        .unwrap()
}

/// The addresses IPAM holds for sandbox `id` (its CNI handle) on `node`.
fn held(cluster: &Cluster, id: &str, node: &str) -> Vec<IpAddr> {
    let handle = ipam::handles::cni_handle_id(NETWORK, id);
    cluster
        .datastore(async |store| ipam::handles::addresses_of(&*store, &handle, node).await)
        .unwrap()
        .unwrap()
        .into_iter()
        .map(|assignment| assignment.ip)
        .collect()
}

/// The links in `node`'s namespace.
fn links(cluster: &Cluster, node: &str) -> String {
    cluster.lab.node(node).ip("-o link show").unwrap()
}

#[test]
#[ignore = "needs root"]
fn cri_sandboxes_on_three_nodes_get_addresses_are_recorded_reach_each_other_and_release_everything()
{
    harness::require_root();
    sandboxes_get_addresses_reach_each_other_and_release_everything(
        "cri_sandboxes_on_three_nodes",
        DatastoreType::Etcd,
    );
}

#[test]
#[ignore = "needs root"]
fn kdd_cri_sandboxes_on_three_nodes_get_addresses_are_recorded_reach_each_other_and_release_everything()
 {
    harness::require_root();
    sandboxes_get_addresses_reach_each_other_and_release_everything(
        "kdd_cri_sandboxes",
        DatastoreType::Kubernetes,
    );
}

/// Sandboxes on three nodes (two on n1) get pool addresses held by their CNI
/// handles, are recorded under kubelet's pod names, reach each other, and give
/// everything back at StopPodSandbox / RemovePodSandbox.
fn sandboxes_get_addresses_reach_each_other_and_release_everything(
    test: &str,
    datastore: DatastoreType,
) {
    let mut cluster = cluster_on(test, datastore);
    let pods: Vec<(&str, PodSpec)> = vec![
        ("n1", PodSpec::new("shop", "web-0")),
        ("n1", PodSpec::new("shop", "web-1")),
        ("n2", PodSpec::new("shop", "cart-0")),
        ("n3", PodSpec::new("billing", "api-0")),
    ];
    let sandboxes: Vec<Sandbox> = pods
        .iter()
        .map(|(node, pod)| run(&mut cluster, node, pod))
        .collect();

    // tabby-ipam assigned each address to the sandbox's handle on its node, and
    // tabby-cni recorded the pod under the name and namespace kubelet gave it.
    let recorded = endpoints(&cluster);
    assert_eq!(recorded.len(), pods.len(), "{recorded:#?}");
    for ((node, pod), sandbox) in pods.iter().zip(&sandboxes) {
        let ip = sandbox.ip.unwrap();
        assert_eq!(held(&cluster, &sandbox.id, node), vec![ip], "{}", pod.name);
        let endpoint = recorded
            .iter()
            .find(|e| e.spec.pod == pod.name)
            .unwrap_or_else(|| panic!("no endpoint for {}: {recorded:#?}", pod.name));
        assert_eq!(endpoint.spec.namespace, pod.namespace);
        assert_eq!(endpoint.spec.node, *node);
        assert_eq!(endpoint.spec.container_id, sandbox.id);
        assert_eq!(endpoint.spec.ips().collect::<Vec<_>>(), vec![ip]);
        assert!(
            links(&cluster, node).contains(&endpoint.spec.interface_name),
            "{} has no {}",
            node,
            endpoint.spec.interface_name
        );
    }
    ping_all(&sandboxes.iter().collect::<Vec<_>>());

    // kubelet's teardown: StopPodSandbox (CNI DEL), then RemovePodSandbox.
    for ((node, pod), sandbox) in pods.iter().zip(&sandboxes) {
        let veth = recorded
            .iter()
            .find(|e| e.spec.pod == pod.name)
            .map(|e| e.spec.interface_name.clone())
            .unwrap();
        let client = cluster.containerd(node).unwrap().client();
        client.stop_pod_sandbox(&sandbox.id).unwrap();
        assert!(held(&cluster, &sandbox.id, node).is_empty(), "{}", pod.name);
        assert!(!links(&cluster, node).contains(&veth), "{veth} is left");
        client.remove_pod_sandbox(&sandbox.id).unwrap();
        assert!(
            client
                .list_pod_sandbox()
                .unwrap()
                .iter()
                .all(|s| s.id != sandbox.id),
            "{} still listed",
            pod.name
        );
        assert!(
            !sandbox.netns.exists(),
            "{} is left",
            sandbox.netns.display()
        );
    }
    assert!(endpoints(&cluster).is_empty(), "{:#?}", endpoints(&cluster));
}

#[test]
#[ignore = "needs root"]
fn cri_a_containerd_restart_leaves_running_sandboxes_their_addresses_and_reachability() {
    harness::require_root();
    let mut cluster = cluster("cri_containerd_restart");
    let web = run(&mut cluster, "n1", &PodSpec::new("shop", "web-0"));
    let cart = run(&mut cluster, "n2", &PodSpec::new("shop", "cart-0"));
    ping_all(&[&web, &cart]);
    let before = endpoints(&cluster);

    let containerd = cluster.containerd("n1").unwrap();
    containerd.stop();
    // The pod keeps its network while the runtime is down ...
    ping_all(&[&web, &cart]);
    containerd.start().unwrap();
    containerd.wait_ready(READY).unwrap();

    // ... and the restarted runtime finds it as it was: no new CNI ADD or DEL.
    let again = containerd.client().pod_sandbox_status(&web.id).unwrap();
    assert!(again.ready, "{again:?}");
    assert_eq!(
        (again.ip, again.pid, &again.netns),
        (web.ip, web.pid, &web.netns)
    );
    assert_eq!(endpoints(&cluster), before);
    assert_eq!(held(&cluster, &web.id, "n1"), vec![web.ip.unwrap()]);
    ping_all(&[&web, &cart]);
}

#[test]
#[ignore = "needs root"]
fn cri_a_host_port_reaches_the_pod_through_portmap_from_another_node() {
    harness::require_root();
    let mut cluster = cluster("cri_host_port");
    let mut pod = PodSpec::new("shop", "web-0");
    pod.host_ports.push((8080, 30080));
    let web = run(&mut cluster, "n1", &pod);

    let listener = web
        .run(|| TcpListener::bind("0.0.0.0:8080"))
        .unwrap()
        .unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, peer) = listener.accept().unwrap();
        stream.write_all(b"web-0\n").unwrap();
        peer
    });
    let n1 = SocketAddr::new(cluster.lab.node("n1").address(), 30080);
    let reply = cluster
        .lab
        .node("n2")
        .run(|| -> std::io::Result<String> {
            let mut stream = TcpStream::connect_timeout(&n1, Duration::from_secs(5))?;
            let mut reply = String::new();
            stream.read_to_string(&mut reply)?;
            Ok(reply)
        })
        .unwrap()
        .unwrap();
    assert_eq!(reply, "web-0\n");
    // DNAT to the pod, and portmap's SNAT leaves a remote client's address alone.
    let peer = server.join().unwrap();
    assert_eq!(peer.ip(), cluster.lab.node("n2").address());
}
