//! Faults a cluster must survive (issue #16): the datastore going away, daemons
//! killed with SIGKILL, silent partitions. A cluster of real binaries (etcd in the
//! router's namespace, tabby-agent on three nodes in the mesh,
//! tabby-ipam-controller, pods attached by tabby-cni) has pods pinging each other
//! across nodes while the fault lasts; ping's own statistics count what was lost,
//! `ip monitor` on every node records what changed in the kernel. Needs root.

use std::time::{Duration, Instant};

use api::datastore::Datastore;
use api::datastore::config::DatastoreType;
use api::resources::{Cidr, IPPool, IPPoolSpec};
use harness::e2e::{Clients, Cluster, Pings, Pod, list_peers, ping_all};
use harness::partition::Partition;
use harness::routes::RouteMonitor;
use harness::{Lab, wait_until};
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

/// etcd is gone for `outage` while pods ping across nodes: nothing is lost, no
/// kernel route changes, no daemon exits, and each finds etcd again by itself.
fn etcd_outage(test: &str, outage: Duration) {
    let (mut cluster, mut pods) = cluster(test);
    let before = cluster.tables(&NODES).unwrap();
    let monitors = monitors(&cluster);
    let pings = ping_around(&pods, outage + Duration::from_secs(10));
    cluster.etcd().unwrap().stop();
    let back = Instant::now() + outage;
    while Instant::now() < back {
        for node in NODES {
            cluster.agent(node).unwrap().check_running().unwrap();
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    assert_unchanged(&monitors);
    assert_eq!(cluster.tables(&NODES).unwrap(), before);
    cluster.etcd().unwrap().restart().unwrap();
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
    const AS: u32 = 64512;
    let machines = ["n1", "n2", "n3", "rr1"];
    let mut cluster = Cluster::with_reflectors(
        "fault_partition_rr",
        "10.0.1.0/24",
        &machines,
        &["rr1"],
        AS,
        DatastoreType::Etcd,
    )
    .unwrap();
    let rr = cluster.lab.node("rr1").address();
    let range = Clients::ListenRangeHolding("10.0.1.0/24".parse().unwrap(), 3);
    cluster
        .start_reflector("rr1", AS, "10.0.1.250".parse().unwrap(), range)
        .unwrap();
    cluster.wait_reflector_ready("rr1", READY).unwrap();
    cluster.start_agents(&NODES, READY).unwrap();
    cluster
        .wait_reflector_established("rr1", &NODES, CONVERGED)
        .unwrap();
    let pods = cluster.add_pod_per_node(&NODES).unwrap();
    cluster.wait_for_routes(&NODES, &pods, CONVERGED).unwrap();
    ping_all(&pods).unwrap();

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

mod slow {
    use super::*;

    #[test]
    #[ignore = "slow: etcd is down for a minute"]
    fn fault_etcd_down_for_a_minute_loses_no_ping_changes_no_route_and_everything_recovers() {
        harness::require_root();
        etcd_outage("fault_etcd_down_minute", Duration::from_secs(60));
    }
}
