//! BFD beside BGP, end to end (`docs/bfd.md`): a mesh of three tabby-agents with
//! BFD on and pods pinging. When a node's path fails (its link goes down, or
//! nftables silently drops everything it sends and receives) the other nodes
//! remove its routes long before BGP's hold timer (90 s, the default) would; and
//! a kill -9 of an agent with graceful restart on either withdraws its routes at
//! once (BFD wins, the default) or keeps them (`gracefulRestartOnDown`).
//!
//! No timing is asserted: every wait is generous (20 s) but well below the hold
//! time, so only BFD can pass it. `tabby-failover` measures the times.

use std::collections::BTreeSet;
use std::time::Duration;

use api::resources::{
    BGPConfiguration, BGPConfigurationSpec, BfdSpec, Cidr, EncapsulationMode, GoDuration, IPPool,
    IPPoolSpec,
};
use harness::e2e::{Cluster, Pod, list_peers, ping_all};
use harness::lab::NODE_INTERFACE;
use harness::routes::routes;
use harness::{Lab, wait_until};

const READY: Duration = Duration::from_secs(60);
const CONVERGED: Duration = Duration::from_secs(60);
/// Far below the hold time (90 s) and the restart time (120 s): only BFD passes.
const DETECTED: Duration = Duration::from_secs(20);
/// How long routes are watched for staying when graceful restart should win.
const KEPT: Duration = Duration::from_secs(5);

const NODES: [&str; 3] = ["n1", "n2", "n3"];

/// Three nodes on one subnet, BGP-routed pods (no encapsulation), the mesh with
/// BFD on (`bfd` as given), graceful restart at 120 s; every agent ready, one pod
/// per node, every BFD session Up.
fn cluster(test: &str, bfd: BfdSpec) -> (Cluster, Vec<Pod>) {
    let lab = Lab::new(test)
        .subnet("a", "10.0.1.0/24")
        .node("n1", "a")
        .node("n2", "a")
        .node("n3", "a")
        .router()
        .build()
        .unwrap();
    let mut cluster = Cluster::new(lab).unwrap();
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
    cluster.start_agents(&NODES, READY).unwrap();
    let pods = cluster.add_pod_per_node(&NODES).unwrap();
    cluster.wait_for_routes(&NODES, &pods, CONVERGED).unwrap();
    ping_all(&pods).unwrap();
    wait_bfd_up(&cluster, &NODES);
    (cluster, pods)
}

fn bfd_on() -> BfdSpec {
    BfdSpec {
        enabled: true,
        ..BfdSpec::default()
    }
}

/// Waits until every session of each of `nodes` has BFD Up (its status API).
fn wait_bfd_up(cluster: &Cluster, nodes: &[&str]) {
    for node in nodes {
        wait_until(CONVERGED, &format!("{node}'s BFD sessions up"), || {
            let peers = list_peers(&cluster.socket(node))?;
            let states: Vec<(String, String)> = peers
                .iter()
                .map(|p| (p.address.clone(), p.bfd_state.clone()))
                .collect();
            anyhow::Ok(
                if peers.len() == NODES.len() - 1 && states.iter().all(|(_, s)| s == "Up") {
                    Ok(())
                } else {
                    Err(format!("{states:?}"))
                },
            )
        })
        .unwrap();
    }
}

/// The routes of `node` whose next hop is `via` (proto 84: tabby's).
fn routes_via(cluster: &Cluster, node: &str, via: &str) -> BTreeSet<String> {
    routes(cluster.lab.node(node), "84")
        .unwrap()
        .into_iter()
        .filter(|line| line.contains(&format!("via {via} ")))
        .collect()
}

/// Waits until no node but `dead` routes anything through it (each had routes
/// through it: the tests wait for full tables before a failure).
fn wait_routes_gone(cluster: &Cluster, dead: &str, within: Duration) {
    let via = cluster.lab.node(dead).address().to_string();
    for node in NODES.iter().filter(|n| **n != dead) {
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

#[test]
#[ignore = "needs root"]
fn e2e_bfd_mesh_a_cut_link_or_dropped_packets_take_the_nodes_routes_out_everywhere_before_the_hold_timer()
 {
    harness::require_root();
    let (cluster, pods) = cluster("e2e_bfd_mesh", bfd_on());
    let n3 = cluster.lab.node("n3");

    // The link goes down: no TCP reset reaches anyone, only BFD notices.
    n3.ip(&format!("link set dev {NODE_INTERFACE} down"))
        .unwrap();
    wait_routes_gone(&cluster, "n3", DETECTED);
    n3.ip(&format!("link set dev {NODE_INTERFACE} up")).unwrap();
    cluster.wait_for_routes(&NODES, &pods, CONVERGED).unwrap();
    wait_bfd_up(&cluster, &NODES);
    ping_all(&pods).unwrap();

    // Everything n3 sends and receives is silently dropped.
    n3.exec("nft", &[DROP_ALL]).unwrap();
    wait_routes_gone(&cluster, "n3", DETECTED);
    n3.exec("nft", &["delete table inet tabby_e2e_bfd"])
        .unwrap();
    cluster.wait_for_routes(&NODES, &pods, CONVERGED).unwrap();
    ping_all(&pods).unwrap();
    for node in ["n1", "n2"] {
        let peers = list_peers(&cluster.socket(node)).unwrap();
        let n3 = peers
            .iter()
            .find(|p| p.address == n3.address().to_string())
            .unwrap();
        assert!(n3.bfd_flaps >= 2, "{node}: {n3:?}");
    }
}

#[test]
#[ignore = "needs root"]
fn e2e_bfd_kill_9_of_an_agent_with_graceful_restart_withdraws_its_routes_at_once_by_default() {
    harness::require_root();
    let (mut cluster, _pods) = cluster("e2e_bfd_kill_default", bfd_on());
    // The agent dies, the kernel of n3 keeps forwarding, its BFD falls silent (C=0):
    // BFD wins over the 120 s of graceful restart.
    cluster.kill_agent("n3");
    wait_routes_gone(&cluster, "n3", DETECTED);
}

#[test]
#[ignore = "needs root"]
fn e2e_bfd_kill_9_of_an_agent_keeps_its_routes_when_graceful_restart_wins() {
    harness::require_root();
    let bfd = BfdSpec {
        graceful_restart_on_down: true,
        ..bfd_on()
    };
    let (mut cluster, pods) = cluster("e2e_bfd_kill_graceful", bfd);
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
    wait_bfd_up(&cluster, &NODES);
}
