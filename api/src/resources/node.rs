//! `Node`: tabby's view of a Kubernetes node: its BGP identity and tunnel addresses.
//! The agent writes it; the mesh and route reflectors read it.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use super::{AsNumber, Cidr, MacAddress, Object, Spec, ValidationError};

pub type Node = Object<NodeSpec>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp: Option<NodeBgpSpec>,
    #[serde(
        default,
        rename = "ipv4VXLANTunnelAddr",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv4_vxlan_tunnel_addr: Option<Ipv4Addr>,
    #[serde(
        default,
        rename = "vxlanTunnelMACAddr",
        skip_serializing_if = "Option::is_none"
    )]
    pub vxlan_tunnel_mac_addr: Option<MacAddress>,
    #[serde(
        default,
        rename = "ipv6VXLANTunnelAddr",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv6_vxlan_tunnel_addr: Option<Ipv6Addr>,
    #[serde(
        default,
        rename = "vxlanTunnelMACAddrV6",
        skip_serializing_if = "Option::is_none"
    )]
    pub vxlan_tunnel_mac_addr_v6: Option<MacAddress>,
}

/// The node's BGP identity. Addresses carry their subnet (`10.0.0.5/24`), which is
/// how `CrossSubnet` encapsulation tells neighbours from distant nodes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeBgpSpec {
    #[serde(
        default,
        rename = "ipv4Address",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv4_address: Option<Cidr>,
    #[serde(
        default,
        rename = "ipv6Address",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv6_address: Option<Cidr>,
    /// The node's own AS; the cluster's when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_number: Option<AsNumber>,
    /// Set on nodes acting as route reflectors.
    #[serde(
        default,
        rename = "routeReflectorClusterID",
        skip_serializing_if = "Option::is_none"
    )]
    pub route_reflector_cluster_id: Option<Ipv4Addr>,
    #[serde(
        default,
        rename = "ipv4IPIPTunnelAddr",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv4_ipip_tunnel_addr: Option<Ipv4Addr>,
}

impl Spec for NodeSpec {
    const KIND: &'static str = "Node";
    const PLURAL: &'static str = "nodes";

    fn validate(&self, _name: &str) -> Result<(), ValidationError> {
        if let Some(bgp) = &self.bgp {
            if bgp.ipv4_address.is_none() && bgp.ipv6_address.is_none() {
                return Err(ValidationError::missing(
                    "spec.bgp.ipv4Address",
                    "is required unless ipv6Address is set",
                ));
            }
            if let Some(address) = &bgp.ipv4_address {
                address.require_family("spec.bgp.ipv4Address", true)?;
            }
            if let Some(address) = &bgp.ipv6_address {
                address.require_family("spec.bgp.ipv6Address", false)?;
            }
        }
        if self.ipv4_vxlan_tunnel_addr.is_some() != self.vxlan_tunnel_mac_addr.is_some() {
            return Err(ValidationError::new(
                "spec.vxlanTunnelMACAddr",
                self.vxlan_tunnel_mac_addr.map(|m| m.to_string()),
                "must be set together with ipv4VXLANTunnelAddr",
            ));
        }
        if self.ipv6_vxlan_tunnel_addr.is_some() != self.vxlan_tunnel_mac_addr_v6.is_some() {
            return Err(ValidationError::new(
                "spec.vxlanTunnelMACAddrV6",
                self.vxlan_tunnel_mac_addr_v6.map(|m| m.to_string()),
                "must be set together with ipv6VXLANTunnelAddr",
            ));
        }
        Ok(())
    }
}
