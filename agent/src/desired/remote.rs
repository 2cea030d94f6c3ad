//! Routes to other nodes' pods (blocks and borrowed /32s) and to what routers
//! announce.
//!
//! - Pools without VXLAN: from BGP best paths that pass the ownership rule (the
//!   speaker selected them by it; checked again here against this view), through
//!   the next hop directly, or over `tunl0 onlink` when the pool's IPIP mode says
//!   so (`Always`, or `CrossSubnet` and the next hop is off this node's subnet).
//!   Several equal best paths make an ECMP route.
//! - VXLAN pools: from the datastore (blocks, their owners and the owners' VTEPs),
//!   `via <vtep address> dev vxlan.tabby onlink` with permanent neighbour and FDB
//!   entries, or the node's address directly for `CrossSubnet` on this subnet.

use std::collections::BTreeMap;
use std::net::IpAddr;

use api::resources::{EncapsulationMode, IPPool};
use ipnet::IpNet;

use super::cluster::{Cluster, View};
use super::devices::Tunnels;
use super::{Desired, Judge, NodeSettings, Paths};
use crate::dataplane::{IPIP_DEVICE, Mac, NextHop, Route, VXLAN_DEVICE, Vtep};

fn uses_vxlan(pool: &IPPool) -> bool {
    pool.spec.vxlan_mode != EncapsulationMode::Never
}

/// Routes from the speaker's best paths.
pub(super) fn learned(
    cluster: &Cluster,
    judge: &Judge,
    settings: &NodeSettings,
    tunnels: &Tunnels,
    best: &Paths,
    desired: &mut Desired,
) {
    let own = own_addresses(cluster, &settings.name);
    for (&prefix, paths) in best {
        let pool = cluster.pool_of(prefix);
        if pool.is_some_and(uses_vxlan) {
            continue;
        }
        let mut hops = Vec::new();
        for path in paths {
            // This node's own routes, and its own routes reflected back.
            if path.source.peer.is_none() || own.contains(&path.next_hop) {
                continue;
            }
            if let Err(rejection) = judge.check(prefix, path.next_hop, path.source.peer) {
                desired.rejected.push(rejection);
                continue;
            }
            let mode = pool.map_or(EncapsulationMode::Never, |p| p.spec.ipip_mode);
            hops.push(next_hop(mode, path.next_hop, tunnels));
        }
        if hops.is_empty() {
            continue;
        }
        match Route::via(prefix, hops) {
            Ok(route) => desired.dataplane.insert_route(route),
            // An IPv6 route through an IPv4 next hop has no kernel form (IPv4
            // through IPv6, RFC 8950, has).
            Err(error) => desired.problems.push(error.to_string()),
        }
    }
}

/// Through the next hop, or encapsulated when the pool's IPIP mode asks for it.
fn next_hop(mode: EncapsulationMode, gateway: IpAddr, tunnels: &Tunnels) -> NextHop {
    let encapsulate = match mode {
        EncapsulationMode::Always => true,
        EncapsulationMode::CrossSubnet => !tunnels.same_subnet(gateway),
        EncapsulationMode::Never => false,
    };
    if encapsulate && gateway.is_ipv4() && tunnels.ipip {
        NextHop::onlink(gateway, IPIP_DEVICE)
    } else {
        NextHop::via(gateway)
    }
}

/// Routes and VTEP entries for VXLAN pools, from the datastore.
pub(super) fn vxlan(
    cluster: &Cluster,
    ipam: &View<'_>,
    settings: &NodeSettings,
    tunnels: &Tunnels,
    desired: &mut Desired,
) {
    if !tunnels.vxlan {
        return;
    }
    let me = settings.name.as_str();
    let vteps = vteps(cluster, me);
    desired.dataplane.vteps = vteps.values().copied().collect();
    let route = |prefix: IpNet, node: &str, desired: &mut Desired| {
        let Some(pool) = cluster.pool_of(prefix).filter(|p| uses_vxlan(p)) else {
            return;
        };
        let Some(vtep) = vteps.get(node) else {
            desired.problems.push(format!(
                "{prefix} is on node {node:?}, which has no VXLAN tunnel address, MAC and \
                 IPv4 address yet: not routed"
            ));
            return;
        };
        let hop = if pool.spec.vxlan_mode == EncapsulationMode::CrossSubnet
            && tunnels.same_subnet(vtep.underlay)
        {
            NextHop::via(vtep.underlay)
        } else {
            NextHop::onlink(vtep.tunnel_address, VXLAN_DEVICE)
        };
        if let Ok(route) = Route::via(prefix, [hop]) {
            desired.dataplane.insert_route(route);
        }
    };
    for (block, owner) in ipam.owned_blocks() {
        if owner != me {
            route(block, owner, desired);
        }
    }
    for allocation in ipam.allocations() {
        let Some(node) = allocation.node else {
            continue;
        };
        let borrowed = ipam.owner_of_address(allocation.address) != Some(node);
        if node != me && borrowed {
            route(IpNet::from(allocation.address), node, desired);
        }
    }
}

/// Every other node's VTEP, by node name.
fn vteps<'a>(cluster: &'a Cluster, me: &str) -> BTreeMap<&'a str, Vtep> {
    cluster
        .nodes
        .values()
        .filter(|node| node.metadata.name != me)
        .filter_map(|node| {
            let spec = &node.spec;
            let underlay = spec.bgp.as_ref()?.ipv4_address?.0.addr();
            underlay.is_ipv4().then_some(())?;
            let vtep = Vtep {
                tunnel_address: spec.ipv4_vxlan_tunnel_addr?.into(),
                mac: Mac(spec.vxlan_tunnel_mac_addr?.0),
                underlay,
            };
            Some((node.metadata.name.as_str(), vtep))
        })
        .collect()
}

/// This node's BGP addresses.
fn own_addresses(cluster: &Cluster, me: &str) -> Vec<IpAddr> {
    cluster
        .nodes
        .get(me)
        .and_then(|node| node.spec.bgp.as_ref())
        .map(|bgp| {
            [bgp.ipv4_address, bgp.ipv6_address]
                .into_iter()
                .flatten()
                .map(|cidr| cidr.0.addr())
                .collect()
        })
        .unwrap_or_default()
}
