//! tabby nodes peering eBGP with a top-of-rack router, the node-to-node mesh off:
//! the lab's router runs BIRD (as a router: what it learns goes into its kernel)
//! or FRR bgpd (without zebra here: it learns, but cannot forward). Nodes find
//! their ToR through `BGPPeer`s that select them by rack label, with a TCP-MD5
//! password: on etcd read from a file, on the Kubernetes datastore (the `kdd_`
//! runs) from the Secret `tabby-bgp-passwords` the `BGPPeer`'s `secretKeyRef`
//! names, which the agent reads through the API on its own token. Two racks
//! (subnets), nodes in AS 64512, the ToR in AS 65000; nodes accept their own AS
//! once in a path (`numAllowedLocalASNumbers`), as nodes sharing an AS behind eBGP
//! ToRs must. Needs root.

use std::net::IpAddr;
use std::time::Duration;

use api::datastore::Datastore;
use api::datastore::config::DatastoreType;
use api::resources::{
    BGPConfiguration, BGPConfigurationSpec, BGPFilter, BGPFilterSpec, BGPPeer, BGPPeerSpec, Cidr,
    IPPool, IPPoolSpec,
};
use harness::e2e::{Cluster, Pod, ping_all};
use harness::peers::{BgpConfig, BgpPeer, Bird, Frr, Neighbor};
use harness::routes::routes;
use harness::{Lab, wait_until};
use ipnet::IpNet;
use serde_json::json;

const NODE_AS: u32 = 64512;
const TOR_AS: u32 = 65000;
const PASSWORD: &str = "rack-secret";
/// What the ToR originates towards the nodes (a data-centre prefix).
const EXTERNAL: &str = "198.51.100.0/24";
const READY: Duration = Duration::from_secs(60);
const CONVERGED: Duration = Duration::from_secs(30);
const NODES: [(&str, &str); 3] = [("n1", "a"), ("n2", "a"), ("n3", "b")];

fn lab(test: &str) -> Lab {
    Lab::two_racks(test, &NODES).unwrap()
}

/// The ToR's address on `rack`.
fn tor_address(cluster: &Cluster, rack: &str) -> IpAddr {
    cluster.lab.router_address_in(rack).unwrap()
}

/// The ToR's configuration: every node a passive neighbour with the password.
fn tor_config(cluster: &Cluster) -> BgpConfig {
    let mut config =
        BgpConfig::new(TOR_AS, "10.0.1.1".parse().unwrap()).route(EXTERNAL.parse().unwrap());
    for (node, _) in NODES {
        let address = cluster.lab.node(node).address();
        config = config.neighbor(Neighbor::new(address, NODE_AS).passive().password(PASSWORD));
    }
    config
}

/// The cluster on etcd: one unencapsulated pool, the mesh off, a `BGPPeer` per
/// rack to its ToR; nothing started yet.
fn cluster(test: &str) -> Cluster {
    cluster_on(test, false, DatastoreType::Etcd)
}

/// Where the `BGPPeer`s' password comes from on `datastore`: a file on etcd (which
/// has no Secrets), the key `tor` of the Secret the agent's Role lets it read on
/// Kubernetes.
fn password(cluster: &Cluster, datastore: DatastoreType) -> serde_json::Value {
    match datastore {
        DatastoreType::Etcd => {
            let file = cluster.dir().join("tor-password");
            std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
            json!({"file": file})
        }
        DatastoreType::Kubernetes => {
            cluster
                .put_secret("tabby-bgp-passwords", &[("tor", PASSWORD)])
                .unwrap();
            json!({"secretKeyRef": {"name": "tabby-bgp-passwords", "key": "tor"}})
        }
    }
}

/// [`cluster`], with the node-to-node mesh on or off, on `datastore`.
fn cluster_on(test: &str, mesh: bool, datastore: DatastoreType) -> Cluster {
    let cluster = Cluster::on(lab(test), datastore).unwrap();
    let password = password(&cluster, datastore);
    let pool = IPPoolSpec::new(Cidr("10.244.0.0/16".parse().unwrap()));
    cluster
        .create(&IPPool::new("default-ipv4-ippool", pool))
        .unwrap();
    let bgp: BGPConfigurationSpec = serde_json::from_value(json!({
        "nodeToNodeMeshEnabled": mesh,
        "asNumber": NODE_AS,
    }))
    .unwrap();
    cluster
        .create(&BGPConfiguration::new("default", bgp))
        .unwrap();
    for rack in ["a", "b"] {
        let peer: BGPPeerSpec = serde_json::from_value(json!({
            "nodeSelector": format!("rack == '{rack}'"),
            "peerIP": tor_address(&cluster, rack).to_string(),
            "asNumber": TOR_AS,
            "password": password,
            "numAllowedLocalASNumbers": 1,
        }))
        .unwrap();
        cluster
            .create(&BGPPeer::new(format!("tor-{rack}"), peer))
            .unwrap();
    }
    cluster
}

/// Starts the agents (labelled with their rack) and a pod on each node.
fn start(cluster: &mut Cluster) -> Vec<Pod> {
    for (node, rack) in NODES {
        cluster
            .start_agent_with(node, &[&format!("--node-labels=rack={rack}")])
            .unwrap();
    }
    for (node, _) in NODES {
        cluster.wait_ready(node, READY).unwrap();
    }
    NODES
        .iter()
        .map(|(node, _)| cluster.add_pod(node, &format!("pod-{node}")).unwrap())
        .collect()
}

/// Waits until the ToR has a session with every node.
fn wait_sessions(cluster: &Cluster, tor: &impl BgpPeer) {
    for (node, _) in NODES {
        let address = cluster.lab.node(node).address();
        tor.wait_established(address, CONVERGED).unwrap();
    }
}

/// Every node's block, as the ToR must learn it.
fn blocks(cluster: &Cluster) -> Vec<IpNet> {
    let facts = cluster.facts().unwrap();
    assert_eq!(facts.owners.len(), NODES.len(), "{:?}", facts.owners);
    facts.owners.values().flatten().copied().collect()
}

/// Waits until every node has a tabby route to every other node's block and to
/// the ToR's prefix, through the ToR's sessions.
fn wait_for_learned_routes(cluster: &Cluster, blocks: &[IpNet]) {
    for (node, _) in NODES {
        let own = cluster.facts().unwrap().owners[node].clone();
        wait_until(CONVERGED, &format!("{node}'s routes from the ToR"), || {
            let table = routes(cluster.lab.node(node), "84")?;
            let routed = |prefix: String| {
                table
                    .iter()
                    .any(|l| l.starts_with(&format!("{prefix} via ")))
            };
            let missing: Vec<String> = blocks
                .iter()
                .filter(|b| !own.contains(b))
                .map(ToString::to_string)
                .chain([EXTERNAL.to_owned()])
                .filter(|p| !routed(p.clone()))
                .collect();
            anyhow::Ok(if missing.is_empty() {
                Ok(())
            } else {
                Err(format!("missing {missing:?} in {table:#?}"))
            })
        })
        .unwrap();
    }
}

#[test]
#[ignore = "needs root"]
fn e2e_tor_bird_learns_every_nodes_block_over_md5_and_routes_pods_between_racks() {
    harness::require_root();
    bird_learns_every_block_and_routes_pods_between_racks("e2e_tor_bird", DatastoreType::Etcd);
}

#[test]
#[ignore = "needs root"]
fn kdd_tor_bird_learns_every_nodes_block_over_md5_keyed_from_a_secret_and_routes_pods_between_racks()
 {
    harness::require_root();
    bird_learns_every_block_and_routes_pods_between_racks(
        "kdd_tor_bird",
        DatastoreType::Kubernetes,
    );
}

/// BIRD as the racks' ToR learns every node's block over MD5 sessions and routes
/// between the racks, so every pod pings every pod.
fn bird_learns_every_block_and_routes_pods_between_racks(test: &str, datastore: DatastoreType) {
    let mut cluster = cluster_on(test, false, datastore);
    let router = cluster.lab.router().unwrap();
    let bird = Bird::start_routing(router, &tor_config(&cluster)).unwrap();
    let pods = start(&mut cluster);
    wait_sessions(&cluster, &bird);
    let blocks = blocks(&cluster);
    for block in &blocks {
        bird.wait_route(*block, CONVERGED).unwrap();
        let router = cluster.lab.router().unwrap();
        wait_until(CONVERGED, &format!("{block} in the ToR's kernel"), || {
            let table = routes(router, "bird")?;
            anyhow::Ok(
                table
                    .iter()
                    .any(|l| l.starts_with(&format!("{block} via "))),
            )
        })
        .unwrap();
    }
    wait_for_learned_routes(&cluster, &blocks);
    ping_all(&pods).unwrap();
}

#[test]
#[ignore = "needs root"]
fn e2e_tor_frr_learns_every_nodes_block_over_md5_and_its_prefix_reaches_every_node() {
    harness::require_root();
    let mut cluster = cluster("e2e_tor_frr");
    let router = cluster.lab.router().unwrap();
    let frr = Frr::start(router, &tor_config(&cluster)).unwrap();
    let _pods = start(&mut cluster);
    wait_sessions(&cluster, &frr);
    let blocks = blocks(&cluster);
    for block in &blocks {
        let route = frr.wait_route(*block, CONVERGED).unwrap();
        assert_eq!(route.as_path, [NODE_AS], "{route:?}");
    }
    wait_for_learned_routes(&cluster, &blocks);
}

/// How often the agent on `node` has logged its session with `peer` coming up.
fn sessions_established(cluster: &mut Cluster, node: &str, peer: IpAddr) -> usize {
    let log = cluster.agent(node).unwrap().log();
    // Without the log's colours (`ESC [ ... m`).
    let mut plain = String::new();
    let mut escaped = false;
    for c in log.chars() {
        match (escaped, c) {
            (false, '\x1b') => escaped = true,
            (false, c) => plain.push(c),
            (true, 'm') => escaped = false,
            (true, _) => {}
        }
    }
    let log = plain;
    let line = format!("peer={peer} ");
    log.lines()
        .filter(|l| l.contains("BGP session established") && l.contains(&line))
        .count()
}

#[test]
#[ignore = "needs root"]
fn e2e_tor_a_new_export_filter_on_a_bgppeer_withdraws_from_the_tor_without_a_session_reset() {
    harness::require_root();
    let mut cluster = cluster("e2e_tor_policy");
    let router = cluster.lab.router().unwrap();
    let frr = Frr::start(router, &tor_config(&cluster)).unwrap();
    let _pods = start(&mut cluster);
    let tor = tor_address(&cluster, "a");
    wait_sessions(&cluster, &frr);
    let blocks = blocks(&cluster);
    for block in &blocks {
        frr.wait_route(*block, CONVERGED).unwrap();
    }
    let before = sessions_established(&mut cluster, "n1", tor);
    assert_eq!(before, 1);
    // Rack a stops announcing pod addresses to its ToR: a policy change only.
    let rules: BGPFilterSpec = serde_json::from_value(json!({
        "exportV4": [{"cidr": "10.244.0.0/16", "matchOperator": "In", "action": "Reject"}],
    }))
    .unwrap();
    cluster
        .create(&BGPFilter::new("no-pods-out", rules))
        .unwrap();
    cluster
        .datastore(async |store| {
            let mut peer: BGPPeer = store.get("tor-a").await?;
            peer.spec.filters = vec!["no-pods-out".into()];
            store.update(&peer).await
        })
        .unwrap()
        .unwrap();
    let facts = cluster.facts().unwrap();
    for node in ["n1", "n2"] {
        for block in &facts.owners[node] {
            frr.wait_no_route(*block, CONVERGED).unwrap();
        }
    }
    for block in &facts.owners["n3"] {
        assert!(frr.route(*block).unwrap().is_some(), "rack b is unfiltered");
    }
    frr.wait_established(cluster.lab.node("n1").address(), CONVERGED)
        .unwrap();
    assert_eq!(sessions_established(&mut cluster, "n1", tor), before);
    assert!(
        cluster
            .agent("n1")
            .unwrap()
            .log()
            .contains("BGP peer updated")
    );
}

#[test]
#[ignore = "needs root"]
fn hardening_the_tor_reaches_each_block_through_its_owner() {
    harness::require_root();
    // With the mesh on every node knows every block: each must still announce
    // only its own to the ToR, or the ToR sends other nodes' pods through it.
    let mut cluster = cluster_on("hardening_tor_owner", true, DatastoreType::Etcd);
    let router = cluster.lab.router().unwrap();
    let bird = Bird::start_routing(router, &tor_config(&cluster)).unwrap();
    let _pods = start(&mut cluster);
    wait_sessions(&cluster, &bird);
    // (The racks' subnets are not routed to each other without the ToR's help or
    // encapsulation: only the BGP sessions of the mesh matter here.)
    let blocks = blocks(&cluster);
    for block in &blocks {
        bird.wait_route(*block, CONVERGED).unwrap();
    }
    let facts = cluster.facts().unwrap();
    // The nodes (ready: BGP learned) had their chance to re-advertise what the
    // mesh gave them.
    std::thread::sleep(Duration::from_secs(5));
    for (node, owned) in &facts.owners {
        for block in owned {
            let route = bird.wait_route(*block, CONVERGED).unwrap();
            assert_eq!(
                route.next_hop,
                Some(facts.address[node]),
                "{block} of {node} at the ToR: {route:?}"
            );
        }
    }
}
