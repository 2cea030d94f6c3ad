//! BFD beside BGP, end to end (`docs/bfd.md`), with pods pinging: a mesh of five
//! tabby-agents, and three behind a tabby-reflector, with BFD on. When a node's
//! path fails (its link goes down, or nftables silently drops everything it sends
//! and receives) every other node removes its routes long before BGP's hold
//! timer (90 s, the default) would: the mesh's nodes themselves, or the reflector
//! withdrawing them. A kill -9 of an agent with graceful restart on either
//! withdraws its routes at once (BFD wins, the default) or keeps them
//! (`gracefulRestartOnDown`). A node whose agent shares its core with a busy loop
//! keeps its sessions with the default timers.
//!
//! No timing is asserted: every wait is generous (20 s) but well below the hold
//! time, so only BFD can pass it. `tabby-failover` measures the times.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use api::resources::{
    BGPConfiguration, BGPConfigurationSpec, BfdSpec, Cidr, EncapsulationMode, GoDuration, IPPool,
    IPPoolSpec,
};
use harness::e2e::{Clients, Cluster, Pod, list_peers, ping_all};
use harness::lab::NODE_INTERFACE;
use harness::routes::routes;
use harness::{Lab, wait_until};

const READY: Duration = Duration::from_secs(60);
const CONVERGED: Duration = Duration::from_secs(60);
/// Far below the hold time (90 s) and the restart time (120 s): only BFD passes.
const DETECTED: Duration = Duration::from_secs(20);
/// How long routes are watched for staying when graceful restart should win.
const KEPT: Duration = Duration::from_secs(5);

/// The mesh: five nodes.
const MESH: [&str; 5] = ["n1", "n2", "n3", "n4", "n5"];
/// The kill -9 and load tests' smaller mesh.
const NODES: [&str; 3] = ["n1", "n2", "n3"];
const AS: u32 = 64512;

/// `nodes` on one subnet, BGP-routed pods (no encapsulation), the mesh with BFD
/// on (`bfd` as given), graceful restart at 120 s; every agent ready, one pod per
/// node, every BFD session Up.
fn cluster(test: &str, nodes: &[&str], bfd: BfdSpec) -> (Cluster, Vec<Pod>) {
    let mut lab = Lab::new(test).subnet("a", "10.0.1.0/24");
    for node in nodes {
        lab = lab.node(node, "a");
    }
    let mut cluster = Cluster::new(lab.router().build().unwrap()).unwrap();
    let mut pool = IPPoolSpec::new(Cidr("10.244.0.0/16".parse().unwrap()));
    pool.vxlan_mode = EncapsulationMode::Never;
    cluster
        .create(&IPPool::new("default-ipv4-ippool", pool))
        .unwrap();
    let config = BGPConfigurationSpec {
        bfd: Some(bfd),
        node_mesh_max_restart_time: Some(GoDuration(Duration::from_secs(120))),
        ..BGPConfigurationSpec::default()
    };
    cluster
        .create(&BGPConfiguration::new("default", config))
        .unwrap();
    cluster.start_agents(nodes, READY).unwrap();
    let pods = cluster.add_pod_per_node(nodes).unwrap();
    cluster.wait_for_routes(nodes, &pods, CONVERGED).unwrap();
    ping_all(&pods).unwrap();
    for node in nodes {
        wait_bfd_up(&cluster.socket(node), node, nodes.len() - 1);
    }
    (cluster, pods)
}

fn bfd_on() -> BfdSpec {
    BfdSpec {
        enabled: true,
        ..BfdSpec::default()
    }
}

/// [`harness::e2e::wait_bfd_up`] within the time to converge.
fn wait_bfd_up(socket: &Path, name: &str, peers: usize) {
    harness::e2e::wait_bfd_up(socket, name, peers, CONVERGED).unwrap();
}

/// The routes of `node` whose next hop is `via` (proto 84: tabby's).
fn routes_via(cluster: &Cluster, node: &str, via: &str) -> BTreeSet<String> {
    routes(cluster.lab.node(node), "84")
        .unwrap()
        .into_iter()
        .filter(|line| line.contains(&format!("via {via} ")))
        .collect()
}

/// Waits until none of `nodes` but `dead` routes anything through it (each had
/// routes through it: the tests wait for full tables before a failure).
fn wait_routes_gone(cluster: &Cluster, nodes: &[&str], dead: &str, within: Duration) {
    let via = cluster.lab.node(dead).address().to_string();
    for node in nodes.iter().filter(|n| **n != dead) {
        wait_until(within, &format!("{node} to drop {dead}'s routes"), || {
            let left = routes_via(cluster, node, &via);
            anyhow::Ok(if left.is_empty() {
                Ok(())
            } else {
                Err(format!("{left:#?}"))
            })
        })
        .unwrap();
    }
}

/// An nftables table on `node` silently dropping everything in and out.
const DROP_ALL: &str = "table inet tabby_e2e_bfd { \
    chain in { type filter hook input priority 0; policy drop; }; \
    chain out { type filter hook output priority 0; policy drop; }; }";

/// Cuts `dead`'s link, then drops everything it sends and receives: each time
/// every other node of `nodes` loses its routes within [`DETECTED`], and gets
/// them back (and every BFD session on `sockets` comes Up) once the path heals.
fn cut_then_drop(
    cluster: &Cluster,
    nodes: &[&str],
    pods: &[Pod],
    dead: &str,
    sockets: &[(&Path, &str, usize)],
) {
    let node = cluster.lab.node(dead);
    let heal = |cluster: &Cluster| {
        cluster.wait_for_routes(nodes, pods, CONVERGED).unwrap();
        for (socket, name, peers) in sockets {
            wait_bfd_up(socket, name, *peers);
        }
        ping_all(pods).unwrap();
    };
    // The link goes down: no TCP reset reaches anyone, only BFD notices.
    node.ip(&format!("link set dev {NODE_INTERFACE} down"))
        .unwrap();
    wait_routes_gone(cluster, nodes, dead, DETECTED);
    node.ip(&format!("link set dev {NODE_INTERFACE} up"))
        .unwrap();
    heal(cluster);

    // Everything it sends and receives is silently dropped.
    node.exec("nft", &[DROP_ALL]).unwrap();
    wait_routes_gone(cluster, nodes, dead, DETECTED);
    node.exec("nft", &["delete table inet tabby_e2e_bfd"])
        .unwrap();
    heal(cluster);
}

/// `dead`'s BFD session as the daemon on `socket` lists it went down at least
/// twice (the cut and the drop).
fn flapped_twice(cluster: &Cluster, socket: &Path, dead: &str) {
    let address = cluster.lab.node(dead).address().to_string();
    let peers = list_peers(socket).unwrap();
    let peer = peers.iter().find(|p| p.address == address).unwrap();
    assert!(peer.bfd_flaps >= 2, "{}: {peer:?}", socket.display());
}

#[test]
#[ignore = "needs root"]
fn e2e_bfd_mesh_a_cut_link_or_dropped_packets_take_the_nodes_routes_out_everywhere_before_the_hold_timer()
 {
    harness::require_root();
    let (cluster, pods) = cluster("e2e_bfd_mesh", &MESH, bfd_on());
    let sockets: Vec<_> = MESH.iter().map(|n| (cluster.socket(n), *n)).collect();
    let sockets: Vec<_> = sockets
        .iter()
        .map(|(s, n)| (s.as_path(), *n, MESH.len() - 1))
        .collect();
    cut_then_drop(&cluster, &MESH, &pods, "n5", &sockets);
    for node in &MESH[..4] {
        flapped_twice(&cluster, &cluster.socket(node), "n5");
    }
}

#[test]
#[ignore = "needs root"]
fn e2e_bfd_reflector_a_cut_link_or_dropped_packets_take_a_clients_routes_out_of_every_other_client_before_the_hold_timer()
 {
    harness::require_root();
    let machines = ["n1", "n2", "n3", "rr1"];
    let test = "e2e_bfd_rr";
    let mut cluster = Cluster::with_reflectors_and_bfd(
        test,
        "10.0.1.0/24",
        &machines,
        &["rr1"],
        AS,
        api::datastore::config::DatastoreType::Etcd,
        Some(bfd_on()),
    )
    .unwrap();
    // The reflector finds its clients in the datastore and runs BFD with each.
    let cluster_id = Ipv4Addr::new(10, 0, 1, 250);
    cluster
        .start_reflector_with(
            "rr1",
            AS,
            cluster_id,
            Clients::Datastore,
            "bfd: {enabled: true}\n",
        )
        .unwrap();
    let pods = cluster
        .start_behind_reflector("rr1", &NODES, READY, CONVERGED)
        .unwrap();
    let reflector = cluster.reflector_socket("rr1");
    let mut sockets: Vec<(std::path::PathBuf, &str, usize)> =
        NODES.iter().map(|n| (cluster.socket(n), *n, 1)).collect();
    sockets.push((reflector.clone(), "rr1", NODES.len()));
    let sockets: Vec<_> = sockets
        .iter()
        .map(|(s, n, p)| (s.as_path(), *n, *p))
        .collect();
    for (socket, name, peers) in &sockets {
        wait_bfd_up(socket, name, *peers);
    }
    // Only the reflector can tell n1 and n2: their sessions with it stay up.
    cut_then_drop(&cluster, &NODES, &pods, "n3", &sockets);
    flapped_twice(&cluster, &reflector, "n3");
}

#[test]
#[ignore = "needs root"]
fn e2e_bfd_kill_9_of_an_agent_with_graceful_restart_withdraws_its_routes_at_once_by_default() {
    harness::require_root();
    let (mut cluster, _pods) = cluster("e2e_bfd_kill_default", &NODES, bfd_on());
    // The agent dies, the kernel of n3 keeps forwarding, its BFD falls silent (C=0):
    // BFD wins over the 120 s of graceful restart.
    cluster.kill_agent("n3");
    wait_routes_gone(&cluster, &NODES, "n3", DETECTED);
}

#[test]
#[ignore = "needs root"]
fn e2e_bfd_kill_9_of_an_agent_keeps_its_routes_when_graceful_restart_wins() {
    harness::require_root();
    let bfd = BfdSpec {
        graceful_restart_on_down: true,
        ..bfd_on()
    };
    let (mut cluster, pods) = cluster("e2e_bfd_kill_graceful", &NODES, bfd);
    let via = cluster.lab.node("n3").address().to_string();
    let before: Vec<BTreeSet<String>> = ["n1", "n2"]
        .iter()
        .map(|node| routes_via(&cluster, node, &via))
        .collect();
    cluster.kill_agent("n3");
    // Long enough for BFD to have said Down many times over.
    for node in ["n1", "n2"] {
        wait_until(DETECTED, &format!("{node}'s BFD to see n3 down"), || {
            let peers = list_peers(&cluster.socket(node))?;
            let state = peers
                .iter()
                .find(|p| p.address == via)
                .map(|p| p.bfd_state.clone());
            anyhow::Ok(if state.as_deref() == Some("Down") {
                Ok(())
            } else {
                Err(format!("{state:?}"))
            })
        })
        .unwrap();
    }
    std::thread::sleep(KEPT);
    let after: Vec<BTreeSet<String>> = ["n1", "n2"]
        .iter()
        .map(|node| routes_via(&cluster, node, &via))
        .collect();
    assert_eq!(after, before, "stale routes kept while n3 restarts");
    // Pods keep reaching n3's pod: its kernel forwards without its agent.
    ping_all(&pods).unwrap();
    cluster.start_agent("n3").unwrap();
    cluster.wait_ready("n3", READY).unwrap();
    cluster.wait_for_routes(&NODES, &pods, CONVERGED).unwrap();
    for node in NODES {
        wait_bfd_up(&cluster.socket(node), node, NODES.len() - 1);
    }
}

/// How long the busy loop shares the agent's core.
const LOAD: Duration = Duration::from_secs(20);

#[test]
#[ignore = "needs root"]
fn e2e_bfd_an_agent_sharing_its_core_with_a_busy_loop_does_not_flap_with_the_default_timers() {
    harness::require_root();
    let (mut cluster, pods) = cluster("e2e_bfd_busy", &NODES, bfd_on());
    // Every thread of n1's agent on core 0, and a busy loop of the same priority
    // beside it for as long as twenty Detection Times.
    let pid = cluster.agent("n1").unwrap().pid().to_string();
    harness::process::exec(
        std::process::Command::new("taskset").args(["-a", "-p", "-c", "0", &pid]),
    )
    .unwrap();
    let n1 = cluster.lab.node("n1");
    let spin = ["-c", "0", "sh", "-c", "while :; do :; done"];
    let mut busy = n1.spawn("busy-loop", "taskset", &spin).unwrap();
    let load = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    eprintln!("load before: {}", load());
    std::thread::sleep(LOAD);
    eprintln!("load after {LOAD:?} of the busy loop: {}", load());
    busy.kill();
    for node in NODES {
        let peers = list_peers(&cluster.socket(node)).unwrap();
        for peer in &peers {
            assert_eq!(
                (peer.bfd_state.as_str(), peer.bfd_flaps),
                ("Up", 0),
                "{node}: {peer:?}"
            );
            assert_eq!(
                peer.state(),
                proto::bgp_status::SessionState::Established,
                "{node}: {peer:?}"
            );
        }
    }
    ping_all(&pods).unwrap();
}

#[test]
#[ignore = "needs root"]
fn e2e_bfd_a_stopped_agent_says_admin_down_so_graceful_restart_keeps_its_routes() {
    harness::require_root();
    // BFD wins over graceful restart on a failure (the default), yet a planned
    // stop (SIGTERM) is no failure: the agent takes its BFD sessions AdminDown
    // first (RFC 5880 6.8.16, RFC 5882 3.2) and its peers keep its routes stale.
    let (mut cluster, pods) = cluster("e2e_bfd_sigterm", &NODES, bfd_on());
    let via = cluster.lab.node("n3").address().to_string();
    let before: Vec<BTreeSet<String>> = ["n1", "n2"]
        .iter()
        .map(|node| routes_via(&cluster, node, &via))
        .collect();
    cluster.agent("n3").unwrap().stop(Duration::from_secs(10));
    // Long enough for a Detection Time to have passed many times over.
    std::thread::sleep(KEPT);
    let after: Vec<BTreeSet<String>> = ["n1", "n2"]
        .iter()
        .map(|node| routes_via(&cluster, node, &via))
        .collect();
    assert_eq!(after, before, "routes kept while n3's agent is stopped");
    ping_all(&pods).unwrap();
    cluster.start_agent("n3").unwrap();
    cluster.wait_ready("n3", READY).unwrap();
    cluster.wait_for_routes(&NODES, &pods, CONVERGED).unwrap();
    for node in NODES {
        wait_bfd_up(&cluster.socket(node), node, NODES.len() - 1);
    }
}
