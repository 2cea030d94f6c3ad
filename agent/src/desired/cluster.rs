//! The datastore as the agent caches it, and the IPAM facts derived from it that
//! every part of the desired state needs ([`ipam::view`]: who owns which block,
//! and which node holds which address).

use std::collections::BTreeMap;

use api::resources::{
    BGPConfiguration, BGPConfigurationSpec, BGPFilter, BGPPeer, BlockAffinity,
    DEFAULT_BGP_CONFIGURATION, IPAMBlock, IPPool, Node, Resource,
};
use api::services::{ServiceFacts, SliceFacts};
pub use ipam::view::{Allocation, View};
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
    /// Kubernetes Services and EndpointSlices by `namespace/name` (from the
    /// Kubernetes API, not tabby's datastore; empty where it cannot be read).
    pub services: Objects<ServiceFacts>,
    pub endpoint_slices: Objects<SliceFacts>,
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

    /// What the IPAM blocks say, indexed.
    pub fn ipam(&self) -> View<'_> {
        View::new(self.blocks.values(), self.affinities.values())
    }

    /// The pool whose CIDR contains `prefix` (equal or more specific).
    pub fn pool_of(&self, prefix: IpNet) -> Option<&IPPool> {
        self.pools
            .values()
            .find(|pool| pool.spec.cidr.0.trunc().contains(&prefix))
    }
}

#[cfg(test)]
mod tests {
    use api::resources::AffinityState;

    use super::*;
    use crate::desired::testing::*;

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
        let ipam = cluster.ipam();
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
        let ipam = cluster.ipam();
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
