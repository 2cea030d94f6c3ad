//! Builders for the clusters the desired-state tests describe.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use api::resources::{
    AffinityState, AllocationAttribute, BlockAffinity, BlockAffinitySpec, Cidr, EncapsulationMode,
    IPPool, IPPoolSpec, MacAddress, Node, NodeBgpSpec, NodeSpec, Resource,
};
use bgp::codec::Attributes;
use bgp::rib::{Path, Source};
use ipnet::IpNet;

use ipam::table::attr;

use super::cluster::Cluster;
use super::{NodeSettings, Paths, PeerRole};

pub fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn cidr(s: &str) -> Cidr {
    Cidr(net(s))
}

/// This node's settings in every test: node `a`, a 1500-byte underlay.
pub fn settings() -> NodeSettings {
    NodeSettings {
        name: "a".into(),
        underlay_mtu: 1500,
        mtu: None,
        check_ownership: true,
        router_id: crate::peering::RouterId::NodeAddress,
    }
}

pub fn add_pool(cluster: &mut Cluster, name: &str, cidr_text: &str, ipip: EncapsulationMode) {
    let mut spec = IPPoolSpec::new(cidr(cidr_text));
    spec.ipip_mode = ipip;
    cluster.pools.insert(name.into(), IPPool::new(name, spec));
}

pub fn pool_mut<'a>(cluster: &'a mut Cluster, name: &str) -> &'a mut IPPoolSpec {
    &mut cluster.pools.get_mut(name).unwrap().spec
}

/// Node `name` with BGP address `address` (with its subnet, `192.0.2.10/24`).
pub fn add_node(cluster: &mut Cluster, name: &str, address: &str) {
    let spec = NodeSpec {
        bgp: Some(NodeBgpSpec {
            ipv4_address: Some(cidr(address)),
            ..NodeBgpSpec::default()
        }),
        ..NodeSpec::default()
    };
    cluster.nodes.insert(name.into(), Node::new(name, spec));
}

pub fn node_mut<'a>(cluster: &'a mut Cluster, name: &str) -> &'a mut NodeSpec {
    &mut cluster.nodes.get_mut(name).unwrap().spec
}

/// Gives node `name` a VXLAN tunnel address and MAC `66:00:00:00:00:<last>`.
pub fn vxlan_tunnel(cluster: &mut Cluster, name: &str, address: &str, last: u8) {
    let spec = node_mut(cluster, name);
    spec.ipv4_vxlan_tunnel_addr = Some(address.parse().unwrap());
    spec.vxlan_tunnel_mac_addr = Some(MacAddress([0x66, 0, 0, 0, 0, last]));
}

/// A block, claimed by `owner` when given (block and affinity agree), with its
/// affinity in `state`.
pub fn add_block(
    cluster: &mut Cluster,
    cidr_text: &str,
    owner: Option<&str>,
    state: AffinityState,
) {
    let cidr = cidr(cidr_text);
    let block = ipam::claim::new_block(cidr, owner);
    cluster.blocks.insert(block.name().to_owned(), block);
    if let Some(node) = owner {
        let affinity = BlockAffinity::new(
            ipam::claim::affinity_name(node, &cidr),
            BlockAffinitySpec {
                node: node.into(),
                cidr,
                state,
            },
        );
        cluster
            .affinities
            .insert(affinity.name().to_owned(), affinity);
    }
}

/// Allocates `address` to a holder on `node`: a pod when `pod` is `(namespace, name)`.
pub fn allocate(cluster: &mut Cluster, address: &str, node: &str, pod: Option<(&str, &str)>) {
    let mut secondary = BTreeMap::from([(attr::NODE.to_owned(), node.to_owned())]);
    if let Some((namespace, name)) = pod {
        secondary.insert(attr::NAMESPACE.into(), namespace.into());
        secondary.insert(attr::POD.into(), name.into());
    }
    allocate_with(
        cluster,
        address,
        secondary,
        Some(format!("k8s-pod-network.{address}")),
    );
}

/// Allocates `address` as node `node`'s tunnel address of `kind`.
pub fn allocate_tunnel(cluster: &mut Cluster, address: &str, node: &str, kind: &str) {
    let secondary = BTreeMap::from([
        (attr::NODE.to_owned(), node.to_owned()),
        (attr::TYPE.to_owned(), kind.to_owned()),
    ]);
    allocate_with(cluster, address, secondary, Some(format!("{kind}-{node}")));
}

fn allocate_with(
    cluster: &mut Cluster,
    address: &str,
    secondary: BTreeMap<String, String>,
    handle_id: Option<String>,
) {
    let address = ip(address);
    let block = cluster
        .blocks
        .values_mut()
        .find(|b| b.spec.cidr.0.contains(&address))
        .expect("a block holds the address");
    let spec = &mut block.spec;
    let offset = match (address, spec.cidr.0.addr()) {
        (IpAddr::V4(a), IpAddr::V4(base)) => u128::from(u32::from(a) - u32::from(base)),
        (IpAddr::V6(a), IpAddr::V6(base)) => u128::from(a) - u128::from(base),
        _ => unreachable!(),
    };
    let ordinal = usize::try_from(offset).unwrap();
    spec.allocations[ordinal] = Some(spec.attributes.len());
    spec.unallocated.retain(|o| *o != ordinal);
    spec.attributes.push(AllocationAttribute {
        handle_id,
        secondary,
    });
}

/// A path learned from the peer at `from` (iBGP when `internal`), next hop `next_hop`.
pub fn learned(from: &str, next_hop: &str, internal: bool) -> Path {
    Path {
        source: Arc::new(Source {
            peer: Some(ip(from)),
            router_id: "192.0.2.1".parse().unwrap(),
            remote_as: if internal { 64512 } else { 65001 },
            internal,
            rr_client: false,
        }),
        attributes: Arc::new(Attributes::default()),
        next_hop: ip(next_hop),
        path_id: None,
        stale: false,
        eligible: true,
    }
}

/// What the peers of `best` are: nodes for iBGP paths, routers for the others.
pub fn roles(best: &Paths) -> BTreeMap<IpAddr, PeerRole> {
    best.values()
        .flatten()
        .filter_map(|path| {
            let role = if path.source.internal {
                PeerRole::Node
            } else {
                PeerRole::Router
            };
            Some((path.source.peer?, role))
        })
        .collect()
}

/// Best paths: each prefix with its ECMP set.
pub fn best(entries: &[(&str, Vec<Path>)]) -> Paths {
    entries
        .iter()
        .map(|(prefix, paths)| (net(prefix), paths.clone()))
        .collect()
}
