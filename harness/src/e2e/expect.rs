//! The kernel routes a cluster's nodes should have, worked out from the datastore
//! (pools, confirmed block affinities, nodes' addresses and tunnel addresses) and
//! the lab's wiring (which subnet each node is on), in the normalised lines of
//! [`crate::routes::routes`]:
//!
//! ```text
//! 10.244.7.1/32 dev cali0123456789a scope link      a local pod
//! fd00:244::1c0/128 dev cali0123456789a             its IPv6 address (no scope)
//! blackhole 10.244.7.0/26                           a block this node owns
//! 10.244.9.0/26 via 10.0.1.11 dev eth0              another node's, no encapsulation
//! fd00:244::40/122 via fd00:1::b dev eth0           an IPv6 block, via its IPv6 address
//! 10.244.9.64/26 via 10.244.3.0 dev vxlan.tabby onlink        over VXLAN
//! 10.244.9.128/26 via 10.0.2.10 dev tunl0 onlink               over IPIP
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use anyhow::Result;
use api::datastore::{Datastore, ListOptions};
use api::resources::{AffinityState, BlockAffinity, EncapsulationMode, IPAMBlock, IPPool, Node};
use ipnet::IpNet;

use super::{Cluster, Pod};
use crate::lab::NODE_INTERFACE;
use crate::routes::routes;
use crate::wait::wait_until;

/// What the datastore says, read once.
#[derive(Debug, Default)]
pub struct Facts {
    /// Blocks with a confirmed affinity, by node.
    pub owners: BTreeMap<String, Vec<IpNet>>,
    /// Pools: CIDR, IPIP mode, VXLAN mode.
    pub pools: Vec<(IpNet, EncapsulationMode, EncapsulationMode)>,
    /// Nodes' BGP (underlay) IPv4 addresses.
    pub address: BTreeMap<String, IpAddr>,
    /// Nodes' BGP (underlay) IPv6 addresses, the next hops of IPv6 blocks.
    pub address6: BTreeMap<String, IpAddr>,
    /// Nodes' VXLAN tunnel addresses (VTEPs).
    pub vxlan_tunnel: BTreeMap<String, Ipv4Addr>,
}

impl Cluster {
    /// Reads the [`Facts`] from the datastore.
    pub fn facts(&self) -> Result<Facts> {
        self.datastore(async |store| {
            let all = ListOptions::default();
            let blocks = store.list::<IPAMBlock>(&all).await?.items;
            let affinities = store.list::<BlockAffinity>(&all).await?.items;
            let nodes = store.list::<Node>(&all).await?.items;
            let pools = store.list::<IPPool>(&all).await?.items;
            let mut facts = Facts {
                pools: pools
                    .iter()
                    .map(|p| (p.spec.cidr.0, p.spec.ipip_mode, p.spec.vxlan_mode))
                    .collect(),
                ..Facts::default()
            };
            for block in &blocks {
                let Some(node) = block
                    .spec
                    .affinity
                    .as_deref()
                    .and_then(|a| a.strip_prefix("host:"))
                else {
                    continue;
                };
                let confirmed = affinities.iter().any(|a| {
                    a.spec.node == node
                        && a.spec.cidr == block.spec.cidr
                        && a.spec.state == AffinityState::Confirmed
                });
                if confirmed {
                    facts
                        .owners
                        .entry(node.to_owned())
                        .or_default()
                        .push(block.spec.cidr.0);
                }
            }
            for node in &nodes {
                let name = node.metadata.name.clone();
                if let Some(cidr) = node.spec.bgp.as_ref().and_then(|b| b.ipv4_address) {
                    facts.address.insert(name.clone(), cidr.0.addr());
                }
                if let Some(cidr) = node.spec.bgp.as_ref().and_then(|b| b.ipv6_address) {
                    facts.address6.insert(name.clone(), cidr.0.addr());
                }
                if let Some(vtep) = node.spec.ipv4_vxlan_tunnel_addr {
                    facts.vxlan_tunnel.insert(name, vtep);
                }
            }
            anyhow::Ok(facts)
        })?
    }

    /// tabby's routes `node` should have, given `pods` (the cluster's pods; those
    /// on `node` get their /32).
    pub fn expected_routes(&self, node: &str, pods: &[Pod], facts: &Facts) -> BTreeSet<String> {
        let mut lines = BTreeSet::new();
        for pod in pods.iter().filter(|p| p.node == node) {
            for ip in &pod.ips {
                // The kernel keeps no scope on IPv6 routes.
                lines.insert(match ip {
                    IpAddr::V4(_) => format!("{ip}/32 dev {} scope link", pod.veth),
                    IpAddr::V6(_) => format!("{ip}/128 dev {}", pod.veth),
                });
            }
        }
        let subnet = |name: &str| {
            self.lab
                .nodes()
                .iter()
                .find(|n| n.name() == name)
                .map(|n| n.subnet().to_owned())
        };
        for (owner, blocks) in &facts.owners {
            for block in blocks {
                if owner == node {
                    lines.insert(format!("blackhole {block}"));
                    continue;
                }
                let (ipip, vxlan) = facts
                    .pools
                    .iter()
                    .find(|(cidr, ..)| cidr.contains(block))
                    .map_or((EncapsulationMode::Never, EncapsulationMode::Never), |p| {
                        (p.1, p.2)
                    });
                let across = subnet(owner) != subnet(node);
                let encapsulate = |mode| match mode {
                    EncapsulationMode::Always => true,
                    EncapsulationMode::CrossSubnet => across,
                    EncapsulationMode::Never => false,
                };
                let known = |address: Option<String>| address.unwrap_or_else(|| "(none)".into());
                let underlay = if block.addr().is_ipv4() {
                    &facts.address
                } else {
                    &facts.address6
                };
                let address = known(underlay.get(owner).map(ToString::to_string));
                let line = if encapsulate(vxlan) {
                    let vtep = known(facts.vxlan_tunnel.get(owner).map(ToString::to_string));
                    format!("{block} via {vtep} dev vxlan.tabby onlink")
                } else if encapsulate(ipip) {
                    format!("{block} via {address} dev tunl0 onlink")
                } else {
                    format!("{block} via {address} dev {NODE_INTERFACE}")
                };
                lines.insert(line);
            }
        }
        lines
    }

    /// Waits until each of `nodes` has exactly [`Cluster::expected_routes`] (read
    /// afresh at every poll: blocks may still be claimed).
    pub fn wait_for_routes(&self, nodes: &[&str], pods: &[Pod], timeout: Duration) -> Result<()> {
        for node in nodes {
            wait_until(timeout, &format!("{node}'s routes"), || {
                let expected = self.expected_routes(node, pods, &self.facts()?);
                let actual = routes(self.lab.node(node), "84")?;
                anyhow::Ok(if actual == expected {
                    Ok(())
                } else {
                    Err(format!("expected {expected:#?}, kernel has {actual:#?}"))
                })
            })?;
        }
        Ok(())
    }
}

/// Every pod pings every other pod (and itself), at each of its addresses.
pub fn ping_all(pods: &[Pod]) -> Result<()> {
    for from in pods {
        for to in pods {
            for ip in &to.ips {
                from.netns.ping(*ip)?;
            }
        }
    }
    Ok(())
}
