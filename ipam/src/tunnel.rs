//! Tunnel addresses: a node's `tunl0` (IPIP) or `vxlan.calico` address comes from a
//! pool that allows the Tunnel use and has that encapsulation on, and is recorded
//! on the node's `Node` resource, where the other nodes' agents read it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use api::datastore::{Datastore, Error as DsError};
use api::resources::{MacAddress, Node, NodeSpec};
use sha1::{Digest, Sha1};

use crate::assign::{Allocator, AssignRequest};
use crate::cas::{ATTEMPTS, read};
use crate::error::{IpamError, Result};
use crate::handles::{addresses_of, tunnel_handle_id};
use crate::pools::{Family, PoolQuery, Purpose, Tunnel, pool_holding};
use crate::release::{Expect, release_handle, release_ip};
use crate::state::Settings;
use crate::table::attr;

/// The tunnel addresses a node records.
pub fn recorded_tunnel_addresses(spec: &NodeSpec) -> Vec<(Tunnel, Family, IpAddr)> {
    let ipip = spec.bgp.as_ref().and_then(|b| b.ipv4_ipip_tunnel_addr);
    [
        ipip.map(|a| (Tunnel::Ipip, Family::V4, IpAddr::V4(a))),
        spec.ipv4_vxlan_tunnel_addr
            .map(|a| (Tunnel::Vxlan, Family::V4, IpAddr::V4(a))),
        spec.ipv6_vxlan_tunnel_addr
            .map(|a| (Tunnel::Vxlan, Family::V6, IpAddr::V6(a))),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The address a node records for `tunnel` in `family`.
fn recorded(spec: &NodeSpec, tunnel: Tunnel, family: Family) -> Option<IpAddr> {
    recorded_tunnel_addresses(spec)
        .into_iter()
        .find(|(t, f, _)| (*t, *f) == (tunnel, family))
        .map(|(_, _, ip)| ip)
}

/// Records (or with `None` clears) the tunnel address on a node's spec.
fn set_recorded(
    spec: &mut NodeSpec,
    node: &str,
    tunnel: Tunnel,
    family: Family,
    ip: Option<IpAddr>,
) -> Result<()> {
    match (tunnel, family, ip) {
        (Tunnel::Ipip, _, ip) => {
            // IPIP pools are IPv4 (pool validation), so no IPv6 address comes here.
            let ip = match ip {
                Some(IpAddr::V4(ip)) => Some(ip),
                _ => None,
            };
            match spec.bgp.as_mut() {
                Some(bgp) => bgp.ipv4_ipip_tunnel_addr = ip,
                None if ip.is_none() => {}
                None => {
                    return Err(IpamError::Node {
                        node: node.to_owned(),
                        problem: "has no spec.bgp address for an IPIP tunnel address: \
                                  the agent writes it at start; start the agent first"
                            .into(),
                    });
                }
            }
        }
        (Tunnel::Vxlan, Family::V4, ip) => {
            spec.ipv4_vxlan_tunnel_addr = ip.and_then(|ip| match ip {
                IpAddr::V4(ip) => Some(ip),
                IpAddr::V6(_) => None,
            });
            spec.vxlan_tunnel_mac_addr = match ip {
                Some(_) => spec.vxlan_tunnel_mac_addr.or(Some(vxlan_mac(node, family))),
                None => None,
            };
        }
        (Tunnel::Vxlan, Family::V6, ip) => {
            spec.ipv6_vxlan_tunnel_addr = ip.and_then(|ip| match ip {
                IpAddr::V6(ip) => Some(ip),
                IpAddr::V4(_) => None,
            });
            spec.vxlan_tunnel_mac_addr_v6 = match ip {
                Some(_) => spec
                    .vxlan_tunnel_mac_addr_v6
                    .or(Some(vxlan_mac(node, family))),
                None => None,
            };
        }
    }
    Ok(())
}

/// A stable, locally administered unicast MAC for a node's VXLAN device.
pub fn vxlan_mac(node: &str, family: Family) -> MacAddress {
    let digest = Sha1::digest(format!("tabby-vxlan-{family}-{node}").as_bytes());
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&digest[..6]);
    mac[0] = (mac[0] & 0xfe) | 0x02;
    MacAddress(mac)
}

impl Allocator {
    /// Makes sure the node has a tunnel address for `tunnel` in `family` when a
    /// pool offers one (and none when none does); returns it. Idempotent: a valid
    /// recorded address is kept.
    pub async fn ensure_tunnel_address(
        &self,
        tunnel: Tunnel,
        family: Family,
    ) -> Result<Option<IpAddr>> {
        let store = &**self.store();
        let node = self.node().to_owned();
        let handle = tunnel_handle_id(tunnel, family, &node);
        let Some(current) = read::<Node>(store, &node).await? else {
            return Err(IpamError::Node {
                node,
                problem: "has no Node resource: the agent writes it at start".into(),
            });
        };
        let settings = Settings::read(store, &node).await?;
        let query = PoolQuery {
            family,
            purpose: Purpose::Tunnel(tunnel),
            node_labels: &settings.node_labels,
            requested: &[],
        };
        let usable = |ip: IpAddr| {
            pool_holding(&settings.pools, &ip.into()).is_some_and(|p| query.check(p).is_ok())
        };
        let held = addresses_of(store, &handle, &node).await?;
        if let Some(ip) = recorded(&current.spec, tunnel, family)
            && usable(ip)
            && held.iter().any(|a| a.ip == ip)
        {
            for extra in held.iter().filter(|a| a.ip != ip) {
                let expect = Expect {
                    handle: Some(handle.clone()),
                    sequence: extra.sequence,
                };
                release_ip(store, extra.ip, &expect).await?;
            }
            return Ok(Some(ip));
        }
        release_handle(store, &handle, None).await?;
        if query.usable(&settings.pools).is_empty() {
            self.record_on_node(tunnel, family, None).await?;
            return Ok(None);
        }
        let mut request = AssignRequest::new(
            handle.clone(),
            usize::from(family == Family::V4),
            usize::from(family == Family::V6),
        );
        request.purpose = Purpose::Tunnel(tunnel);
        let kind = match (tunnel, family) {
            (Tunnel::Ipip, _) => "ipipTunnelAddress",
            (Tunnel::Vxlan, Family::V4) => "vxlanTunnelAddress",
            (Tunnel::Vxlan, Family::V6) => "vxlanV6TunnelAddress",
        };
        request.attrs = BTreeMap::from([
            (attr::NODE.to_owned(), node.clone()),
            (attr::TYPE.to_owned(), kind.to_owned()),
        ]);
        let assigned = self.auto_assign(&request).await?;
        let ip = assigned.addresses.first().map(|a| a.ip);
        if let Err(error) = self.record_on_node(tunnel, family, ip).await {
            release_handle(store, &handle, None).await?;
            return Err(error);
        }
        Ok(ip)
    }

    /// Frees the node's tunnel address and clears it from the Node.
    pub async fn release_tunnel_address(&self, tunnel: Tunnel, family: Family) -> Result<()> {
        let node = self.node().to_owned();
        self.record_on_node(tunnel, family, None).await?;
        release_handle(
            &**self.store(),
            &tunnel_handle_id(tunnel, family, &node),
            None,
        )
        .await?;
        Ok(())
    }

    async fn record_on_node(
        &self,
        tunnel: Tunnel,
        family: Family,
        ip: Option<IpAddr>,
    ) -> Result<()> {
        let store = &**self.store();
        let node = self.node().to_owned();
        for _ in 0..ATTEMPTS {
            let Some(mut current) = read::<Node>(store, &node).await? else {
                return Ok(());
            };
            if recorded(&current.spec, tunnel, family) == ip {
                return Ok(());
            }
            set_recorded(&mut current.spec, &node, tunnel, family, ip)?;
            match store.update(&current).await {
                Ok(_) => return Ok(()),
                Err(DsError::Conflict { .. } | DsError::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(IpamError::Contention {
            what: format!("node {node}"),
            attempts: ATTEMPTS,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipam_vxlan_macs_are_stable_local_unicast_and_per_family() {
        let mac = vxlan_mac("n1", Family::V4);
        assert_eq!(mac, vxlan_mac("n1", Family::V4));
        assert_ne!(mac, vxlan_mac("n1", Family::V6));
        assert_eq!(mac.0[0] & 0x03, 0x02);
    }

    #[test]
    fn ipam_recorded_tunnel_addresses_are_read_and_written_per_kind() {
        let mut spec = NodeSpec::default();
        set_recorded(
            &mut spec,
            "n1",
            Tunnel::Vxlan,
            Family::V4,
            Some("10.0.0.1".parse().unwrap()),
        )
        .unwrap();
        assert_eq!(
            recorded(&spec, Tunnel::Vxlan, Family::V4),
            Some("10.0.0.1".parse().unwrap())
        );
        assert!(spec.vxlan_tunnel_mac_addr.is_some());
        let error = set_recorded(
            &mut spec,
            "n1",
            Tunnel::Ipip,
            Family::V4,
            Some("10.0.0.2".parse().unwrap()),
        )
        .unwrap_err();
        assert!(error.to_string().contains("no spec.bgp address"), "{error}");
        set_recorded(&mut spec, "n1", Tunnel::Vxlan, Family::V4, None).unwrap();
        assert_eq!(spec, NodeSpec::default());
    }
}
