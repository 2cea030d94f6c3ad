//! Services over BGP end to end: tabby agents on the Kubernetes datastore (the API
//! double `tabby-kube-api`: no kube-apiserver can be installed here) peering eBGP
//! with a real BIRD top-of-rack router, the mesh off. The harness writes Services
//! and EndpointSlices as a user and Kubernetes' EndpointSlice controller would; the
//! ToR must learn the configured service ranges from every node and a `Local`
//! Service's addresses only from the nodes with a ready endpoint. Needs root.

use std::net::IpAddr;
use std::time::Duration;

use api::datastore::config::DatastoreType;
use api::resources::{
    BGPConfiguration, BGPConfigurationSpec, BGPPeer, BGPPeerSpec, Cidr, IPPool, IPPoolSpec,
};
use harness::e2e::Cluster;
use harness::kube_api::objects::{self, Endpoint};
use harness::peers::{BgpConfig, BgpPeer, Bird, Neighbor};
use harness::{Lab, wait_until};
use ipnet::IpNet;
use serde_json::json;

const NODE_AS: u32 = 64512;
const TOR_AS: u32 = 65000;
const READY: Duration = Duration::from_secs(60);
const CONVERGED: Duration = Duration::from_secs(30);
const NODES: [(&str, &str); 3] = [("n1", "a"), ("n2", "a"), ("n3", "b")];
const RANGES: [&str; 3] = ["10.96.0.0/12", "192.0.2.0/24", "203.0.113.0/24"];
/// The Service's addresses inside the ranges: cluster, external, LoadBalancer.
const ADDRESSES: [&str; 3] = ["10.96.0.10/32", "192.0.2.10/32", "203.0.113.10/32"];
/// An external IP the Service claims outside `serviceExternalIPs`.
const HIJACK: &str = "198.51.100.66";

fn lab(test: &str) -> Lab {
    Lab::two_racks(test, &NODES).unwrap()
}

fn tor_address(cluster: &Cluster, rack: &str) -> IpAddr {
    cluster.lab.router_address_in(rack).unwrap()
}

/// The cluster on the API double: a pool, the service ranges, the mesh off, a
/// `BGPPeer` per rack to its ToR; the agents started and ready.
fn cluster(test: &str) -> Cluster {
    let mut cluster = Cluster::on(lab(test), DatastoreType::Kubernetes).unwrap();
    let pool = IPPoolSpec::new(Cidr("10.244.0.0/16".parse().unwrap()));
    cluster
        .create(&IPPool::new("default-ipv4-ippool", pool))
        .unwrap();
    let bgp: BGPConfigurationSpec = serde_json::from_value(json!({
        "nodeToNodeMeshEnabled": false,
        "asNumber": NODE_AS,
        "serviceClusterIPs": [{"cidr": RANGES[0]}],
        "serviceExternalIPs": [{"cidr": RANGES[1]}],
        "serviceLoadBalancerIPs": [{"cidr": RANGES[2]}],
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
            "numAllowedLocalASNumbers": 1,
        }))
        .unwrap();
        cluster
            .create(&BGPPeer::new(format!("tor-{rack}"), peer))
            .unwrap();
    }
    for (node, rack) in NODES {
        cluster
            .start_agent_with(node, &[&format!("--node-labels=rack={rack}")])
            .unwrap();
    }
    for (node, _) in NODES {
        cluster.wait_ready(node, READY).unwrap();
    }
    cluster
}

fn tor(cluster: &Cluster) -> Bird {
    let mut config = BgpConfig::new(TOR_AS, "10.0.1.1".parse().unwrap());
    for (node, _) in NODES {
        let address = cluster.lab.node(node).address();
        config = config.neighbor(Neighbor::new(address, NODE_AS).passive());
    }
    let bird = Bird::start_routing(cluster.lab.router().unwrap(), &config).unwrap();
    for (node, _) in NODES {
        let address = cluster.lab.node(node).address();
        bird.wait_established(address, CONVERGED).unwrap();
    }
    bird
}

/// The Service `shop/web`: type LoadBalancer with its ingress written, both
/// traffic policies `Local`, an external IP inside the range and one outside it.
fn put_web(cluster: &Cluster) {
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"namespace": "shop", "name": "web"},
        "spec": {
            "type": "LoadBalancer",
            "clusterIP": "10.96.0.10",
            "clusterIPs": ["10.96.0.10"],
            "externalIPs": ["192.0.2.10", HIJACK],
            "externalTrafficPolicy": "Local",
            "internalTrafficPolicy": "Local",
            "ports": [{"port": 80, "protocol": "TCP"}],
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}},
    });
    cluster
        .with_kube_api(async |client| objects::put_service(&client, service).await)
        .unwrap();
}

/// `shop/web`'s endpoints: one per node, ready on `ready` only.
fn put_endpoints(cluster: &Cluster, ready: &[&str]) {
    let endpoints: Vec<Endpoint<'_>> = NODES
        .iter()
        .enumerate()
        .map(|(i, (node, _))| Endpoint {
            address: format!("10.244.{i}.5").parse().unwrap(),
            node,
            ready: ready.contains(node),
        })
        .collect();
    cluster
        .with_kube_api(async |client| {
            objects::put_endpoint_slice(&client, "shop", "web-1", "web", &endpoints).await
        })
        .unwrap();
}

/// The prefixes the ToR holds from `node` (best or not).
fn from_node(bird: &Bird, cluster: &Cluster, node: &str) -> anyhow::Result<Vec<IpNet>> {
    let address = cluster.lab.node(node).address();
    Ok(bird
        .routes_from(address)?
        .into_iter()
        .map(|r| r.prefix)
        .collect())
}

/// Waits until the ToR holds exactly the Service's addresses from the nodes in
/// `advertising` and from no other, and the ranges from every node; never a
/// prefix holding the address outside the ranges.
fn wait_advertised(bird: &Bird, cluster: &Cluster, advertising: &[&str]) {
    let what = format!("the Service's addresses from exactly {advertising:?}");
    wait_until(CONVERGED, &what, || {
        let mut wrong = Vec::new();
        for (node, _) in NODES {
            let held = from_node(bird, cluster, node)?;
            let hijack: IpAddr = HIJACK.parse()?;
            assert!(
                !held.iter().any(|p| p.contains(&hijack)),
                "{node} advertised {HIJACK}, outside serviceExternalIPs: {held:?}"
            );
            for range in RANGES {
                if !held.contains(&range.parse()?) {
                    wrong.push(format!("{node} lacks {range}"));
                }
            }
            for address in ADDRESSES {
                let has = held.contains(&address.parse()?);
                if has != advertising.contains(&node) {
                    wrong.push(format!("{node} has {address}: {has}"));
                }
            }
        }
        anyhow::Ok(if wrong.is_empty() {
            Ok(())
        } else {
            Err(wrong.join(", "))
        })
    })
    .unwrap();
}

#[test]
#[ignore = "needs root"]
fn services_a_local_services_addresses_follow_its_ready_endpoints_and_go_with_it() {
    harness::require_root();
    let cluster = cluster("services_local");
    let bird = tor(&cluster);
    // The ranges from every node before any Service exists.
    wait_advertised(&bird, &cluster, &[]);

    put_web(&cluster);
    put_endpoints(&cluster, &["n1", "n2"]);
    wait_advertised(&bird, &cluster, &["n1", "n2"]);
    // The router holds a path through each endpoint's node: it can spread (ECMP).
    let best = bird.birdc("show route 192.0.2.10/32 all").unwrap();
    for node in ["n1", "n2"] {
        let address = cluster.lab.node(node).address().to_string();
        assert!(best.contains(&address), "{node} ({address}) in {best}");
    }
    let status = cluster.node_status("n1").unwrap();
    assert!(
        status.services.iter().any(|line| line
            == "192.0.2.10/32 advertised: Service shop/web external IP 192.0.2.10: \
                externalTrafficPolicy Local and a ready endpoint on this node"),
        "{:#?}",
        status.services
    );
    assert!(
        status.services.iter().any(|line| line
            == &format!(
                "Service shop/web external IP {HIJACK}: not advertised, outside \
                 serviceExternalIPs"
            )),
        "{:#?}",
        status.services
    );

    // The endpoint moves from n1 to n3: so does the advertisement.
    put_endpoints(&cluster, &["n2", "n3"]);
    wait_advertised(&bird, &cluster, &["n2", "n3"]);

    // The Service goes: its addresses go, the ranges stay.
    cluster
        .with_kube_api(async |client| objects::delete_service(&client, "shop", "web").await)
        .unwrap();
    wait_advertised(&bird, &cluster, &[]);
}
