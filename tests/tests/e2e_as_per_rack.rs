//! Calico's AS-per-rack design ("Calico over IP fabrics"), set up the way a Calico
//! user sets it up, with calicoctl-rs: three racks (subnets), a node in each, and a
//! BIRD top-of-rack router per rack. The nodes of a rack share their ToR's AS
//! (6500N for rack N, set per node with `calicoctl-rs patch node`), so a node peers
//! iBGP with its ToR, which gives it the other racks' routes with itself as next
//! hop; the ToRs peer eBGP with each other over a spine subnet. The node-to-node
//! mesh is off; a `BGPPeer` per rack selects the rack's nodes by the `rack` label
//! (`calicoctl-rs label nodes`). The cluster's own AS (64512) is no rack's, so the
//! agents treat the ToRs as routers, not as reflectors of the cluster. Needs root.
//!
//! ```text
//!   tor1 (65001) ──── spine 10.0.0.0/24 ──── tor2 (65002) ──── tor3 (65003)   eBGP
//!    │ rack1 10.0.1.0/24        │ rack2 10.0.2.0/24        │ rack3 10.0.3.0/24
//!   n1 (65001) iBGP           n2 (65002)                n3 (65003)
//! ```

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use harness::e2e::{Cluster, Pod, ping_all};
use harness::peers::{BgpConfig, BgpPeer, Bird, Neighbor};
use harness::routes::routes;
use harness::{Lab, wait_until};
use ipnet::IpNet;

const RACKS: [usize; 3] = [1, 2, 3];
const CLUSTER_AS: u32 = 64512;
const READY: Duration = Duration::from_secs(60);
const CONVERGED: Duration = Duration::from_secs(60);

fn rack_as(rack: usize) -> u32 {
    65000 + rack as u32
}

fn node(rack: usize) -> String {
    format!("n{rack}")
}

fn lab(test: &str) -> Lab {
    let mut builder = Lab::new(test).subnet("spine", "10.0.0.0/24");
    for rack in RACKS {
        let subnet = format!("rack{rack}");
        builder = builder
            .subnet(&subnet, &format!("10.0.{rack}.0/24"))
            .tor(&format!("tor{rack}"), &subnet, "spine")
            .node(&node(rack), &subnet);
    }
    builder.build().unwrap()
}

/// The ToR of `rack`'s address on `subnet`.
fn tor_address(cluster: &Cluster, rack: usize, subnet: &str) -> IpAddr {
    let like = cluster.lab.node(&node(rack)).address();
    cluster
        .lab
        .tor(&format!("tor{rack}"))
        .address_in(subnet, like)
        .unwrap()
}

/// The AS-per-rack design as a Calico user writes it: the mesh off, the cluster's
/// AS, a pool, and a `BGPPeer` per rack to its ToR.
fn calico_yaml(cluster: &Cluster) -> String {
    let mut yaml = format!(
        "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata:\n  \
         name: default\nspec:\n  logSeverityScreen: Info\n  nodeToNodeMeshEnabled: false\n  \
         asNumber: {CLUSTER_AS}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  \
         name: default-ipv4-ippool\nspec:\n  cidr: 10.244.0.0/16\n  blockSize: 26\n  \
         ipipMode: Never\n  vxlanMode: Never\n  nodeSelector: all()\n"
    );
    for rack in RACKS {
        yaml.push_str(&format!(
            "---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  \
             name: rack{rack}-tor\nspec:\n  nodeSelector: rack == 'rack{rack}'\n  \
             peerIP: {}\n  asNumber: {}\n",
            tor_address(cluster, rack, &format!("rack{rack}")),
            rack_as(rack)
        ));
    }
    yaml
}

/// `calicoctl-rs ARGS`; its standard output.
fn calicoctl(cluster: &Cluster, args: &[&str]) -> String {
    let mut command = cluster.calicoctl().unwrap();
    command.args(args);
    harness::process::exec(&mut command).unwrap_or_else(|e| panic!("calicoctl-rs {args:?}: {e:#}"))
}

/// ToR `rack`: iBGP with its rack's node (next hop self, as the rack's gateway),
/// eBGP with the other ToRs across the spine; routing (what it learns goes into
/// its kernel).
fn tor(cluster: &Cluster, rack: usize) -> Bird {
    let spine = tor_address(cluster, rack, "spine");
    let IpAddr::V4(router_id) = spine else {
        panic!("{spine} is no IPv4 address");
    };
    let node = cluster.lab.node(&node(rack)).address();
    let mut config = BgpConfig::new(rack_as(rack), router_id)
        .neighbor(Neighbor::new(node, rack_as(rack)).passive().next_hop_self());
    for other in RACKS.into_iter().filter(|r| *r != rack) {
        config = config.neighbor(Neighbor::new(
            tor_address(cluster, other, "spine"),
            rack_as(other),
        ));
    }
    let router = cluster.lab.tor(&format!("tor{rack}"));
    Bird::start_routing(router, &config).unwrap()
}

/// Every node's blocks, by node.
fn blocks(cluster: &Cluster) -> Vec<(String, BTreeSet<IpNet>)> {
    let facts = cluster.facts().unwrap();
    RACKS
        .iter()
        .map(|rack| {
            let owned = facts.owners.get(&node(*rack)).cloned().unwrap_or_default();
            (node(*rack), owned.into_iter().collect())
        })
        .collect()
}

/// Waits until each node routes every other rack's blocks through its own ToR.
fn wait_routes_through_tors(cluster: &Cluster) {
    let blocks = blocks(cluster);
    for rack in RACKS {
        let gateway = tor_address(cluster, rack, &format!("rack{rack}"));
        let others: Vec<String> = blocks
            .iter()
            .filter(|(owner, _)| *owner != node(rack))
            .flat_map(|(_, owned)| owned.iter().map(|b| format!("{b} via {gateway} dev eth0")))
            .collect();
        assert!(!others.is_empty(), "no blocks yet: {blocks:?}");
        let me = cluster.lab.node(&node(rack));
        wait_until(
            CONVERGED,
            &format!("n{rack}'s routes through tor{rack}"),
            || {
                let table = routes(me, "84")?;
                let missing: Vec<&String> = others.iter().filter(|r| !table.contains(*r)).collect();
                anyhow::Ok(if missing.is_empty() {
                    Ok(())
                } else {
                    Err(format!("missing {missing:?} in {table:#?}"))
                })
            },
        )
        .unwrap();
    }
}

/// Each ToR took from its node exactly the blocks that node owns.
fn assert_tors_learn_their_racks_blocks(cluster: &Cluster, tors: &[Bird]) {
    for ((owner, owned), (rack, tor)) in blocks(cluster).iter().zip(RACKS.iter().zip(tors)) {
        let node = cluster.lab.node(owner).address();
        wait_until(
            CONVERGED,
            &format!("tor{rack}'s routes from {owner}"),
            || {
                let learned: BTreeSet<IpNet> = tor
                    .routes_from(node)?
                    .into_iter()
                    .map(|r| r.prefix)
                    .collect();
                anyhow::Ok(if learned == *owned {
                    Ok(())
                } else {
                    Err(format!("learned {learned:?}, {owner} owns {owned:?}"))
                })
            },
        )
        .unwrap();
    }
}

fn pods(cluster: &Cluster) -> Vec<Pod> {
    RACKS
        .iter()
        .map(|rack| {
            let node = node(*rack);
            cluster.add_pod(&node, &format!("pod-{node}")).unwrap()
        })
        .collect()
}

#[test]
#[ignore = "needs root"]
fn as_per_rack_pods_in_different_racks_reach_each_other_through_the_tors_and_a_restart_keeps_the_patched_as()
 {
    harness::require_root();
    let mut cluster = Cluster::new(lab("as_per_rack")).unwrap();
    // calicoctl-rs, as an operator runs it, reads etcd's default prefix.
    cluster.set_prefix(api::datastore::ETCD_DEFAULT_PREFIX);
    let yaml = cluster.dir().join("as-per-rack.yaml");
    std::fs::write(&yaml, calico_yaml(&cluster)).unwrap();
    let applied = calicoctl(&cluster, &["apply", "-f", &yaml.display().to_string()]);
    assert_eq!(applied.lines().count(), 5, "{applied}");

    // The agents register their nodes; a DaemonSet would give every one the
    // cluster's AS, which the operator's per-node AS must outlive. Each ToR is a
    // router to its nodes (a BGPPeer that is no node, outside the cluster's AS):
    // its pool routes through itself pass the agents' ownership check.
    let flags = [format!("--as={CLUSTER_AS}")];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    for rack in RACKS {
        cluster.start_agent_with(&node(rack), &flags).unwrap();
    }
    for rack in RACKS {
        cluster.wait_ready(&node(rack), READY).unwrap();
    }
    for rack in RACKS {
        let node = node(rack);
        let labelled = calicoctl(
            &cluster,
            &["label", "nodes", &node, &format!("rack=rack{rack}")],
        );
        assert_eq!(labelled, format!("node/{node} labeled\n"));
        let patch = format!(
            "{{\"spec\":{{\"bgp\":{{\"asNumber\":{}}}}}}}",
            rack_as(rack)
        );
        let patched = calicoctl(&cluster, &["patch", "node", &node, "-p", &patch]);
        assert_eq!(patched, format!("node/{node} patched\n"));
    }
    // The ToRs come up once the nodes have their rack's AS: BIRD holds back a
    // neighbour that once sent the wrong AS for a minute (its error wait time).
    let tors: Vec<Bird> = RACKS.iter().map(|rack| tor(&cluster, *rack)).collect();
    for (rack, tor) in RACKS.iter().zip(&tors) {
        let node = cluster.lab.node(&node(*rack)).address();
        tor.wait_established(node, CONVERGED).unwrap();
    }
    let pods = pods(&cluster);
    wait_routes_through_tors(&cluster);
    assert_tors_learn_their_racks_blocks(&cluster, &tors);
    ping_all(&pods).unwrap();

    // A restart re-registers the node: its AS stays the patched one, though the
    // agent's flag says otherwise, and the ToR takes the session back.
    cluster.kill_agent("n2");
    let n2 = cluster.lab.node("n2").address();
    tors[1].wait_down(n2, CONVERGED).unwrap();
    cluster.start_agent_with("n2", &flags).unwrap();
    cluster.wait_ready("n2", READY).unwrap();
    let node = calicoctl(&cluster, &["get", "node", "n2", "-o", "yaml"]);
    assert!(node.contains("asNumber: 65002"), "{node}");
    tors[1].wait_established(n2, CONVERGED).unwrap();
    let log = cluster.agent("n2").unwrap().log();
    assert!(
        log.contains("spec.bgp.asNumber is 65002 in the Node: it stays"),
        "{log}"
    );
    wait_routes_through_tors(&cluster);
    assert_tors_learn_their_racks_blocks(&cluster, &tors);
    ping_all(&pods).unwrap();
}
