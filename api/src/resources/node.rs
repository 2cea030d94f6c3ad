//! `Node`: tabby's view of a Kubernetes node: its BGP identity and tunnel addresses.
//! The mesh and route reflectors read it. Two writers share it, each owning its
//! fields, and neither overwrites the other's:
//!
//! | field | owner |
//! | --- | --- |
//! | `metadata.labels` | the operator (`label nodes`); the agent adds its `--node-labels` only where the key is absent |
//! | `spec.bgp.asNumber` | the operator (`patch node`); the agent's `--as` fills it in only when absent |
//! | `spec.bgp.routeReflectorClusterID` | the operator |
//! | `spec.bgp.pinnedAddresses` | the operator: the families whose address the operator set |
//! | `spec.bgp.ipv4Address`, `ipv6Address` | the agent, which autodetects them (or takes `--ip`/`--ip6`) at every start; the operator's for a pinned family |
//! | `spec.bgp.ipv4IPIPTunnelAddr`, `spec.ipv4VXLANTunnelAddr`, `vxlanTunnelMACAddr`, `ipv6VXLANTunnelAddr`, `vxlanTunnelMACAddrV6` | the agent |
//!
//! The agent's side is `agent::node::register`; the operator's is
//! [`NodeSpec::written_over`], which `calicoctl-rs apply` and `patch` use.

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
    /// The address the node speaks BGP from. The agent's (autodetected at every
    /// start) unless its family is in `pinnedAddresses`.
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
    /// The node's own AS; the cluster's when unset. The operator's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_number: Option<AsNumber>,
    /// Set on nodes acting as route reflectors. The operator's.
    #[serde(
        default,
        rename = "routeReflectorClusterID",
        skip_serializing_if = "Option::is_none"
    )]
    pub route_reflector_cluster_id: Option<Ipv4Addr>,
    /// The agent's.
    #[serde(
        default,
        rename = "ipv4IPIPTunnelAddr",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv4_ipip_tunnel_addr: Option<Ipv4Addr>,
    /// Families whose address the operator set: the agent speaks BGP from that
    /// address instead of autodetecting one, and never rewrites it. The
    /// operator's; `calicoctl-rs` adds a family when an operator sets its address.
    #[serde(
        default,
        rename = "pinnedAddresses",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub pinned_addresses: Vec<AddressFamily>,
}

/// An IP address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AddressFamily {
    IPv4,
    IPv6,
}

impl AddressFamily {
    pub const ALL: [AddressFamily; 2] = [AddressFamily::IPv4, AddressFamily::IPv6];

    /// The Node field holding the family's BGP address.
    pub fn address_field(self) -> &'static str {
        match self {
            AddressFamily::IPv4 => "ipv4Address",
            AddressFamily::IPv6 => "ipv6Address",
        }
    }
}

impl NodeBgpSpec {
    /// The BGP address of `family`.
    pub fn address(&self, family: AddressFamily) -> Option<Cidr> {
        match family {
            AddressFamily::IPv4 => self.ipv4_address,
            AddressFamily::IPv6 => self.ipv6_address,
        }
    }

    pub fn set_address(&mut self, family: AddressFamily, address: Option<Cidr>) {
        match family {
            AddressFamily::IPv4 => self.ipv4_address = address,
            AddressFamily::IPv6 => self.ipv6_address = address,
        }
    }

    /// Whether the operator pinned the address of `family`.
    pub fn pinned(&self, family: AddressFamily) -> bool {
        self.pinned_addresses.contains(&family)
    }
}

impl NodeSpec {
    /// This spec, as an operator wrote it (a document applied, a patch merged),
    /// over what is stored. The operator's fields come from `self`; the agent's stay
    /// as stored. An address is pinned when `self` lists its family in
    /// `pinnedAddresses` or changes the stored one; an address `self` leaves out is
    /// the agent's again (autodetected at its next start). A node not stored yet
    /// (`None`: not registered) takes all of `self`, the agent's fields and
    /// unpinned addresses as a starting point the agent replaces when it starts.
    pub fn written_over(self, stored: Option<&NodeSpec>) -> NodeSpec {
        let Some(stored) = stored else {
            return self;
        };
        let stored_bgp = stored.bgp.as_ref();
        let mut bgp = NodeBgpSpec {
            ipv4_ipip_tunnel_addr: stored_bgp.and_then(|b| b.ipv4_ipip_tunnel_addr),
            ..NodeBgpSpec::default()
        };
        if let Some(wanted) = &self.bgp {
            bgp.as_number = wanted.as_number;
            bgp.route_reflector_cluster_id = wanted.route_reflector_cluster_id;
        }
        for family in AddressFamily::ALL {
            let kept = stored_bgp.and_then(|b| b.address(family));
            let wanted = self.bgp.as_ref().and_then(|b| b.address(family));
            let listed = self.bgp.as_ref().is_some_and(|b| b.pinned(family));
            match wanted {
                Some(address) if listed || Some(address) != kept => {
                    bgp.set_address(family, Some(address));
                    bgp.pinned_addresses.push(family);
                }
                _ => bgp.set_address(family, kept),
            }
        }
        NodeSpec {
            bgp: (bgp != NodeBgpSpec::default()).then_some(bgp),
            ipv4_vxlan_tunnel_addr: stored.ipv4_vxlan_tunnel_addr,
            vxlan_tunnel_mac_addr: stored.vxlan_tunnel_mac_addr,
            ipv6_vxlan_tunnel_addr: stored.ipv6_vxlan_tunnel_addr,
            vxlan_tunnel_mac_addr_v6: stored.vxlan_tunnel_mac_addr_v6,
        }
    }
}

impl Spec for NodeSpec {
    const KIND: &'static str = "Node";
    const PLURAL: &'static str = "nodes";

    fn validate(&self, _name: &str) -> Result<(), ValidationError> {
        // A node the agent has not registered yet may have an AS and no address.
        if let Some(bgp) = &self.bgp {
            for (i, family) in bgp.pinned_addresses.iter().enumerate() {
                if bgp.pinned_addresses[..i].contains(family) {
                    return Err(ValidationError::new(
                        format!("spec.bgp.pinnedAddresses[{i}]"),
                        family,
                        "is listed twice",
                    ));
                }
                if bgp.address(*family).is_none() {
                    return Err(ValidationError::new(
                        format!("spec.bgp.pinnedAddresses[{i}]"),
                        family,
                        format!(
                            "pins an address that is not set: set spec.bgp.{} too",
                            family.address_field()
                        ),
                    ));
                }
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
