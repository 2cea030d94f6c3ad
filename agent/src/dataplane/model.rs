//! What tabby wants in the kernel, in tabby's own terms.
//!
//! Devices are named, not indexed: the agent computes desired state without asking
//! the kernel, and indices change when a device is recreated. The netlink layer
//! resolves names when it builds messages and maps indices back when it reads.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::veth::WORKLOAD_PREFIX;

/// The route protocol number on every route tabby programs (`ip route ... proto 84`).
///
/// 84 is ASCII `T`. It is free in iproute2's `rt_protos` (0-18, 42, 99, 186-192) and
/// FRR's `rt_protos.d/frr.conf` (186-197), is not BIRD's 12, and is not Calico
/// Felix's 80, so tabby can run beside (or replace) any of them without mistaking
/// their routes for its own, and an operator can list tabby's routes with
/// `ip route show proto 84`.
pub const TABBY_PROTOCOL: u8 = 84;

/// The VXLAN device tabby creates when a pool uses VXLAN.
pub const VXLAN_DEVICE: &str = "vxlan.tabby";
/// The kernel's fallback IPIP device, which appears when the `ipip` module loads.
pub const IPIP_DEVICE: &str = "tunl0";
/// Calico's VNI, so a mixed cluster during migration shares one overlay.
pub const VXLAN_VNI: u32 = 4096;
/// The IANA VXLAN port (RFC 7348), not Linux's historical default 8472.
pub const VXLAN_PORT: u16 = 4789;

/// The kernel's limit on interface names (IFNAMSIZ minus the NUL).
const MAX_IFNAME: usize = 15;

/// Invalid desired state; each variant names the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("route {dst}: workload device {device:?} does not start with {WORKLOAD_PREFIX:?}")]
    NotAWorkloadDevice { dst: IpNet, device: String },
    #[error("route {dst}: a workload route must be a /32 or /128")]
    WorkloadNotAHost { dst: IpNet },
    #[error(
        "route {dst}: next hop {gateway} is IPv4 for an IPv6 destination (only IPv4 over an \
         IPv6 next hop is routed, RFC 8950)"
    )]
    FamilyMismatch { dst: IpNet, gateway: IpAddr },
    #[error("route {dst}: device name {device:?} is empty or longer than 15 bytes")]
    BadDeviceName { dst: IpNet, device: String },
    #[error("route {dst}: an onlink next hop {gateway} needs a device")]
    OnlinkWithoutDevice { dst: IpNet, gateway: IpAddr },
    #[error("route {dst}: a multipath route needs next hops")]
    NoNextHops { dst: IpNet },
}

/// A link-layer (MAC) address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// One next hop of a gateway route.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NextHop {
    pub gateway: IpAddr,
    /// `None` lets the kernel pick the device from its routes (no-encap `via`).
    pub device: Option<String>,
    /// `onlink`: the gateway is reachable on `device` without a covering route
    /// (IPIP `dev tunl0 onlink`, VXLAN `dev vxlan.tabby onlink`).
    pub onlink: bool,
}

impl NextHop {
    /// `via gateway`, device chosen by the kernel.
    pub fn via(gateway: IpAddr) -> Self {
        Self {
            gateway,
            device: None,
            onlink: false,
        }
    }

    /// `via gateway dev device onlink`.
    pub fn onlink(gateway: IpAddr, device: &str) -> Self {
        Self {
            gateway,
            device: Some(device.to_owned()),
            onlink: true,
        }
    }

    /// Whether the kernel's next hop `actual` is what `self` asks for. A next hop
    /// requested without a device accepts whichever device the kernel resolved.
    pub fn is_satisfied_by(&self, actual: &NextHop) -> bool {
        self.gateway == actual.gateway
            && self.onlink == actual.onlink
            && (self.device.is_none() || self.device == actual.device)
    }
}

/// Where packets for a destination go.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RouteTarget {
    /// A local workload: `dev caliXXXX scope link`.
    Workload { device: String },
    /// `blackhole`: a block this node owns, so unassigned addresses go nowhere.
    Blackhole,
    /// One next hop.
    Gateway(NextHop),
    /// ECMP over two or more next hops, kept sorted so equal sets compare equal.
    Multipath(Vec<NextHop>),
}

impl RouteTarget {
    /// Every [`RouteTarget::kind`], for metrics that show each from the start.
    pub const KINDS: [&'static str; 4] = ["workload", "blackhole", "gateway", "multipath"];

    /// What the route is, in one word.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Workload { .. } => "workload",
            Self::Blackhole => "blackhole",
            Self::Gateway(_) => "gateway",
            Self::Multipath(_) => "multipath",
        }
    }

    /// Whether the kernel's `actual` target is what `self` asks for.
    pub fn is_satisfied_by(&self, actual: &RouteTarget) -> bool {
        match (self, actual) {
            (Self::Gateway(want), Self::Gateway(got)) => want.is_satisfied_by(got),
            // Order-insensitive: the kernel keeps hops in request order, and a
            // target built by hand need not be sorted.
            (Self::Multipath(want), Self::Multipath(got)) => {
                want.len() == got.len()
                    && want
                        .iter()
                        .all(|w| got.iter().any(|g| w.is_satisfied_by(g)))
            }
            _ => self == actual,
        }
    }

    /// Whether this is a route via a gateway (one or several), as BGP learns them.
    pub fn is_gateway(&self) -> bool {
        matches!(self, Self::Gateway(_) | Self::Multipath(_))
    }

    /// Whether packets leave through `device` (by name).
    pub fn uses_device(&self, device: &str) -> bool {
        let named = |hop: &NextHop| hop.device.as_deref() == Some(device);
        match self {
            Self::Workload { device: own } => own == device,
            Self::Blackhole => false,
            Self::Gateway(hop) => named(hop),
            Self::Multipath(hops) => hops.iter().any(named),
        }
    }
}

/// A route in the main table carrying [`TABBY_PROTOCOL`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Route {
    pub dst: IpNet,
    pub target: RouteTarget,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.target == RouteTarget::Blackhole {
            return write!(f, "blackhole {}", self.dst);
        }
        write!(f, "{}", self.dst)?;
        let hop = |f: &mut fmt::Formatter<'_>, hop: &NextHop| {
            write!(f, " via {}", hop.gateway)?;
            if let Some(device) = &hop.device {
                write!(f, " dev {device}")?;
            }
            if hop.onlink {
                write!(f, " onlink")?;
            }
            Ok(())
        };
        match &self.target {
            RouteTarget::Workload { device } => write!(f, " dev {device} scope link"),
            RouteTarget::Blackhole => Ok(()),
            RouteTarget::Gateway(next) => hop(f, next),
            RouteTarget::Multipath(hops) => hops.iter().try_for_each(|next| {
                write!(f, " nexthop")?;
                hop(f, next)
            }),
        }
    }
}

impl Route {
    /// `dst dev device scope link` for a local workload on its `cali*` interface.
    pub fn workload(dst: IpNet, device: &str) -> Result<Self, ModelError> {
        let dst = dst.trunc();
        check_device(dst, device)?;
        if !device.starts_with(WORKLOAD_PREFIX) {
            return Err(ModelError::NotAWorkloadDevice {
                dst,
                device: device.to_owned(),
            });
        }
        if dst.prefix_len() != dst.max_prefix_len() {
            return Err(ModelError::WorkloadNotAHost { dst });
        }
        Ok(Self {
            dst,
            target: RouteTarget::Workload {
                device: device.to_owned(),
            },
        })
    }

    /// `blackhole dst` for a block this node owns.
    pub fn blackhole(dst: IpNet) -> Self {
        Self {
            dst: dst.trunc(),
            target: RouteTarget::Blackhole,
        }
    }

    /// `dst via ...` with one or more next hops; several make an ECMP route.
    pub fn via(dst: IpNet, hops: impl IntoIterator<Item = NextHop>) -> Result<Self, ModelError> {
        let dst = dst.trunc();
        let mut hops: Vec<NextHop> = hops.into_iter().collect();
        for hop in &hops {
            // IPv4 through an IPv6 next hop is what RFC 8950 sessions carry and the
            // kernel routes (RTA_VIA); the other way round has no such standard.
            if hop.gateway.is_ipv4() && dst.addr().is_ipv6() {
                return Err(ModelError::FamilyMismatch {
                    dst,
                    gateway: hop.gateway,
                });
            }
            match &hop.device {
                Some(device) => check_device(dst, device)?,
                None if hop.onlink => {
                    return Err(ModelError::OnlinkWithoutDevice {
                        dst,
                        gateway: hop.gateway,
                    });
                }
                None => {}
            }
        }
        hops.sort();
        hops.dedup();
        let target = match hops.len() {
            0 => return Err(ModelError::NoNextHops { dst }),
            1 => RouteTarget::Gateway(hops.remove(0)),
            _ => RouteTarget::Multipath(hops),
        };
        Ok(Self { dst, target })
    }
}

fn check_device(dst: IpNet, device: &str) -> Result<(), ModelError> {
    if device.is_empty() || device.len() > MAX_IFNAME {
        return Err(ModelError::BadDeviceName {
            dst,
            device: device.to_owned(),
        });
    }
    Ok(())
}

/// The VXLAN device `vxlan.tabby`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VxlanDevice {
    pub vni: u32,
    pub port: u16,
    /// This node's underlay address, the outer source of encapsulated packets.
    pub local: IpAddr,
    /// The device's own MAC: other nodes learn it from the datastore, so it must not
    /// change when the device is recreated.
    pub mac: Mac,
    pub mtu: u32,
}

impl VxlanDevice {
    /// tabby's VXLAN device with the standard VNI and port.
    pub fn new(local: IpAddr, mac: Mac, mtu: u32) -> Self {
        Self {
            vni: VXLAN_VNI,
            port: VXLAN_PORT,
            local,
            mac,
            mtu,
        }
    }
}

/// `tunl0` as tabby wants it: up, with this MTU. The device is the kernel's: tabby
/// asks for it to exist (loading the module) but never deletes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpipDevice {
    pub mtu: u32,
}

/// A remote node's VXLAN endpoint: a permanent neighbour entry (its tunnel address
/// to its device MAC) and a permanent FDB entry (that MAC to its underlay address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vtep {
    pub tunnel_address: IpAddr,
    pub mac: Mac,
    pub underlay: IpAddr,
}

/// Everything tabby wants in the kernel: one route per destination prefix, the tunnel
/// devices (when a pool uses them), their addresses and the remote VTEPs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DesiredState {
    pub routes: BTreeMap<IpNet, RouteTarget>,
    pub vxlan: Option<VxlanDevice>,
    pub vteps: Vec<Vtep>,
    /// `tunl0`, when a pool uses IPIP; `None` leaves it alone.
    pub ipip: Option<IpipDevice>,
    /// The node's tunnel address (a /32 or /128) on each tunnel device tabby
    /// manages. Every other address on `vxlan.tabby`, and on `tunl0` while IPIP is
    /// wanted, is removed: those addresses are tabby's to set.
    pub tunnel_addresses: BTreeMap<String, IpAddr>,
    /// Keep the gateway routes already in the kernel as they are (add missing ones,
    /// replace and delete none): set while BGP re-learns its routes after a restart,
    /// so that a restart changes nothing that was right.
    pub preserve_gateways: bool,
}

impl DesiredState {
    /// Adds `route`, replacing any earlier route to the same destination.
    pub fn insert_route(&mut self, route: Route) {
        self.routes.insert(route.dst, route.target);
    }

    /// Neighbour entries on `vxlan.tabby`: tunnel address to MAC.
    pub fn neighbours(&self) -> BTreeMap<IpAddr, Mac> {
        self.vteps
            .iter()
            .map(|v| (v.tunnel_address, v.mac))
            .collect()
    }

    /// FDB entries on `vxlan.tabby`: MAC to underlay address.
    pub fn fdb(&self) -> BTreeMap<Mac, IpAddr> {
        self.vteps.iter().map(|v| (v.mac, v.underlay)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::parse::{ip, net};

    #[test]
    fn workload_routes_need_a_cali_device_and_a_host_prefix() {
        assert!(Route::workload(net("10.0.0.1/32"), "cali12345").is_ok());
        assert!(Route::workload(net("fd00::1/128"), "cali12345").is_ok());
        assert_eq!(
            Route::workload(net("10.0.0.1/32"), "eth0"),
            Err(ModelError::NotAWorkloadDevice {
                dst: net("10.0.0.1/32"),
                device: "eth0".into()
            })
        );
        assert_eq!(
            Route::workload(net("10.0.0.0/26"), "cali1"),
            Err(ModelError::WorkloadNotAHost {
                dst: net("10.0.0.0/26")
            })
        );
    }

    #[test]
    fn device_names_longer_than_the_kernel_allows_are_rejected() {
        let err = Route::workload(net("10.0.0.1/32"), "cali0123456789ab").unwrap_err();
        assert!(matches!(err, ModelError::BadDeviceName { .. }), "{err}");
    }

    #[test]
    fn destinations_with_host_bits_are_truncated_to_the_prefix() {
        assert_eq!(Route::blackhole(net("10.1.2.3/26")).dst, net("10.1.2.0/26"));
    }

    #[test]
    fn an_ipv4_destination_takes_an_ipv6_next_hop_but_not_the_other_way_round() {
        // RFC 8950: IPv4 routes over IPv6 next hops.
        let v4 = Route::via(net("10.0.0.0/26"), [NextHop::via(ip("fd00::1"))]).unwrap();
        assert_eq!(v4.target, RouteTarget::Gateway(NextHop::via(ip("fd00::1"))));
        let err = Route::via(net("fd00:1::/122"), [NextHop::via(ip("10.0.0.1"))]).unwrap_err();
        assert_eq!(
            err,
            ModelError::FamilyMismatch {
                dst: net("fd00:1::/122"),
                gateway: ip("10.0.0.1")
            }
        );
    }

    #[test]
    fn one_next_hop_is_a_gateway_route_and_several_are_sorted_ecmp() {
        let single = Route::via(net("10.0.0.0/26"), [NextHop::via(ip("192.0.2.1"))]).unwrap();
        assert_eq!(
            single.target,
            RouteTarget::Gateway(NextHop::via(ip("192.0.2.1")))
        );
        let ecmp = Route::via(
            net("10.0.0.0/26"),
            [
                NextHop::via(ip("192.0.2.9")),
                NextHop::via(ip("192.0.2.1")),
                NextHop::via(ip("192.0.2.9")),
            ],
        )
        .unwrap();
        assert_eq!(
            ecmp.target,
            RouteTarget::Multipath(vec![
                NextHop::via(ip("192.0.2.1")),
                NextHop::via(ip("192.0.2.9"))
            ])
        );
        assert_eq!(
            Route::via(net("10.0.0.0/26"), []),
            Err(ModelError::NoNextHops {
                dst: net("10.0.0.0/26")
            })
        );
    }

    #[test]
    fn routes_print_like_ip_route() {
        let route = Route::via(
            net("10.0.0.0/26"),
            [NextHop::onlink(ip("192.0.2.1"), "tunl0")],
        )
        .unwrap();
        assert_eq!(
            route.to_string(),
            "10.0.0.0/26 via 192.0.2.1 dev tunl0 onlink"
        );
        assert_eq!(
            Route::blackhole(net("10.0.0.0/26")).to_string(),
            "blackhole 10.0.0.0/26"
        );
        assert_eq!(
            Mac([0x66, 0, 0xa, 0xbc, 1, 2]).to_string(),
            "66:00:0a:bc:01:02"
        );
    }

    #[test]
    fn ecmp_next_hops_match_in_any_order() {
        let (a, b) = (NextHop::via(ip("192.0.2.1")), NextHop::via(ip("192.0.2.2")));
        let want = RouteTarget::Multipath(vec![b.clone(), a.clone()]);
        assert!(want.is_satisfied_by(&RouteTarget::Multipath(vec![a.clone(), b])));
        assert!(!want.is_satisfied_by(&RouteTarget::Multipath(vec![a.clone(), a])));
    }

    #[test]
    fn a_next_hop_without_a_device_accepts_the_kernels_choice() {
        let want = NextHop::via(ip("192.0.2.1"));
        let got = NextHop {
            device: Some("eth0".into()),
            ..want.clone()
        };
        assert!(want.is_satisfied_by(&got));
        assert!(!got.is_satisfied_by(&NextHop {
            device: Some("eth1".into()),
            ..want
        }));
    }
}
