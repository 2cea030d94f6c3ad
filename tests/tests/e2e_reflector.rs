//! tabby nodes with the node-to-node mesh off, peering (global `BGPPeer`s) only
//! with two route reflectors of one cluster id: every pod still reaches every pod,
//! with the routes the mesh would give. The reflectors are two `tabby-reflector`s
//! (one finding its clients in etcd, one accepting them from a listen range), and,
//! as the interop check, two BIRDs. Needs root.

use std::net::Ipv4Addr;
use std::time::Duration;

use api::datastore::config::DatastoreType;

use harness::e2e::{Clients, Cluster, Pod, ping_all};
use harness::peers::{BgpConfig, BgpPeer, Bird, Neighbor};
use harness::{Lab, wait_until};
use proto::bgp_status::{PeerType, SessionState};
use serde_json::json;

const AS: u32 = 64512;
const SUBNET: &str = "10.0.1.0/24";
const CLUSTER_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 250);
/// n4 gets no pod until one reflector is gone.
const NODES: [&str; 4] = ["n1", "n2", "n3", "n4"];
const WITH_PODS: [&str; 3] = ["n1", "n2", "n3"];
const REFLECTORS: [&str; 2] = ["rr1", "rr2"];
const READY: Duration = Duration::from_secs(60);
const CONVERGED: Duration = Duration::from_secs(30);

/// The agents on [`NODES`], the mesh off, a global BGPPeer per reflector machine;
/// no reflector running yet.
fn cluster(test: &str) -> Cluster {
    let machines: Vec<&str> = NODES.iter().chain(&REFLECTORS).copied().collect();
    cluster_of(test, &machines, &REFLECTORS)
}

fn cluster_of(test: &str, machines: &[&str], reflectors: &[&str]) -> Cluster {
    Cluster::with_reflectors(test, SUBNET, machines, reflectors, AS, DatastoreType::Etcd).unwrap()
}

fn start_agents(cluster: &mut Cluster) {
    cluster.start_agents(&NODES, READY).unwrap();
}

/// A pod on each of [`WITH_PODS`]: the kernel routes are the expected table and
/// every pod pings every pod.
fn pods_reach_each_other(cluster: &Cluster) -> Vec<Pod> {
    let pods: Vec<_> = WITH_PODS
        .iter()
        .map(|node| cluster.add_pod(node, &format!("pod-{node}")).unwrap())
        .collect();
    cluster.wait_for_routes(&NODES, &pods, CONVERGED).unwrap();
    ping_all(&pods).unwrap();
    pods
}

/// Every agent has exactly the two reflectors as global peers, established; no
/// mesh session.
fn agents_peer_with_the_reflectors(cluster: &Cluster) {
    let expected: Vec<String> = REFLECTORS
        .iter()
        .map(|rr| cluster.lab.node(rr).address().to_string())
        .collect();
    for node in NODES {
        let peers = harness::e2e::list_peers(&cluster.socket(node)).unwrap();
        let addresses: Vec<String> = peers.iter().map(|p| p.address.clone()).collect();
        assert_eq!(addresses, expected, "{node}: {peers:?}");
        for peer in &peers {
            assert_eq!(peer.r#type(), PeerType::Global, "{peer:?}");
            assert_eq!(peer.state(), SessionState::Established, "{peer:?}");
        }
    }
}

#[test]
#[ignore = "needs root"]
fn e2e_reflectors_tabby_reflector_pair_with_the_mesh_off_and_one_killed() {
    harness::require_root();
    let mut cluster = cluster("e2e_reflectors_tabby");
    cluster
        .start_reflector("rr1", AS, CLUSTER_ID, Clients::Datastore)
        .unwrap();
    let range = Clients::ListenRange(SUBNET.parse().unwrap());
    cluster
        .start_reflector("rr2", AS, CLUSTER_ID, range)
        .unwrap();
    for rr in REFLECTORS {
        cluster.wait_reflector_ready(rr, READY).unwrap();
    }
    start_agents(&mut cluster);
    for rr in REFLECTORS {
        cluster
            .wait_reflector_established(rr, &NODES, CONVERGED)
            .unwrap();
    }
    let mut pods = pods_reach_each_other(&cluster);
    agents_peer_with_the_reflectors(&cluster);

    // rr1 dies without a NOTIFICATION: once every agent has seen its session
    // go, the routes are still the expected table (rr2 carries them), and a pod
    // in a new block (n4 has none) is reflected by rr2 alone.
    cluster.kill_reflector("rr1");
    let rr1 = cluster.lab.node("rr1").address().to_string();
    for node in NODES {
        wait_until(CONVERGED, &format!("{node} to see rr1 down"), || {
            let peers = harness::e2e::list_peers(&cluster.socket(node))?;
            anyhow::Ok(
                peers
                    .iter()
                    .find(|p| p.address == rr1 && p.state() != SessionState::Established)
                    .map(|_| ())
                    .ok_or(format!("{peers:?}")),
            )
        })
        .unwrap();
    }
    cluster.wait_for_routes(&NODES, &pods, CONVERGED).unwrap();
    ping_all(&pods).unwrap();
    pods.push(cluster.add_pod("n4", "pod-n4").unwrap());
    cluster.wait_for_routes(&NODES, &pods, CONVERGED).unwrap();
    ping_all(&pods).unwrap();
}

/// A BIRD reflector: every agent node its (passive) client.
fn bird_reflector(machine: &harness::Node, lab: &Lab) -> Bird {
    let mut config = BgpConfig::new(AS, machine.ipv4().unwrap()).cluster_id(CLUSTER_ID);
    for node in NODES {
        config = config.neighbor(
            Neighbor::new(lab.node(node).address(), AS)
                .passive()
                .rr_client(),
        );
    }
    Bird::start(machine, &config).unwrap()
}

#[test]
#[ignore = "needs root"]
fn e2e_reflectors_bird_pair_with_the_mesh_off_give_every_pod_a_route_to_every_pod() {
    harness::require_root();
    let mut cluster = cluster("e2e_reflectors_bird");
    let birds: Vec<Bird> = REFLECTORS
        .iter()
        .map(|rr| bird_reflector(cluster.lab.node(rr), &cluster.lab))
        .collect();
    start_agents(&mut cluster);
    for bird in &birds {
        for node in NODES {
            bird.wait_established(cluster.lab.node(node).address(), CONVERGED)
                .unwrap();
        }
    }
    pods_reach_each_other(&cluster);
    agents_peer_with_the_reflectors(&cluster);
}

#[test]
#[ignore = "needs root"]
fn hardening_a_rogue_client_of_the_reflector_cannot_blackhole_another_nodes_block() {
    harness::require_root();
    // n1 and n2 run agents; n3 is a rogue registered as a node, so the reflector
    // (finding its clients in the datastore) peers with it.
    let machines = ["n1", "n2", "n3", "rr1"];
    let mut cluster = cluster_of("hardening_rogue_client", &machines, &["rr1"]);
    let rr = cluster.lab.node("rr1").address().to_string();
    let rogue_address = cluster.lab.node("n3").address();
    let rogue_node = api::resources::Node::new(
        "rogue",
        serde_json::from_value(json!({"bgp": {"ipv4Address": format!("{rogue_address}/24")}}))
            .unwrap(),
    );
    cluster.create(&rogue_node).unwrap();
    cluster
        .start_reflector("rr1", AS, CLUSTER_ID, Clients::Datastore)
        .unwrap();
    cluster.wait_reflector_ready("rr1", READY).unwrap();
    for node in ["n1", "n2"] {
        cluster.start_agent(node).unwrap();
    }
    for node in ["n1", "n2"] {
        cluster.wait_ready(node, READY).unwrap();
    }
    let pods: Vec<Pod> = ["n1", "n2"]
        .iter()
        .map(|node| cluster.add_pod(node, &format!("pod-{node}")).unwrap())
        .collect();
    cluster
        .wait_for_routes(&["n1", "n2"], &pods, CONVERGED)
        .unwrap();
    // The rogue announces n2's block with n2's router id as ORIGINATOR_ID and a
    // LOCAL_PREF that wins best path at the reflector.
    let facts = cluster.facts().unwrap();
    let victim = facts.owners["n2"][0].to_string();
    let rogue = cluster.lab.node("n3");
    let (rogue_id, n2_id) = (
        rogue.ipv4().unwrap().to_string(),
        cluster.lab.node("n2").ipv4().unwrap().to_string(),
    );
    let speaker = harness::e2e::binary("tabby-test-speaker").unwrap();
    let peer_arg = format!("{rr}:{AS}");
    let as_arg = AS.to_string();
    let _rogue = rogue
        .spawn(
            "rogue",
            &speaker.display().to_string(),
            &[
                "--as",
                &as_arg,
                "--router-id",
                &rogue_id,
                "--peer",
                &peer_arg,
                "--originate",
                &victim,
                "--local-pref",
                "200",
                "--originator-id",
                &n2_id,
            ],
        )
        .unwrap();
    cluster
        .wait_reflector_established("rr1", &["n3"], CONVERGED)
        .unwrap();
    // Long enough for the rogue's UPDATE to be reflected and programmed.
    std::thread::sleep(Duration::from_secs(3));
    cluster
        .wait_for_routes(&["n1", "n2"], &pods, CONVERGED)
        .unwrap();
    ping_all(&pods).unwrap();
}
