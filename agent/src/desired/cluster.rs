//! The datastore as the agent caches it, and the IPAM facts derived from it that
//! every part of the desired state needs: who owns which block, and which node
//! holds which address.
//!
//! IPAM blocks are the single source of truth for ownership. A node owns a block
//! when both sides agree: its `BlockAffinity` is confirmed and the block itself
//! names it (`affinity: host:<node>`), and the block is not being released.

use std::collections::BTreeMap;
use std::net::IpAddr;

use api::datastore::WatchEvent;
use api::resources::{
    AffinityState, BGPConfiguration, BGPConfigurationSpec, BGPFilter, BGPPeer, BlockAffinity,
    DEFAULT_BGP_CONFIGURATION, IPAMBlock, IPPool, Node, Resource,
};
use ipam::table::attr;
use ipnet::IpNet;

/// One kind's objects by name.
pub type Objects<R> = BTreeMap<String, R>;

/// Every resource the desired state depends on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cluster {
    pub pools: Objects<IPPool>,
    pub blocks: Objects<IPAMBlock>,
    pub affinities: Objects<BlockAffinity>,
    pub nodes: Objects<Node>,
    pub bgp_configurations: Objects<BGPConfiguration>,
    pub bgp_peers: Objects<BGPPeer>,
    pub bgp_filters: Objects<BGPFilter>,
}

/// Applies one watch event to a kind's cache.
pub fn apply<R: Resource>(objects: &mut Objects<R>, event: WatchEvent<R>) {
    match event {
        WatchEvent::Added(object) | WatchEvent::Modified(object) => {
            objects.insert(object.name().to_owned(), object);
        }
        WatchEvent::Deleted(object) => {
            objects.remove(object.name());
        }
        WatchEvent::Resync { objects: all, .. } => {
            *objects = all
                .into_iter()
                .map(|object| (object.name().to_owned(), object))
                .collect();
        }
    }
}

impl Cluster {
    /// The BGP settings in force on `node`: the cluster's `default`, with what the
    /// node's own `node.<name>` configuration sets on top.
    pub fn bgp_configuration(&self, node: &str) -> BGPConfigurationSpec {
        let mut spec = self
            .bgp_configurations
            .get(DEFAULT_BGP_CONFIGURATION)
            .map(|c| c.spec.clone())
            .unwrap_or_default();
        // Defaults for a cluster that has no `default` object yet.
        let mut defaults = api::resources::BGPConfiguration::new(
            DEFAULT_BGP_CONFIGURATION,
            BGPConfigurationSpec::default(),
        );
        defaults.apply_defaults();
        spec.as_number = spec.as_number.or(defaults.spec.as_number);
        spec.node_to_node_mesh_enabled = spec
            .node_to_node_mesh_enabled
            .or(defaults.spec.node_to_node_mesh_enabled);
        spec.listen_port = spec.listen_port.or(defaults.spec.listen_port);
        if let Some(own) = self.bgp_configurations.get(&format!("node.{node}")) {
            let own = &own.spec;
            spec.listen_port = own.listen_port.or(spec.listen_port);
            if !own.communities.is_empty() {
                spec.communities.clone_from(&own.communities);
            }
            if !own.prefix_advertisements.is_empty() {
                spec.prefix_advertisements
                    .clone_from(&own.prefix_advertisements);
            }
        }
        spec
    }

    /// The pool whose CIDR contains `prefix` (equal or more specific).
    pub fn pool_of(&self, prefix: IpNet) -> Option<&IPPool> {
        self.pools
            .values()
            .find(|pool| pool.spec.cidr.0.trunc().contains(&prefix))
    }
}

/// One allocated address, with what IPAM recorded about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation<'a> {
    pub address: IpAddr,
    pub block: IpNet,
    pub node: Option<&'a str>,
    pub handle: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub pod: Option<&'a str>,
    pub container: Option<&'a str>,
    /// Set for tunnel addresses (`ipipTunnelAddress`, `vxlanTunnelAddress`).
    pub kind: Option<&'a str>,
}

/// What the IPAM blocks say, indexed.
#[derive(Debug, Clone, Default)]
pub struct Ipam<'a> {
    /// Every block, with the node that owns it (confirmed on both sides).
    blocks: BTreeMap<IpNet, Option<&'a str>>,
    /// Every allocated address.
    allocations: BTreeMap<IpAddr, Allocation<'a>>,
}

impl<'a> Ipam<'a> {
    pub fn new(cluster: &'a Cluster) -> Self {
        let mut ipam = Self::default();
        for block in cluster.blocks.values() {
            let spec = &block.spec;
            let cidr = spec.cidr.0.trunc();
            let claimed = spec
                .affinity
                .as_deref()
                .and_then(|a| a.strip_prefix("host:"));
            let owner = claimed.filter(|node| {
                !spec.deleted
                    && cluster.affinities.values().any(|a| {
                        a.spec.node == *node
                            && a.spec.cidr.0.trunc() == cidr
                            && a.spec.state == AffinityState::Confirmed
                    })
            });
            ipam.blocks.insert(cidr, owner);
            for (ordinal, index) in spec.allocations.iter().enumerate() {
                let Some(attribute) = index.and_then(|i| spec.attributes.get(i)) else {
                    continue;
                };
                let Some(address) = nth(cidr, ordinal) else {
                    continue;
                };
                let secondary = |key: &str| attribute.secondary.get(key).map(String::as_str);
                ipam.allocations.insert(
                    address,
                    Allocation {
                        address,
                        block: cidr,
                        node: secondary(attr::NODE),
                        handle: attribute.handle_id.as_deref(),
                        namespace: secondary(attr::NAMESPACE),
                        pod: secondary(attr::POD),
                        container: secondary(attr::CONTAINER_ID),
                        kind: secondary(attr::TYPE),
                    },
                );
            }
        }
        ipam
    }

    /// Whether `prefix` is a block, and if so who owns it.
    pub fn block(&self, prefix: IpNet) -> Option<Option<&'a str>> {
        self.blocks.get(&prefix).copied()
    }

    /// Every block, with its confirmed owner if it has one.
    pub fn blocks(&self) -> impl Iterator<Item = (IpNet, Option<&'a str>)> + '_ {
        self.blocks.iter().map(|(cidr, owner)| (*cidr, *owner))
    }

    /// Blocks and their confirmed owners.
    pub fn owned_blocks(&self) -> impl Iterator<Item = (IpNet, &'a str)> + '_ {
        self.blocks
            .iter()
            .filter_map(|(cidr, owner)| Some((*cidr, (*owner)?)))
    }

    /// The owner of the block holding `address`.
    pub fn owner_of_address(&self, address: IpAddr) -> Option<&'a str> {
        let allocation = self.allocations.get(&address)?;
        self.blocks.get(&allocation.block).copied().flatten()
    }

    pub fn allocation(&self, address: IpAddr) -> Option<&Allocation<'a>> {
        self.allocations.get(&address)
    }

    pub fn allocations(&self) -> impl Iterator<Item = &Allocation<'a>> {
        self.allocations.values()
    }
}

/// The `ordinal`th address of `block`, if it is inside it.
fn nth(block: IpNet, ordinal: usize) -> Option<IpAddr> {
    let ordinal = u128::try_from(ordinal).ok()?;
    let host_bits = u32::from(block.max_prefix_len() - block.prefix_len());
    if host_bits < 128 && ordinal >> host_bits != 0 {
        return None;
    }
    Some(match block.addr() {
        IpAddr::V4(base) => {
            let offset = u32::try_from(ordinal).ok()?;
            std::net::Ipv4Addr::from(u32::from(base).checked_add(offset)?).into()
        }
        IpAddr::V6(base) => std::net::Ipv6Addr::from(u128::from(base).checked_add(ordinal)?).into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::testing::*;

    #[test]
    fn ordinals_count_from_the_blocks_first_address() {
        assert_eq!(nth(net("10.0.0.64/26"), 5), Some(ip("10.0.0.69")));
        assert_eq!(nth(net("10.0.0.64/26"), 64), None);
        assert_eq!(nth(net("fd00::40/122"), 1), Some(ip("fd00::41")));
    }

    #[test]
    fn a_block_is_owned_only_when_affinity_and_block_agree_and_it_is_not_being_released() {
        let mut cluster = Cluster::default();
        add_block(
            &mut cluster,
            "10.0.0.0/26",
            Some("a"),
            AffinityState::Confirmed,
        );
        add_block(
            &mut cluster,
            "10.0.0.64/26",
            Some("a"),
            AffinityState::Pending,
        );
        add_block(
            &mut cluster,
            "10.0.0.128/26",
            None,
            AffinityState::Confirmed,
        );
        add_block(
            &mut cluster,
            "10.0.0.192/26",
            Some("a"),
            AffinityState::Confirmed,
        );
        cluster
            .blocks
            .get_mut("10-0-0-192-26")
            .unwrap()
            .spec
            .deleted = true;
        let ipam = Ipam::new(&cluster);
        assert_eq!(ipam.block(net("10.0.0.0/26")), Some(Some("a")));
        assert_eq!(ipam.block(net("10.0.0.64/26")), Some(None));
        assert_eq!(ipam.block(net("10.0.0.128/26")), Some(None));
        assert_eq!(ipam.block(net("10.0.0.192/26")), Some(None));
        assert_eq!(ipam.block(net("10.0.1.0/26")), None);
    }

    #[test]
    fn allocations_carry_their_holders_attributes() {
        let mut cluster = Cluster::default();
        add_block(
            &mut cluster,
            "10.0.0.0/26",
            Some("a"),
            AffinityState::Confirmed,
        );
        allocate(&mut cluster, "10.0.0.5", "b", Some(("default", "web")));
        let ipam = Ipam::new(&cluster);
        let allocation = ipam.allocation(ip("10.0.0.5")).unwrap();
        assert_eq!(
            (allocation.node, allocation.namespace, allocation.pod),
            (Some("b"), Some("default"), Some("web"))
        );
        assert_eq!(ipam.owner_of_address(ip("10.0.0.5")), Some("a"));
    }

    #[test]
    fn a_nodes_own_bgp_configuration_overrides_the_clusters_port_only_where_set() {
        let mut cluster = Cluster::default();
        assert_eq!(cluster.bgp_configuration("a").listen_port, Some(179));
        assert_eq!(
            cluster.bgp_configuration("a").node_to_node_mesh_enabled,
            Some(true)
        );
        let own = BGPConfiguration::new(
            "node.a",
            BGPConfigurationSpec {
                listen_port: Some(1179),
                ..BGPConfigurationSpec::default()
            },
        );
        cluster.bgp_configurations.insert("node.a".into(), own);
        assert_eq!(cluster.bgp_configuration("a").listen_port, Some(1179));
        assert_eq!(cluster.bgp_configuration("b").listen_port, Some(179));
    }
}
