//! Faults a cluster must survive (issue #16): the datastore going away, daemons
//! killed with SIGKILL, silent partitions. A cluster of real binaries (etcd in the
//! router's namespace, tabby-agent on three nodes in the mesh,
//! tabby-ipam-controller, pods attached by tabby-cni) has pods pinging each other
//! across nodes while the fault lasts; ping's own statistics count what was lost,
//! `ip monitor` on every node records what changed in the kernel. Needs root.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use api::datastore::Datastore;
use api::datastore::config::DatastoreType;
use api::resources::{Cidr, IPAMBlock, IPPool, IPPoolSpec, Resource, WorkloadEndpoint};
use harness::e2e::{Clients, Cluster, NAMESPACE, Pings, Pod, Sandbox, list_peers, ping_all};
use harness::partition::Partition;
use harness::routes::RouteMonitor;
use harness::{Lab, wait_until};
use ipam::table::{AllocationTable, attr};
use proto::bgp_status::SessionState;

const NODES: [&str; 3] = ["n1", "n2", "n3"];
const READY: Duration = Duration::from_secs(60);
const CONVERGED: Duration = Duration::from_secs(30);
/// How long a component may take to find etcd again once it is back (the etcd
/// client's reconnection backoff and the controller's next pass).
const RECOVERED: Duration = Duration::from_secs(60);

/// Three nodes on one subnet in the mesh, etcd on the router, an agent per node,
/// the controller (a pass every 2 s, nothing old enough to reclaim) and a pod per
/// node whose routes are in place everywhere.
fn cluster(test: &str) -> (Cluster, Vec<Pod>) {
    let mut builder = Lab::new(test).subnet("a", "10.0.1.0/24").router();
    for node in NODES {
        builder = builder.node(node, "a");
    }
    let mut cluster = Cluster::new(builder.build().unwrap()).unwrap();
    let pool = IPPoolSpec::new(Cidr("10.244.0.0/16".parse().unwrap()));
    cluster
        .create(&IPPool::new("default-ipv4-ippool", pool))
        .unwrap();
    cluster.start_agents(&NODES, READY).unwrap();
    cluster.start_controller("2s", "15m").unwrap();
    let pods = cluster.add_pod_per_node(&NODES).unwrap();
    cluster.wait_for_routes(&NODES, &pods, CONVERGED).unwrap();
    ping_all(&pods).unwrap();
    wait_until(CONVERGED, "a controller pass", || {
        anyhow::Ok(cluster.controller_passes()?.ok > 0)
    })
    .unwrap();
    (cluster, pods)
}

/// The mesh off: n1..n3 peer only with tabby-reflector on rr1, whose clients
/// come from `clients`; a pod per node, routed everywhere.
fn reflector_cluster(test: &str, clients: Clients) -> (Cluster, Vec<Pod>) {
    const AS: u32 = 64512;
    let machines = ["n1", "n2", "n3", "rr1"];
    let mut cluster = Cluster::with_reflectors(
        test,
        "10.0.1.0/24",
        &machines,
        &["rr1"],
        AS,
        DatastoreType::Etcd,
    )
    .unwrap();
    cluster
        .start_reflector("rr1", AS, "10.0.1.250".parse().unwrap(), clients)
        .unwrap();
    let pods = cluster
        .start_behind_reflector("rr1", &NODES, READY, CONVERGED)
        .unwrap();
    (cluster, pods)
}

/// Each pod pings the next one's, on another node, for `duration`.
fn ping_around(pods: &[Pod], duration: Duration) -> Vec<Pings> {
    pods.iter()
        .zip(pods.iter().cycle().skip(1))
        .map(|(from, to)| Pings::start(from, to, duration).unwrap())
        .collect()
}

fn assert_none_lost(pings: Vec<Pings>) {
    for pings in pings {
        let stats = pings.finish().unwrap();
        assert!(stats.transmitted > 0, "{stats:?}");
        assert_eq!(stats.lost(), 0, "{stats:?}");
    }
}

fn monitors(cluster: &Cluster) -> Vec<(&'static str, RouteMonitor)> {
    NODES
        .iter()
        .map(|node| (*node, RouteMonitor::start(cluster.lab.node(node)).unwrap()))
        .collect()
}

fn assert_unchanged(monitors: &[(&str, RouteMonitor)]) {
    for (node, monitor) in monitors {
        assert_eq!(
            monitor.changes(),
            Vec::<String>::new(),
            "{node}'s routes changed"
        );
    }
}

/// A pod added now gets its routes on every node and answers every pod: the
/// agents follow the datastore again.
fn a_new_pod_is_routed_everywhere(cluster: &Cluster, pods: &mut Vec<Pod>, node: &str) {
    let pod = cluster.add_pod(node, "pod-after").unwrap();
    pods.push(pod);
    cluster.wait_for_routes(&NODES, pods, RECOVERED).unwrap();
    ping_all(pods).unwrap();
}

/// Disables the default pool and creates another, so the next pod starts a new
/// block: only a node (or reflector) that follows IPAM again accepts its route.
fn switch_pools(cluster: &Cluster) {
    cluster
        .datastore(async |store| {
            let mut old = store.get::<IPPool>("default-ipv4-ippool").await?;
            old.spec.disabled = true;
            store.update(&old).await?;
            let new = IPPoolSpec::new(Cidr("10.245.0.0/16".parse().unwrap()));
            store.create(&IPPool::new("second", new)).await
        })
        .unwrap()
        .unwrap();
}

/// Stops etcd for `outage` while pods ping around the ring, checking every second
/// that the agents run (and what `also` checks); then asserts that no kernel route
/// changed and starts etcd again. The pings are the caller's to finish.
fn etcd_down(
    cluster: &mut Cluster,
    pods: &[Pod],
    outage: Duration,
    mut also: impl FnMut(&Cluster),
) -> Vec<Pings> {
    let before = cluster.tables(&NODES).unwrap();
    let monitors = monitors(cluster);
    let pings = ping_around(pods, outage + Duration::from_secs(10));
    cluster.etcd().unwrap().stop();
    let back = Instant::now() + outage;
    while Instant::now() < back {
        also(cluster);
        for node in NODES {
            cluster.agent(node).unwrap().check_running().unwrap();
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    assert_unchanged(&monitors);
    assert_eq!(cluster.tables(&NODES).unwrap(), before);
    cluster.etcd().unwrap().restart().unwrap();
    pings
}

/// etcd is gone for `outage` while pods ping across nodes: nothing is lost, no
/// kernel route changes, no daemon exits, and each finds etcd again by itself.
fn etcd_outage(test: &str, outage: Duration) {
    let (mut cluster, mut pods) = cluster(test);
    let pings = etcd_down(&mut cluster, &pods, outage, |_| {});
    let passes = cluster.controller_passes().unwrap();
    wait_until(RECOVERED, "a controller pass with etcd back", || {
        anyhow::Ok(cluster.controller_passes()?.ok > passes.ok)
    })
    .unwrap();
    assert_none_lost(pings);
    a_new_pod_is_routed_everywhere(&cluster, &mut pods, "n2");
}

/// 20 s is longer than every deadline of the etcd client (a request's 10 s, the
/// keepalive's 10 s + 5 s), so each component sees etcd gone, not just slow;
/// the minute the issue asks for is `slow::`, to keep CI's run short.
#[test]
#[ignore = "needs root"]
fn fault_etcd_down_longer_than_its_deadlines_loses_no_ping_changes_no_route_and_everything_recovers()
 {
    harness::require_root();
    etcd_outage("fault_etcd_down", Duration::from_secs(20));
}

/// tabby-agent on n1 is SIGKILLed mid-run and started again: the kernel keeps
/// its routes, peers keep n1's (graceful restart), pings go on, and the new agent
/// reads the kernel back and converges without changing a route.
#[test]
#[ignore = "needs root"]
fn fault_an_agent_killed_mid_run_leaves_its_routes_and_its_restart_changes_none() {
    harness::require_root();
    let (mut cluster, mut pods) = cluster("fault_agent_killed");
    let before = cluster.tables(&NODES).unwrap();
    let monitors = monitors(&cluster);
    let pings = ping_around(&pods, Duration::from_secs(20));
    cluster.kill_agent("n1");
    // Pods on n1 keep reaching the others with no agent there.
    ping_all(&pods).unwrap();
    assert_eq!(cluster.tables(&NODES).unwrap(), before);
    cluster.start_agent("n1").unwrap();
    cluster.wait_ready("n1", READY).unwrap();
    assert_none_lost(pings);
    assert_unchanged(&monitors);
    assert_eq!(cluster.tables(&NODES).unwrap(), before);
    a_new_pod_is_routed_everywhere(&cluster, &mut pods, "n1");
}

/// etcd is down and tabby-agent on n1 is SIGKILLed and started again: it starts
/// from the view it saved, keeps every route, and brings its BGP sessions up
/// without the datastore; when etcd returns it follows it again.
#[test]
#[ignore = "needs root"]
fn fault_an_agent_restarted_while_etcd_is_down_routes_and_peers_from_its_last_saved_view() {
    harness::require_root();
    let (mut cluster, mut pods) = cluster("fault_agent_restarted_offline");
    let before = cluster.tables(&NODES).unwrap();
    let monitors = monitors(&cluster);
    let pings = ping_around(&pods, Duration::from_secs(40));
    cluster.etcd().unwrap().stop();
    cluster.kill_agent("n1");
    cluster.start_agent("n1").unwrap();
    cluster.wait_ready("n1", READY).unwrap();
    let peers = [
        cluster.lab.node("n2").address(),
        cluster.lab.node("n3").address(),
    ];
    let socket = cluster.socket("n1");
    wait_until(CONVERGED, "n1's sessions with n2 and n3", || {
        let listed = list_peers(&socket)?;
        let up = |address: &std::net::IpAddr| {
            listed
                .iter()
                .any(|p| p.address == address.to_string() && p.state() == SessionState::Established)
        };
        anyhow::Ok(if peers.iter().all(up) {
            Ok(())
        } else {
            Err(format!("{listed:?}"))
        })
    })
    .unwrap();
    assert_eq!(cluster.tables(&NODES).unwrap(), before);
    assert_unchanged(&monitors);
    cluster.etcd().unwrap().restart().unwrap();
    assert_none_lost(pings);
    a_new_pod_is_routed_everywhere(&cluster, &mut pods, "n1");
}

/// The agents peer only with tabby-reflector, which follows the datastore (its
/// clients are the Nodes, and it judges routes by IPAM). etcd is gone for 20 s
/// while pods ping across nodes: every session stays up, no ping is lost, no
/// route changes; when etcd is back, the reflector's watches follow it again by
/// themselves: a pod in a new block is reflected to every node.
#[test]
#[ignore = "needs root"]
fn fault_etcd_down_under_a_reflector_with_a_datastore_keeps_its_sessions_and_routes_and_it_recovers()
 {
    harness::require_root();
    let (mut cluster, mut pods) = reflector_cluster("fault_rr_etcd_down", Clients::Datastore);

    let pings = etcd_down(&mut cluster, &pods, Duration::from_secs(20), |cluster| {
        cluster
            .wait_reflector_established("rr1", &NODES, Duration::from_secs(1))
            .unwrap();
    });
    assert_none_lost(pings);
    switch_pools(&cluster);
    pods.push(cluster.add_pod("n2", "pod-late").unwrap());
    cluster.wait_for_routes(&NODES, &pods, RECOVERED).unwrap();
    ping_all(&pods).unwrap();
}

/// n1 loses etcd silently (nftables drops, no RST): its agent's watches notice by
/// the etcd client's keepalive and try again; nothing routed changes. Meanwhile a
/// pod on n2 comes from a new pool, in a new block that n1 can only accept a route
/// for once its watches see the block: when the partition heals, n1 routes it.
#[test]
#[ignore = "needs root"]
fn fault_a_silent_partition_between_a_node_and_etcd_is_noticed_changes_no_route_and_heals() {
    harness::require_root();
    let (mut cluster, mut pods) = cluster("fault_partition_etcd");
    let before = cluster.tables(&NODES).unwrap();
    let monitors = monitors(&cluster);
    let pings = ping_around(&pods, Duration::from_secs(30));
    let broke = |cluster: &mut Cluster| {
        let log = cluster.agent("n1").unwrap().log();
        log.matches("etcd watch broke").count()
    };
    let broken_before = broke(&mut cluster);
    let etcd = cluster.etcd().unwrap().client_address();
    let partition =
        Partition::between(cluster.lab.node("n1"), etcd.ip(), Some(etcd.port())).unwrap();
    wait_until(RECOVERED, "n1's agent to notice etcd is gone", || {
        anyhow::Ok(broke(&mut cluster) > broken_before)
    })
    .unwrap();
    assert_unchanged(&monitors);
    assert_eq!(cluster.tables(&NODES).unwrap(), before);
    switch_pools(&cluster);
    let pod = cluster.add_pod("n2", "pod-late").unwrap();
    pods.push(pod);
    drop(partition);
    cluster.wait_for_routes(&NODES, &pods, RECOVERED).unwrap();
    ping_all(&pods).unwrap();
    assert_none_lost(pings);
}

/// The agents peer only with a tabby-reflector (the mesh off) that proposes a
/// 3 s hold time. n1 and the reflector lose each other silently (nftables drops,
/// no RST): the hold timer fires, the reflector withdraws n1's block from n2 and
/// n3; when the partition heals the session comes back and so does the route.
#[test]
#[ignore = "needs root"]
fn fault_a_silent_partition_between_a_node_and_its_reflector_fires_the_hold_timer_and_heals() {
    harness::require_root();
    let range = Clients::ListenRangeHolding("10.0.1.0/24".parse().unwrap(), 3);
    let (cluster, pods) = reflector_cluster("fault_partition_rr", range);
    let rr = cluster.lab.node("rr1").address();

    let n1 = cluster.lab.node("n1").address().to_string();
    let partition = Partition::between(cluster.lab.node("n1"), rr, None).unwrap();
    for node in ["n2", "n3"] {
        wait_until(CONVERGED, &format!("n1's routes to leave {node}"), || {
            let table = cluster.tables(&[node])?.remove(node).unwrap_or_default();
            anyhow::Ok(if table.iter().any(|l| l.contains(&n1)) {
                Err(format!("{table:#?}"))
            } else {
                Ok(())
            })
        })
        .unwrap();
    }
    drop(partition);
    cluster
        .wait_reflector_established("rr1", &NODES, RECOVERED)
        .unwrap();
    cluster.wait_for_routes(&NODES, &pods, RECOVERED).unwrap();
    ping_all(&pods).unwrap();
}

/// A `CNI_PATH` whose tabby-ipam holds the answer of a successful ADD until the
/// test says go (or its caller is gone): tabby-cni waits there with the address
/// written to IPAM and nothing else done — no veth, no WorkloadEndpoint.
struct HeldIpam {
    dir: tempfile::TempDir,
}

impl HeldIpam {
    fn new(cluster: &Cluster) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let real = cluster.ipam_plugin().unwrap();
        let at = dir.path().display();
        let script = format!(
            "#!/bin/sh\n\
             out=$('{real}'); rc=$?\n\
             if [ \"$CNI_COMMAND\" = ADD ] && [ $rc -eq 0 ]; then\n\
             \ttouch '{at}/written'\n\
             \twhile [ ! -e '{at}/go' ] && kill -0 $PPID 2>/dev/null; do sleep 0.02; done\n\
             fi\n\
             printf '%s' \"$out\"\n\
             exit $rc\n",
            real = real.display()
        );
        let wrapper = dir.path().join("tabby-ipam");
        std::fs::write(&wrapper, script).unwrap();
        std::fs::set_permissions(
            &wrapper,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        Self { dir }
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Waits until tabby-ipam has answered an ADD (the allocation is written).
    fn wait_written(&self, plugin: &mut std::process::Child) {
        wait_until(CONVERGED, "tabby-ipam's ADD to be written", || {
            if let Some(status) = plugin.try_wait()? {
                anyhow::bail!("tabby-cni ended by itself ({status})");
            }
            anyhow::Ok(self.dir.path().join("written").exists())
        })
        .unwrap();
    }

    fn go(&self) {
        std::fs::write(self.dir.path().join("go"), "").unwrap();
    }
}

/// SIGKILLs `plugin` (`ip netns exec` has become tabby-cni) and reaps it.
fn kill_plugin(mut plugin: std::process::Child) {
    assert!(plugin.try_wait().unwrap().is_none(), "tabby-cni had ended");
    plugin.kill().unwrap();
    plugin.wait().unwrap();
}

/// The addresses the CNI handle of `container` holds on `node`.
fn held_by(cluster: &Cluster, node: &str, container: &str) -> Vec<IpAddr> {
    let handle = ipam::handles::cni_handle_id("k8s-pod-network", container);
    cluster
        .datastore(async |store| ipam::handles::addresses_of(&*store, &handle, node).await)
        .unwrap()
        .unwrap()
        .into_iter()
        .map(|a| a.ip)
        .collect()
}

/// Every `R` in the cluster's datastore.
fn list<R: Resource>(cluster: &Cluster) -> Vec<R> {
    let listed = cluster.datastore(async |store| store.list::<R>(&Default::default()).await);
    listed.unwrap().unwrap().items
}

/// Whether the sandbox `container` has a WorkloadEndpoint.
fn has_endpoint(cluster: &Cluster, container: &str) -> bool {
    list::<WorkloadEndpoint>(cluster)
        .iter()
        .any(|e| e.spec.container_id == container)
}

fn ipam_check(cluster: &Cluster, leaks: bool) -> ipam::check::Report {
    cluster
        .datastore(async |store| ipam::check::check(&*store, leaks).await)
        .unwrap()
        .unwrap()
}

/// tabby-cni is SIGKILLed between its IPAM write and its WorkloadEndpoint write,
/// three times, and the runtime recovers each way it can:
/// - on n1, before the veth: the runtime sends DEL for the sandbox (as CNI asks
///   after a failed ADD), which frees the address, and makes a new sandbox;
/// - on n2, with the veth made and the endpoint write stuck (n2 cut off from
///   etcd): the runtime repeats ADD for the same sandbox, which gets the address
///   its handle already holds;
/// - on n3, before the veth, and the runtime never sends DEL (it lost the
///   sandbox): the new sandbox gets another address, and the controller reclaims
///   the first one, which has no endpoint.
///
/// Nothing is owned twice at any point, nothing stays leaked, and every pod's
/// retried ADD gets an address that is routed everywhere.
#[test]
#[ignore = "needs root"]
fn fault_a_cni_plugin_killed_between_its_ipam_and_endpoint_writes_leaks_nothing_and_the_retried_add_gets_an_address()
 {
    harness::require_root();
    let (mut cluster, mut pods) = cluster("fault_cni_killed");
    let start = |cluster: &Cluster, held: &HeldIpam, node: &str, pod: &str, container: &str| {
        let netns = cluster.lab.pod(&format!("{pod}-{container}")).unwrap();
        let path = netns.path();
        let sandbox = Sandbox {
            node,
            pod,
            container,
            netns: Some(&path),
        };
        let plugin = cluster.start_cni("ADD", &sandbox, held.path()).unwrap();
        (plugin, netns)
    };

    // n1: killed before the veth; DEL, then a new sandbox.
    let held = HeldIpam::new(&cluster);
    let (mut plugin, netns) = start(&cluster, &held, "n1", "web1", "a1");
    held.wait_written(&mut plugin);
    kill_plugin(plugin);
    let first = held_by(&cluster, "n1", "a1");
    assert_eq!(first.len(), 1, "the ADD wrote its address before the kill");
    assert!(!has_endpoint(&cluster, "a1"));
    let path = netns.path();
    let sandbox = Sandbox {
        node: "n1",
        pod: "web1",
        container: "a1",
        netns: Some(&path),
    };
    cluster.cni_sandbox("DEL", &sandbox).unwrap();
    drop(netns);
    assert_eq!(held_by(&cluster, "n1", "a1"), Vec::<IpAddr>::new());
    let netns = cluster.lab.pod("web1-a2").unwrap();
    pods.push(cluster.add_sandbox("n1", "web1", "a2", netns).unwrap());

    // n2: killed with its veth made, the endpoint write stuck; ADD again.
    let held = HeldIpam::new(&cluster);
    let (mut plugin, netns) = start(&cluster, &held, "n2", "web2", "b1");
    held.wait_written(&mut plugin);
    let etcd = cluster.etcd().unwrap().client_address();
    let n2 = cluster.lab.node("n2");
    let partition = Partition::between(n2, etcd.ip(), Some(etcd.port())).unwrap();
    held.go();
    let veth = harness::cni::veth_name(NAMESPACE, "web2").unwrap();
    wait_until(CONVERGED, "web2's veth", || {
        anyhow::Ok(harness::cni::has_link(n2, &veth))
    })
    .unwrap();
    // Past the veth: what is left before the endpoint is routes and the write.
    std::thread::sleep(Duration::from_millis(500));
    kill_plugin(plugin);
    drop(partition);
    let second = held_by(&cluster, "n2", "b1");
    assert_eq!(second.len(), 1);
    assert!(!has_endpoint(&cluster, "b1"));
    let again = cluster.add_sandbox("n2", "web2", "b1", netns).unwrap();
    assert_eq!(
        again.ips, second,
        "the repeated ADD got the address it held"
    );
    assert!(has_endpoint(&cluster, "b1"));
    pods.push(again);

    // n3: killed before the veth and never deleted; a new sandbox.
    let held = HeldIpam::new(&cluster);
    let (mut plugin, netns) = start(&cluster, &held, "n3", "web3", "c1");
    held.wait_written(&mut plugin);
    kill_plugin(plugin);
    drop(netns);
    let leaked = held_by(&cluster, "n3", "c1");
    assert_eq!(leaked.len(), 1);
    let netns = cluster.lab.pod("web3-c2").unwrap();
    let retried = cluster.add_sandbox("n3", "web3", "c2", netns).unwrap();
    assert_ne!(retried.ips, leaked);
    pods.push(retried);

    // Nothing owned twice; the one leak is n3's first sandbox.
    let report = ipam_check(&cluster, false);
    assert!(report.is_consistent(), "{:#?}", report.problems);
    let report = ipam_check(&cluster, true);
    let leaks: Vec<IpAddr> = report
        .problems
        .iter()
        .map(|p| match p {
            ipam::check::Problem::Leak { ip, .. } => *ip,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(leaks, leaked);

    // The controller, with no grace, reclaims it and nothing else.
    cluster.kill_controller();
    cluster.start_controller("1s", "0s").unwrap();
    wait_until(RECOVERED, "the leaked address reclaimed", || {
        anyhow::Ok(held_by(&cluster, "n3", "c1").is_empty())
    })
    .unwrap();
    let report = ipam_check(&cluster, true);
    assert!(report.is_consistent(), "{:#?}", report.problems);
    assert_eq!(report.allocations, pods.len(), "one address per live pod");
    for pod in &pods {
        assert_eq!(held_by(&cluster, &pod.node, &pod.container), pod.ips);
    }
    cluster.wait_for_routes(&NODES, &pods, CONVERGED).unwrap();
    ping_all(&pods).unwrap();
}

/// Addresses held by handles whose name starts with `prefix`, over every block.
fn held_by_prefix(cluster: &Cluster, prefix: &str) -> usize {
    list::<IPAMBlock>(cluster)
        .iter()
        .flat_map(|b| b.spec.allocations())
        .filter(|a| a.handle.is_some_and(|h| h.starts_with(prefix)))
        .count()
}

/// tabby-ipam-controller is SIGKILLed in the middle of a pass that reclaims
/// hundreds of leaked addresses (pods of n1 that left no endpoint) and then the
/// blocks they emptied. Started again, it finishes the work: nothing leaked is
/// left, no surplus block, nothing owned twice, and no live pod lost its address
/// (their pings go on throughout).
#[test]
#[ignore = "needs root"]
fn fault_the_ipam_controller_killed_mid_pass_finishes_after_its_restart_and_releases_no_live_address()
 {
    harness::require_root();
    const LEAKED: usize = 4 * 60;
    const LEAK_HANDLES: &str = "k8s-pod-network.gone-";
    let (mut cluster, pods) = cluster("fault_controller_killed");
    cluster.kill_controller();
    // Sandboxes of n1 whose ADD wrote their addresses and nothing else.
    cluster
        .datastore(async |store| {
            let allocator = ipam::assign::Allocator::new(store.clone(), "n1");
            for sandbox in 0..4 {
                let container = format!("gone-{sandbox}");
                let mut request = ipam::assign::AssignRequest::new(
                    format!("{LEAK_HANDLES}{sandbox}"),
                    LEAKED / 4,
                    0,
                );
                request.attrs = [
                    (attr::NODE, "n1"),
                    (attr::NAMESPACE, NAMESPACE),
                    (attr::POD, &container),
                    (attr::CONTAINER_ID, &container),
                    (attr::INTERFACE, "eth0"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
                allocator.auto_assign(&request).await?;
            }
            anyhow::Ok(())
        })
        .unwrap()
        .unwrap();
    assert_eq!(held_by_prefix(&cluster, LEAK_HANDLES), LEAKED);
    let pings = ping_around(&pods, Duration::from_secs(30));

    cluster.start_controller("1s", "0s").unwrap();
    let left = wait_until(
        RECOVERED,
        "the controller halfway through the leaks",
        || {
            let left = held_by_prefix(&cluster, LEAK_HANDLES);
            anyhow::Ok((left < LEAKED).then_some(left))
        },
    )
    .unwrap();
    cluster.kill_controller();
    assert!(
        left > 0,
        "the pass reclaimed all {LEAKED} addresses before the kill: make it longer"
    );
    let owned_twice: Vec<_> = ipam_check(&cluster, false)
        .problems
        .into_iter()
        .filter(|p| {
            matches!(
                p,
                ipam::check::Problem::DoubleAllocation { .. }
                    | ipam::check::Problem::DoubleOwnership { .. }
            )
        })
        .collect();
    assert_eq!(owned_twice, []);

    cluster.start_controller("1s", "0s").unwrap();
    wait_until(RECOVERED, "the restarted controller to finish", || {
        let report = ipam_check(&cluster, true);
        anyhow::Ok(if report.is_consistent() && report.blocks == NODES.len() {
            Ok(())
        } else {
            Err(format!("{} blocks, {:#?}", report.blocks, report.problems))
        })
    })
    .unwrap();
    assert_eq!(held_by_prefix(&cluster, LEAK_HANDLES), 0);
    for pod in &pods {
        assert_eq!(held_by(&cluster, &pod.node, &pod.container), pod.ips);
    }
    assert_none_lost(pings);
    cluster.wait_for_routes(&NODES, &pods, CONVERGED).unwrap();
    ping_all(&pods).unwrap();
}

mod slow {
    use super::*;

    #[test]
    #[ignore = "slow: etcd is down for a minute"]
    fn fault_etcd_down_for_a_minute_loses_no_ping_changes_no_route_and_everything_recovers() {
        harness::require_root();
        etcd_outage("fault_etcd_down_minute", Duration::from_secs(60));
    }
}
