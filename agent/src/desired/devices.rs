//! The tunnel devices and MTUs: `tunl0` while an IPv4 pool uses IPIP, `vxlan.tabby`
//! while one uses VXLAN (and this node has its VTEP in the datastore), each with the
//! node's tunnel address; pods' MTU small enough for the encapsulation in use.

use api::resources::{EncapsulationMode, IPPoolSpec};
use ipnet::{IpNet, Ipv4Net};

use super::cluster::Cluster;
use super::{Desired, NodeSettings};
use crate::dataplane::{IPIP_DEVICE, IpipDevice, Mac, VXLAN_DEVICE, VxlanDevice};

/// IPv4 header of IPIP (RFC 2003).
const IPIP_OVERHEAD: u32 = 20;
/// Outer IPv4, UDP, VXLAN and inner Ethernet headers (RFC 7348).
const VXLAN_OVERHEAD: u32 = 50;

/// What the remote routes need to know about this node's tunnels.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Tunnels {
    /// `tunl0` is wanted.
    pub ipip: bool,
    /// `vxlan.tabby` is wanted (this node has its VTEP).
    pub vxlan: bool,
    /// This node's IPv4 underlay address with its subnet, for CrossSubnet.
    pub underlay: Option<Ipv4Net>,
}

impl Tunnels {
    /// Whether `next_hop` is on this node's own subnet (no router in between).
    pub fn same_subnet(&self, next_hop: std::net::IpAddr) -> bool {
        match (self.underlay, next_hop) {
            (Some(subnet), std::net::IpAddr::V4(v4)) => subnet.contains(&v4),
            _ => false,
        }
    }
}

/// Fills in the devices, tunnel addresses and pod MTU; returns what routes need.
pub(super) fn tunnels(
    cluster: &Cluster,
    settings: &NodeSettings,
    desired: &mut Desired,
) -> Tunnels {
    let uses = |mode: fn(&IPPoolSpec) -> EncapsulationMode| {
        cluster
            .pools
            .values()
            .any(|p| p.spec.cidr.is_ipv4() && mode(&p.spec) != EncapsulationMode::Never)
    };
    let (ipip, vxlan) = (uses(|p| p.ipip_mode), uses(|p| p.vxlan_mode));
    let underlay_mtu = |overhead: u32| {
        settings
            .mtu
            .unwrap_or(settings.underlay_mtu.saturating_sub(overhead))
    };
    desired.pod_mtu = [
        (true, underlay_mtu(0)),
        (ipip, underlay_mtu(IPIP_OVERHEAD)),
        (vxlan, underlay_mtu(VXLAN_OVERHEAD)),
    ]
    .into_iter()
    .filter_map(|(used, mtu)| used.then_some(mtu))
    .min()
    .unwrap_or(settings.underlay_mtu);

    let Some(me) = cluster.nodes.get(&settings.name) else {
        desired.problems.push(format!(
            "node {:?} has no Node resource: no tunnels, no routes to other nodes",
            settings.name
        ));
        return Tunnels::default();
    };
    let underlay = me
        .spec
        .bgp
        .as_ref()
        .and_then(|bgp| bgp.ipv4_address)
        .and_then(|cidr| match cidr.0 {
            IpNet::V4(v4) => Some(v4),
            IpNet::V6(_) => None,
        });
    let dataplane = &mut desired.dataplane;
    if ipip {
        dataplane.ipip = Some(IpipDevice {
            mtu: underlay_mtu(IPIP_OVERHEAD),
        });
        match me.spec.bgp.as_ref().and_then(|b| b.ipv4_ipip_tunnel_addr) {
            Some(address) => {
                dataplane
                    .tunnel_addresses
                    .insert(IPIP_DEVICE.to_owned(), address.into());
            }
            None => desired
                .problems
                .push("an IP pool uses IPIP but this node has no IPIP tunnel address yet".into()),
        }
    }
    let mut vxlan_ready = false;
    if vxlan {
        match (
            me.spec.ipv4_vxlan_tunnel_addr,
            me.spec.vxlan_tunnel_mac_addr,
            underlay,
        ) {
            (Some(address), Some(mac), Some(local)) => {
                dataplane.vxlan = Some(VxlanDevice::new(
                    local.addr().into(),
                    Mac(mac.0),
                    underlay_mtu(VXLAN_OVERHEAD),
                ));
                dataplane
                    .tunnel_addresses
                    .insert(VXLAN_DEVICE.to_owned(), address.into());
                vxlan_ready = true;
            }
            _ => desired.problems.push(
                "an IP pool uses VXLAN but this node has no IPv4 BGP address, VXLAN tunnel \
                 address and MAC yet: no VXLAN routes"
                    .into(),
            ),
        }
    }
    Tunnels {
        ipip,
        vxlan: vxlan_ready,
        underlay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::testing::*;

    fn run(cluster: &Cluster, settings: &NodeSettings) -> (Desired, Tunnels) {
        let mut desired = Desired::default();
        let tunnels = tunnels(cluster, settings, &mut desired);
        (desired, tunnels)
    }

    fn base() -> Cluster {
        let mut cluster = Cluster::default();
        add_node(&mut cluster, "a", "192.0.2.10/24");
        cluster
    }

    #[test]
    fn without_encapsulation_there_are_no_tunnels_and_pods_get_the_underlay_mtu() {
        let mut cluster = base();
        add_pool(&mut cluster, "p", "10.0.0.0/16", EncapsulationMode::Never);
        let (desired, tunnels) = run(&cluster, &settings());
        assert_eq!(desired.dataplane.ipip, None);
        assert_eq!(desired.dataplane.vxlan, None);
        assert_eq!(desired.pod_mtu, 1500);
        assert!(!tunnels.ipip && !tunnels.vxlan);
    }

    #[test]
    fn an_ipip_pool_brings_tunl0_with_the_tunnel_address_and_20_bytes_off_the_mtu() {
        let mut cluster = base();
        add_pool(
            &mut cluster,
            "p",
            "10.0.0.0/16",
            EncapsulationMode::CrossSubnet,
        );
        node_mut(&mut cluster, "a")
            .bgp
            .as_mut()
            .unwrap()
            .ipv4_ipip_tunnel_addr = Some("10.0.0.1".parse().unwrap());
        let (desired, tunnels) = run(&cluster, &settings());
        assert_eq!(desired.dataplane.ipip, Some(IpipDevice { mtu: 1480 }));
        assert_eq!(
            desired.dataplane.tunnel_addresses.get(IPIP_DEVICE),
            Some(&ip("10.0.0.1"))
        );
        assert_eq!(desired.pod_mtu, 1480);
        assert!(tunnels.ipip);
        assert!(desired.problems.is_empty(), "{:?}", desired.problems);
    }

    #[test]
    fn a_vxlan_pool_brings_vxlan_tabby_once_the_node_has_its_vtep() {
        let mut cluster = base();
        add_pool(&mut cluster, "p", "10.0.0.0/16", EncapsulationMode::Never);
        pool_mut(&mut cluster, "p").vxlan_mode = EncapsulationMode::Always;
        let (waiting, tunnels) = run(&cluster, &settings());
        assert_eq!(waiting.dataplane.vxlan, None);
        assert!(!tunnels.vxlan);
        assert_eq!(waiting.problems.len(), 1, "{:?}", waiting.problems);

        vxlan_tunnel(&mut cluster, "a", "10.0.0.2", 1);
        let (desired, tunnels) = run(&cluster, &settings());
        assert_eq!(
            desired.dataplane.vxlan,
            Some(VxlanDevice::new(
                ip("192.0.2.10"),
                Mac([0x66, 0, 0, 0, 0, 1]),
                1450
            ))
        );
        assert_eq!(
            desired.dataplane.tunnel_addresses.get(VXLAN_DEVICE),
            Some(&ip("10.0.0.2"))
        );
        assert_eq!(desired.pod_mtu, 1450);
        assert!(tunnels.vxlan);
    }

    #[test]
    fn a_configured_mtu_wins_for_tunnels_and_pods() {
        let mut cluster = base();
        add_pool(&mut cluster, "p", "10.0.0.0/16", EncapsulationMode::Always);
        let settings = NodeSettings {
            mtu: Some(8980),
            underlay_mtu: 9000,
            ..settings()
        };
        let (desired, _) = run(&cluster, &settings);
        assert_eq!(desired.dataplane.ipip, Some(IpipDevice { mtu: 8980 }));
        assert_eq!(desired.pod_mtu, 8980);
    }

    #[test]
    fn crosssubnet_compares_next_hops_with_the_nodes_own_subnet() {
        let mut cluster = base();
        add_pool(
            &mut cluster,
            "p",
            "10.0.0.0/16",
            EncapsulationMode::CrossSubnet,
        );
        let (_, tunnels) = run(&cluster, &settings());
        assert!(tunnels.same_subnet(ip("192.0.2.99")));
        assert!(!tunnels.same_subnet(ip("198.51.100.10")));
        assert!(!tunnels.same_subnet(ip("fd00::1")));
    }

    #[test]
    fn a_node_without_its_resource_is_a_problem_not_a_panic() {
        let (desired, tunnels) = run(&Cluster::default(), &settings());
        assert!(!tunnels.ipip);
        assert!(desired.problems[0].contains("no Node resource"));
    }
}
