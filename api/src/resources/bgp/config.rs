//! `BGPConfiguration`: `default` holds the cluster's settings; `node.<name>` overrides
//! the per-node ones for that node.

use serde::{Deserialize, Serialize};

use crate::resources::meta::is_dns_subdomain;
use crate::resources::{
    AsNumber, BfdSpec, BgpPassword, Cidr, CidrEntry, Community, GoDuration, Object, Spec,
    ValidationError,
};

pub type BGPConfiguration = Object<BGPConfigurationSpec>;

/// The name of the cluster-wide configuration.
pub const DEFAULT_BGP_CONFIGURATION: &str = "default";
/// BGP's well-known port, where the agent listens unless `listenPort` says otherwise.
pub const DEFAULT_LISTEN_PORT: u16 = 179;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPConfigurationSpec {
    /// The cluster's AS, used by nodes without their own; defaults to 64512.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_number: Option<AsNumber>,
    /// Whether every node peers with every other; defaults to true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_to_node_mesh_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_port: Option<u16>,
    /// Named communities for `prefixAdvertisements`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<NamedCommunity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefix_advertisements: Vec<PrefixAdvertisement>,
    #[serde(
        default,
        rename = "serviceClusterIPs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub service_cluster_ips: Vec<CidrEntry>,
    #[serde(
        default,
        rename = "serviceExternalIPs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub service_external_ips: Vec<CidrEntry>,
    #[serde(
        default,
        rename = "serviceLoadBalancerIPs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub service_load_balancer_ips: Vec<CidrEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_mesh_password: Option<BgpPassword>,
    /// Graceful-restart time the mesh peers advertise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_mesh_max_restart_time: Option<GoDuration>,
    /// Where the agents listen for BGP: every address (`None`, the default) or
    /// only the node's BGP addresses (`NodeIP`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_mode: Option<BindMode>,
    /// BFD on the node-to-node mesh sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd: Option<BfdSpec>,
}

/// Which local addresses a node's BGP listener binds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum BindMode {
    /// The wildcard address of each family the node speaks BGP in.
    #[default]
    None,
    /// Only the node's BGP addresses (`spec.bgp.ipv4Address`, `ipv6Address`).
    #[serde(rename = "NodeIP")]
    NodeIp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedCommunity {
    pub name: String,
    pub value: Community,
}

/// Communities to attach to routes within `cidr`: values or names from `communities`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixAdvertisement {
    pub cidr: Cidr,
    pub communities: Vec<String>,
}

impl Spec for BGPConfigurationSpec {
    const KIND: &'static str = "BGPConfiguration";
    const PLURAL: &'static str = "bgpconfigurations";

    fn apply_defaults(&mut self, name: &str) {
        if name == DEFAULT_BGP_CONFIGURATION {
            self.as_number.get_or_insert(AsNumber::DEFAULT);
            self.node_to_node_mesh_enabled.get_or_insert(true);
            self.listen_port.get_or_insert(DEFAULT_LISTEN_PORT);
        }
    }

    fn validate(&self, name: &str) -> Result<(), ValidationError> {
        if name != DEFAULT_BGP_CONFIGURATION {
            let node = name.strip_prefix("node.").unwrap_or("");
            if !is_dns_subdomain(node) {
                return Err(ValidationError::new(
                    "metadata.name",
                    name,
                    "is neither \"default\" nor \"node.<node name>\"",
                ));
            }
            self.reject_cluster_wide_fields()?;
        }
        if self.listen_port == Some(0) {
            return Err(ValidationError::new("spec.listenPort", 0, "is not a port"));
        }
        for (i, community) in self.communities.iter().enumerate() {
            let taken = self.communities[..i]
                .iter()
                .any(|c| c.name == community.name);
            if community.name.is_empty() || community.name.parse::<Community>().is_ok() || taken {
                return Err(ValidationError::new(
                    format!("spec.communities[{i}].name"),
                    &community.name,
                    "must be a unique name that is not itself a community value",
                ));
            }
        }
        for (i, advertisement) in self.prefix_advertisements.iter().enumerate() {
            advertisement
                .cidr
                .require_masked(&format!("spec.prefixAdvertisements[{i}].cidr"))?;
            for (j, community) in advertisement.communities.iter().enumerate() {
                let known = community.parse::<Community>().is_ok()
                    || self.communities.iter().any(|c| &c.name == community);
                if !known {
                    return Err(ValidationError::new(
                        format!("spec.prefixAdvertisements[{i}].communities[{j}]"),
                        community,
                        "is neither a community value nor a name in spec.communities",
                    ));
                }
            }
        }
        let services = [
            ("serviceClusterIPs", &self.service_cluster_ips),
            ("serviceExternalIPs", &self.service_external_ips),
            ("serviceLoadBalancerIPs", &self.service_load_balancer_ips),
        ];
        for (field, entries) in services {
            for (i, entry) in entries.iter().enumerate() {
                entry
                    .cidr
                    .require_masked(&format!("spec.{field}[{i}].cidr"))?;
            }
        }
        if let Some(password) = &self.node_mesh_password {
            password.validate("spec.nodeMeshPassword")?;
        }
        if let Some(bfd) = &self.bfd {
            bfd.validate("spec.bfd")?;
        }
        Ok(())
    }
}

impl BGPConfigurationSpec {
    /// Mesh and service settings are the cluster's; a node's override cannot set them.
    fn reject_cluster_wide_fields(&self) -> Result<(), ValidationError> {
        let set = [
            ("asNumber", self.as_number.is_some()),
            (
                "nodeToNodeMeshEnabled",
                self.node_to_node_mesh_enabled.is_some(),
            ),
            ("serviceClusterIPs", !self.service_cluster_ips.is_empty()),
            ("serviceExternalIPs", !self.service_external_ips.is_empty()),
            (
                "serviceLoadBalancerIPs",
                !self.service_load_balancer_ips.is_empty(),
            ),
            ("nodeMeshPassword", self.node_mesh_password.is_some()),
            (
                "nodeMeshMaxRestartTime",
                self.node_mesh_max_restart_time.is_some(),
            ),
            ("bindMode", self.bind_mode.is_some()),
            ("bfd", self.bfd.is_some()),
        ];
        let Some((field, _)) = set.iter().find(|(_, present)| *present) else {
            return Ok(());
        };
        let value = serde_json::to_value(self)
            .ok()
            .and_then(|spec| spec.get(*field).map(ToString::to_string))
            .unwrap_or_default();
        Err(ValidationError::rendered(
            format!("spec.{field}"),
            value,
            "is cluster-wide: set it in the \"default\" BGPConfiguration",
        ))
    }
}
