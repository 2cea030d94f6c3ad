//! Calico's Node: what the operator sets is kept (the AS, the route-reflector
//! cluster id, labels, and an address written in the document, which becomes pinned:
//! the agent speaks BGP from it instead of autodetecting one); what the agent owns
//! is dropped with a note (tunnel addresses, WireGuard, the orchestrator's
//! references, reported addresses). Written with `apply`, the agent's fields already
//! stored stay; for a node that has not registered yet, the agent adopts the
//! resource when it starts (see `api::resources::node` for who owns what).

use api::resources::{AddressFamily, AsNumber, NodeBgpSpec, NodeSpec, ValidationError};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use super::{CalicoSpec, Conversion, non_empty, prefix};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct CalicoNodeSpec {
    bgp: Option<CalicoNodeBgp>,
    // The agent's: each named in a note when present.
    #[serde(rename = "ipv4VXLANTunnelAddr")]
    ipv4_vxlan_tunnel_addr: Option<Value>,
    #[serde(rename = "vxlanTunnelMACAddr")]
    vxlan_tunnel_mac_addr: Option<Value>,
    #[serde(rename = "ipv6VXLANTunnelAddr")]
    ipv6_vxlan_tunnel_addr: Option<Value>,
    #[serde(rename = "vxlanTunnelMACAddrV6")]
    vxlan_tunnel_mac_addr_v6: Option<Value>,
    orch_refs: Option<IgnoredAny>,
    wireguard: Option<IgnoredAny>,
    addresses: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CalicoNodeBgp {
    as_number: Option<AsNumber>,
    #[serde(rename = "ipv4Address")]
    ipv4_address: Option<String>,
    #[serde(rename = "ipv6Address")]
    ipv6_address: Option<String>,
    #[serde(rename = "routeReflectorClusterID")]
    route_reflector_cluster_id: Option<String>,
    #[serde(rename = "ipv4IPIPTunnelAddr")]
    ipv4_ipip_tunnel_addr: Option<Value>,
}

impl CalicoSpec for CalicoNodeSpec {
    type Target = NodeSpec;

    fn convert(
        self,
        _name: &str,
        conversion: &mut Conversion,
    ) -> Result<NodeSpec, ValidationError> {
        let agents = [
            ("spec.ipv4VXLANTunnelAddr", self.ipv4_vxlan_tunnel_addr),
            ("spec.vxlanTunnelMACAddr", self.vxlan_tunnel_mac_addr),
            ("spec.ipv6VXLANTunnelAddr", self.ipv6_vxlan_tunnel_addr),
            ("spec.vxlanTunnelMACAddrV6", self.vxlan_tunnel_mac_addr_v6),
        ];
        for (path, value) in agents {
            note_tunnel(path, value, conversion);
        }
        let reported = [
            (
                "spec.orchRefs",
                self.orch_refs.is_some(),
                "tabby's Node is named after the Kubernetes node",
            ),
            (
                "spec.wireguard",
                self.wireguard.is_some(),
                "tabby has no WireGuard",
            ),
            (
                "spec.addresses",
                self.addresses.is_some(),
                "the agent finds the host's addresses itself",
            ),
        ];
        for (path, _, why) in reported.iter().filter(|(_, present, _)| *present) {
            conversion.note(format!("{path} dropped: Calico's node wrote it; {why}"));
        }
        let Some(calico) = self.bgp else {
            return Ok(NodeSpec::default());
        };
        note_tunnel(
            "spec.bgp.ipv4IPIPTunnelAddr",
            calico.ipv4_ipip_tunnel_addr,
            conversion,
        );
        let mut bgp = NodeBgpSpec {
            as_number: calico.as_number.filter(|asn| asn.0 != 0),
            route_reflector_cluster_id: non_empty(calico.route_reflector_cluster_id)
                .map(|id| {
                    id.parse().map_err(|_| {
                        ValidationError::new(
                            "spec.bgp.routeReflectorClusterID",
                            &id,
                            "is not an IPv4 address",
                        )
                    })
                })
                .transpose()?,
            ..NodeBgpSpec::default()
        };
        let addresses = [
            (AddressFamily::IPv4, calico.ipv4_address),
            (AddressFamily::IPv6, calico.ipv6_address),
        ];
        for (family, written) in addresses {
            let Some(text) = non_empty(written) else {
                continue;
            };
            let path = format!("spec.bgp.{}", family.address_field());
            let address = prefix(
                &path,
                &text,
                ": give the subnet's length (as in 10.0.1.5/24) for CrossSubnet \
                 encapsulation to tell neighbours from distant nodes",
                conversion,
            )?;
            bgp.set_address(family, Some(address));
            bgp.pinned_addresses.push(family);
        }
        conversion.note(ownership(&bgp));
        Ok(NodeSpec {
            bgp: Some(bgp),
            ..NodeSpec::default()
        })
    }
}

fn note_tunnel(path: &str, value: Option<Value>, conversion: &mut Conversion) {
    let Some(value) = value.filter(|v| v.as_str() != Some("")) else {
        return;
    };
    conversion.note(format!(
        "{path} {value} dropped: the agent owns tunnel addresses (it takes them from an \
         IP pool when a pool needs the tunnel)"
    ));
}

/// What the document sets that the agent will keep, and what the agent does itself.
fn ownership(bgp: &NodeBgpSpec) -> String {
    let mut kept = vec!["labels".to_owned()];
    if let Some(asn) = bgp.as_number {
        kept.push(format!("asNumber {asn}"));
    }
    if let Some(id) = bgp.route_reflector_cluster_id {
        kept.push(format!("routeReflectorClusterID {id}"));
    }
    let mut autodetected = Vec::new();
    for family in AddressFamily::ALL {
        match bgp.address(family) {
            Some(address) => kept.push(format!(
                "{} {address} (pinned: the agent speaks BGP from it instead of \
                 autodetecting)",
                family.address_field()
            )),
            None => autodetected.push(family.address_field()),
        }
    }
    let mut owned = Vec::new();
    if !autodetected.is_empty() {
        owned.push(format!(
            "{} (autodetected at each start)",
            autodetected.join(" and ")
        ));
    }
    owned.push("the tunnel addresses".to_owned());
    format!(
        "kept, and never overwritten by the agent: {}; the agent owns {}",
        kept.join(", "),
        owned.join(" and ")
    )
}
