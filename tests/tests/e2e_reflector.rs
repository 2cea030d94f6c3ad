//! tabby nodes with the node-to-node mesh off, peering only with two route
//! reflectors of one cluster id: every pod still reaches every pod, with the
//! routes the mesh would give. The reflectors are BIRD for now: tabby's own
//! `tabby-reflector` is being finished on another branch and is not in main yet;
//! these tests should run against it (and BIRD) once it lands. Needs root.

use std::time::Duration;

use api::resources::{
    BGPConfiguration, BGPConfigurationSpec, BGPPeer, BGPPeerSpec, Cidr, IPPool, IPPoolSpec,
};
use serde_json::json;
use tests::e2e::{Cluster, ping_all};
use tests::peers::{BgpConfig, BgpPeer, Bird, Neighbor};
use tests::{Lab, Node};

const AS: u32 = 64512;
const NODES: [&str; 3] = ["n1", "n2", "n3"];
const REFLECTORS: [&str; 2] = ["rr1", "rr2"];
const READY: Duration = Duration::from_secs(60);
const CONVERGED: Duration = Duration::from_secs(30);

/// A reflector: every agent node its (passive) client.
fn reflector(machine: &Node, lab: &Lab) -> Bird {
    let mut config =
        BgpConfig::new(AS, machine.ipv4().unwrap()).cluster_id("10.0.1.250".parse().unwrap());
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
fn e2e_reflectors_with_the_mesh_off_give_every_pod_a_route_to_every_pod() {
    if !tests::require_root() {
        return;
    }
    let mut builder = Lab::new("e2e_reflectors")
        .subnet("a", "10.0.1.0/24")
        .router();
    for machine in NODES.iter().chain(&REFLECTORS) {
        builder = builder.node(machine, "a");
    }
    let mut cluster = Cluster::new(builder.build().unwrap()).unwrap();
    let pool = IPPoolSpec::new(Cidr("10.244.0.0/16".parse().unwrap()));
    cluster
        .create(&IPPool::new("default-ipv4-ippool", pool))
        .unwrap();
    let bgp: BGPConfigurationSpec =
        serde_json::from_value(json!({"nodeToNodeMeshEnabled": false, "asNumber": AS})).unwrap();
    cluster
        .create(&BGPConfiguration::new("default", bgp))
        .unwrap();
    let reflectors: Vec<Bird> = REFLECTORS
        .iter()
        .map(|rr| {
            let machine = cluster.lab.node(rr);
            let peer: BGPPeerSpec = serde_json::from_value(
                json!({"peerIP": machine.address().to_string(), "asNumber": AS}),
            )
            .unwrap();
            cluster.create(&BGPPeer::new(*rr, peer)).unwrap();
            reflector(machine, &cluster.lab)
        })
        .collect();
    for node in NODES {
        cluster.start_agent(node).unwrap();
    }
    for node in NODES {
        cluster.wait_ready(node, READY).unwrap();
    }
    for bird in &reflectors {
        for node in NODES {
            bird.wait_established(cluster.lab.node(node).address(), CONVERGED)
                .unwrap();
        }
    }
    let pods: Vec<_> = NODES
        .iter()
        .map(|node| cluster.add_pod(node, &format!("pod-{node}")).unwrap())
        .collect();
    cluster.wait_for_routes(&NODES, &pods, CONVERGED).unwrap();
    ping_all(&pods).unwrap();
    // The status API (what `calicoctl-rs node status` reads): the two reflectors,
    // global peers, established; no mesh session.
    let expected: Vec<String> = REFLECTORS
        .iter()
        .map(|rr| cluster.lab.node(rr).address().to_string())
        .collect();
    for node in NODES {
        let peers = tests::runtime()
            .block_on(async {
                let channel = proto::client::connect_unix(&cluster.socket(node)).await?;
                let mut client = proto::bgp::bgp_status_client::BgpStatusClient::new(channel);
                let peers = client.list_peers(proto::bgp::ListPeersRequest {}).await?;
                anyhow::Ok(peers.into_inner().peers)
            })
            .unwrap();
        let addresses: Vec<String> = peers.iter().map(|p| p.address.clone()).collect();
        assert_eq!(addresses, expected, "{node}: {peers:?}");
        for peer in &peers {
            assert_eq!(peer.r#type(), proto::bgp::PeerType::Global, "{peer:?}");
            assert_eq!(
                peer.state(),
                proto::bgp::SessionState::Established,
                "{peer:?}"
            );
        }
    }
}
