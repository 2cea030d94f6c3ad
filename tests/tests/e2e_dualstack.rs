//! Dual-stack and IPv6-only clusters end to end: etcd (the dual-stack mesh also on
//! the Kubernetes datastore, `kdd_`), `tabby-agent` processes and pods attached by
//! `tabby-cni` with `tabby-ipam`, on one subnet behind a router.
//!
//! - dual stack: every node has an IPv4 and an IPv6 address, pods get one of each
//!   (an IPv4 pool of /26 blocks, an IPv6 pool of /122 blocks), BGP runs a session
//!   per family; in the full mesh, and with the mesh off and one node an in-cluster
//!   route reflector (`routeReflectorClusterID`, a `BGPPeer` `peerSelector`);
//! - IPv6 only: nodes without an IPv4 address, router ids derived from their names
//!   (`--router-id=hash`), IPv6 sessions, IPv6 pod routes.
//!
//! - a ToR (BIRD, routing into its kernel) learns both families' blocks from
//!   dual-stack nodes over one IPv4 session per node (MP-BGP) and over a session
//!   per family, each with the owner's address of the family as next hop.
//!
//! Every node's kernel table (both families) is compared with the table the
//! datastore implies, and every pod pings every pod at each of its addresses.
//! Without encapsulation only: tabby refuses VXLAN on IPv6 pools (no VXLAN over
//! IPv6 yet). Needs root.

use std::net::Ipv4Addr;
use std::time::Duration;

use api::datastore::Datastore;
use api::datastore::config::DatastoreType;
use api::resources::{
    BGPConfiguration, BGPConfigurationSpec, BGPPeer, BGPPeerSpec, Cidr, IPPool, IPPoolSpec, Node,
};
use harness::e2e::{Cluster, Pod, list_peers, ping_all};
use harness::peers::{BgpConfig, BgpPeer, Bird, Neighbor};
use harness::{Lab, wait_until};
use proto::bgp_status::bgp_status_client::BgpStatusClient;
use proto::bgp_status::{ListPeersRequest, SessionState};
use serde_json::json;

const READY: Duration = Duration::from_secs(60);
const CONVERGED: Duration = Duration::from_secs(30);
const V4_POOL: &str = "10.244.0.0/16";
const V6_POOL: &str = "fd00:244::/48";
const FIVE: [&str; 5] = ["n1", "n2", "n3", "n4", "n5"];

/// `nodes` on subnet a (10.0.1.0/24 when `ipv4`, and fd00:1::/64), a router, etcd.
fn cluster(test: &str, nodes: &[&str], ipv4: bool) -> Cluster {
    cluster_on(test, nodes, ipv4, DatastoreType::Etcd)
}

/// [`cluster`] on `datastore`.
fn cluster_on(test: &str, nodes: &[&str], ipv4: bool, datastore: DatastoreType) -> Cluster {
    let mut builder = if ipv4 {
        Lab::new(test)
            .subnet("a", "10.0.1.0/24")
            .ipv6("a", "fd00:1::/64")
    } else {
        Lab::new(test).subnet("a", "fd00:1::/64")
    }
    .router();
    for node in nodes {
        builder = builder.node(node, "a");
    }
    let mut cluster = Cluster::on(builder.build().unwrap(), datastore).unwrap();
    cluster.set_pod_families(ipv4, true);
    let mut pools = vec![("default-ipv6-ippool", V6_POOL)];
    if ipv4 {
        pools.push(("default-ipv4-ippool", V4_POOL));
    }
    for (name, cidr) in pools {
        let spec = IPPoolSpec::new(Cidr(cidr.parse().unwrap()));
        cluster.create(&IPPool::new(name, spec)).unwrap();
    }
    cluster
}

/// Starts an agent on each of `nodes` with `extra` flags, waits until all are
/// ready, and attaches a pod to each.
fn start(cluster: &mut Cluster, nodes: &[&str], extra: &[&str]) -> Vec<Pod> {
    for node in nodes {
        cluster.start_agent_with(node, extra).unwrap();
    }
    for node in nodes {
        cluster.wait_ready(node, READY).unwrap();
    }
    nodes
        .iter()
        .map(|node| cluster.add_pod(node, &format!("pod-{node}")).unwrap())
        .collect()
}

/// Each pod has one address of each family the cluster assigns, from its pool.
fn assert_addressed(pods: &[Pod], ipv4: bool) {
    for pod in pods {
        let v4 = pod.ips.iter().filter(|ip| ip.is_ipv4()).count();
        let v6 = pod.ips.iter().filter(|ip| ip.is_ipv6()).count();
        assert_eq!((v4, v6), (usize::from(ipv4), 1), "{pod:?}");
        for ip in &pod.ips {
            let pool: ipnet::IpNet = if ip.is_ipv4() { V4_POOL } else { V6_POOL }
                .parse()
                .unwrap();
            assert!(pool.contains(ip), "{pod:?}");
        }
    }
}

/// The sessions of the agent on `node`: the speaker's router id, and each peer's
/// address with its state.
fn sessions(cluster: &Cluster, node: &str) -> (String, Vec<(String, SessionState)>) {
    let socket = cluster.socket(node);
    harness::runtime().block_on(async {
        let channel = proto::client::connect_unix(&socket).await.unwrap();
        let answer = BgpStatusClient::new(channel)
            .list_peers(ListPeersRequest {})
            .await
            .unwrap()
            .into_inner();
        let peers = answer
            .peers
            .iter()
            .map(|p| (p.address.clone(), p.state()))
            .collect();
        (answer.router_id, peers)
    })
}

/// The lab addresses of `nodes` in the family `ipv4` says.
fn addresses(cluster: &Cluster, nodes: &[&str], ipv4: bool) -> Vec<String> {
    nodes
        .iter()
        .filter_map(|n| {
            let node = cluster.lab.node(n);
            if ipv4 {
                node.ipv4().map(|a| a.to_string())
            } else {
                node.address6().map(|a| a.to_string())
            }
        })
        .collect()
}

#[test]
#[ignore = "needs root"]
fn e2e_dualstack_mesh_five_nodes_every_pod_reaches_every_pod_over_both_families() {
    harness::require_root();
    mesh_every_pod_reaches_every_pod_over_both_families(
        "e2e_dualstack_mesh",
        &FIVE,
        DatastoreType::Etcd,
    );
}

#[test]
#[ignore = "needs root"]
fn kdd_dualstack_mesh_three_nodes_every_pod_reaches_every_pod_over_both_families() {
    harness::require_root();
    mesh_every_pod_reaches_every_pod_over_both_families(
        "kdd_dualstack_mesh",
        &FIVE[..3],
        DatastoreType::Kubernetes,
    );
}

/// A dual-stack mesh of `nodes` on `datastore`: both families' blocks routed
/// through the owner's address of the family, every pod pinging every pod at
/// each address, a session per family between every two nodes.
fn mesh_every_pod_reaches_every_pod_over_both_families(
    test: &str,
    nodes: &[&str],
    datastore: DatastoreType,
) {
    let mut cluster = cluster_on(test, nodes, true, datastore);
    let pods = start(&mut cluster, nodes, &[]);
    assert_addressed(&pods, true);
    cluster.wait_for_routes(nodes, &pods, CONVERGED).unwrap();
    // A /26 and a /122 per node, each routed via the owner's address of its family.
    let facts = cluster.facts().unwrap();
    for node in nodes {
        let blocks = &facts.owners[*node];
        let lengths: Vec<u8> = blocks.iter().map(|b| b.prefix_len()).collect();
        assert!(
            lengths.contains(&26) && lengths.contains(&122),
            "{blocks:?}"
        );
    }
    ping_all(&pods).unwrap();
    // One session per family with every other node, each Established in time: a
    // family's own session may come up after the routes, which the other family's
    // session carried too (seen: the IPv6 one still Idle after a refused first try).
    let mut expected = addresses(&cluster, &nodes[1..], true);
    expected.extend(addresses(&cluster, &nodes[1..], false));
    expected.sort();
    wait_until(CONVERGED, "a session per family, each Established", || {
        let (_, peers) = sessions(&cluster, nodes[0]);
        let mut seen: Vec<String> = peers.iter().map(|(a, _)| a.clone()).collect();
        seen.sort();
        let up = peers.iter().all(|(_, s)| *s == SessionState::Established);
        anyhow::Ok(if seen == expected && up {
            Ok(())
        } else {
            Err(format!("{peers:?}"))
        })
    })
    .unwrap();
}

#[test]
#[ignore = "needs root"]
fn e2e_dualstack_in_cluster_reflector_carries_both_families_with_the_mesh_off() {
    harness::require_root();
    let mut cluster = cluster("e2e_dualstack_rr", &FIVE, true);
    let bgp: BGPConfigurationSpec =
        serde_json::from_value(json!({"nodeToNodeMeshEnabled": false})).unwrap();
    cluster
        .create(&BGPConfiguration::new("default", bgp))
        .unwrap();
    let peer: BGPPeerSpec =
        serde_json::from_value(json!({"peerSelector": "route-reflector == 'true'"})).unwrap();
    cluster
        .create(&BGPPeer::new("to-reflectors", peer))
        .unwrap();
    cluster
        .start_agent_with("n1", &["--node-labels=route-reflector=true"])
        .unwrap();
    cluster.wait_ready("n1", READY).unwrap();
    // The operator makes n1 a reflector (the agent keeps the field).
    wait_until(CONVERGED, "n1 to become a reflector", || {
        let written = cluster.datastore(async |store| {
            let mut node: Node = store.get("n1").await?;
            if let Some(bgp) = node.spec.bgp.as_mut() {
                bgp.route_reflector_cluster_id = Some(Ipv4Addr::new(1, 1, 1, 1));
            }
            store.update(&node).await.map(drop)
        })?;
        anyhow::Ok(written.map_err(|e| e.to_string()))
    })
    .unwrap();
    let mut pods = start(&mut cluster, &FIVE[1..], &[]);
    pods.push(cluster.add_pod("n1", "pod-n1").unwrap());
    assert_addressed(&pods, true);
    cluster.wait_for_routes(&FIVE, &pods, CONVERGED).unwrap();
    ping_all(&pods).unwrap();
    // Clients peer with the reflector only, once per family; it with all of them.
    let reflector = addresses(&cluster, &["n1"], true)
        .into_iter()
        .chain(addresses(&cluster, &["n1"], false))
        .collect::<Vec<_>>();
    for node in &FIVE[1..] {
        let peers = list_peers(&cluster.socket(node)).unwrap();
        let mut seen: Vec<String> = peers.iter().map(|p| p.address.clone()).collect();
        seen.sort();
        let mut expected = reflector.clone();
        expected.sort();
        assert_eq!(seen, expected, "{node}");
        assert!(peers.iter().all(|p| p.state() == SessionState::Established));
    }
    let peers = list_peers(&cluster.socket("n1")).unwrap();
    assert_eq!(peers.len(), 8, "{peers:?}");
    assert!(peers.iter().all(|p| p.route_reflector_client), "{peers:?}");
}

#[test]
#[ignore = "needs root"]
fn e2e_ipv6_only_cluster_hash_router_ids_ipv6_sessions_and_pod_routes() {
    harness::require_root();
    // Three nodes: the mesh of three has every session kind a fourth would add.
    let nodes = ["n1", "n2", "n3"];
    let mut cluster = cluster("e2e_ipv6_only", &nodes, false);
    for node in nodes {
        assert_eq!(cluster.lab.node(node).ipv4(), None);
    }
    let pods = start(&mut cluster, &nodes, &["--router-id=hash"]);
    assert_addressed(&pods, false);
    cluster.wait_for_routes(&nodes, &pods, CONVERGED).unwrap();
    ping_all(&pods).unwrap();
    for node in nodes {
        let (router_id, peers) = sessions(&cluster, node);
        assert_eq!(
            router_id,
            agent::peering::router_id::hashed(node).to_string(),
            "{node}"
        );
        let others: Vec<&str> = nodes.iter().copied().filter(|n| *n != node).collect();
        let mut seen: Vec<String> = peers.iter().map(|(a, _)| a.clone()).collect();
        seen.sort();
        assert_eq!(seen, addresses(&cluster, &others, false), "{node}");
        assert!(
            peers.iter().all(|(_, s)| *s == SessionState::Established),
            "{peers:?}"
        );
    }
}

const NODE_AS: u32 = 64512;
const TOR_AS: u32 = 65000;

/// The router as a ToR (AS 65000) of two dual-stack nodes: over one IPv4 session
/// per node carrying both families, or (`per_family`) a session per family. Either
/// way it must learn every block with the owner's address of the block's family
/// as next hop — not an IPv4-mapped IPv6 address, which it could not route — and
/// reach every pod at both addresses through the routes it learned.
fn tor_learns_both_families(test: &str, per_family: bool) {
    let nodes = ["n1", "n2"];
    let mut cluster = cluster(test, &nodes, true);
    let router = cluster.lab.router().unwrap();
    let like_v4 = cluster.lab.node("n1").address();
    let like_v6 = cluster.lab.node("n1").address6().unwrap();
    let tor_v4 = router.address_in("a", like_v4).unwrap();
    let tor_v6 = router.address_in("a", like_v6).unwrap();
    let bgp: BGPConfigurationSpec = serde_json::from_value(json!({"asNumber": NODE_AS})).unwrap();
    cluster
        .create(&BGPConfiguration::new("default", bgp))
        .unwrap();
    let mut tor_addresses = vec![tor_v4];
    if per_family {
        tor_addresses.push(tor_v6);
    }
    for address in &tor_addresses {
        let peer: BGPPeerSpec =
            serde_json::from_value(json!({"peerIP": address.to_string(), "asNumber": TOR_AS}))
                .unwrap();
        let name = if address.is_ipv4() {
            "tor-v4"
        } else {
            "tor-v6"
        };
        cluster.create(&BGPPeer::new(name, peer)).unwrap();
    }
    let mut config = BgpConfig::new(TOR_AS, "10.0.1.1".parse().unwrap());
    let mut sessions = Vec::new();
    for node in nodes {
        let lab_node = cluster.lab.node(node);
        let v4 = lab_node.address();
        if per_family {
            let v6 = lab_node.address6().unwrap();
            config = config
                .neighbor(Neighbor::new(v4, NODE_AS).passive())
                .neighbor(Neighbor::new(v6, NODE_AS).passive());
            sessions.extend([v4, v6]);
        } else {
            config = config.neighbor(Neighbor::new(v4, NODE_AS).passive().both_families());
            sessions.push(v4);
        }
    }
    let bird = Bird::start_routing(router, &config).unwrap();
    let pods = start(&mut cluster, &nodes, &[]);
    for address in sessions {
        bird.wait_established(address, READY).unwrap();
    }
    let facts = cluster.facts().unwrap();
    for node in nodes {
        let lab_node = cluster.lab.node(node);
        for block in &facts.owners[node] {
            let route = bird.wait_route(*block, CONVERGED).unwrap();
            let owner = if block.addr().is_ipv4() {
                lab_node.address()
            } else {
                lab_node.address6().unwrap()
            };
            assert_eq!(
                route.next_hop,
                Some(owner),
                "{block} from {node}: {route:?}"
            );
        }
    }
    let router = cluster.lab.router().unwrap();
    for pod in &pods {
        for ip in &pod.ips {
            wait_until(CONVERGED, &format!("the ToR reaches {ip}"), || {
                anyhow::Ok(router.ping(*ip).is_ok())
            })
            .unwrap();
        }
    }
}

#[test]
#[ignore = "needs root"]
fn e2e_dualstack_tor_learns_both_families_over_one_ipv4_session_per_node() {
    harness::require_root();
    tor_learns_both_families("e2e_dualstack_tor_mp", false);
}

#[test]
#[ignore = "needs root"]
fn e2e_dualstack_tor_learns_both_families_over_a_session_per_family() {
    harness::require_root();
    tor_learns_both_families("e2e_dualstack_tor_pf", true);
}
