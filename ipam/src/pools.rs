//! Which pools an allocation may use, and which addresses of a block are never
//! handed out.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use api::resources::{AllowedUse, EncapsulationMode, IPPool, IPReservation};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::blocks::ordinal_of;

/// IPv4 pools from /24 to /30 are "tiny": their network and broadcast addresses
/// look like a subnet's to anything on the path and are never handed out. /31 and
/// /32 have neither (RFC 3021); larger pools are routed by block and Calico hands
/// those addresses out, so clusters moving from Calico may hold them.
const TINY_POOL_V4: std::ops::RangeInclusive<u8> = 24..=30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: IpAddr) -> Self {
        if ip.is_ipv4() { Self::V4 } else { Self::V6 }
    }

    pub fn of_net(net: &IpNet) -> Self {
        Self::of(net.addr())
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V4 => "IPv4",
            Self::V6 => "IPv6",
        })
    }
}

/// The encapsulation a tunnel address is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Tunnel {
    Ipip,
    Vxlan,
}

/// What the addresses are for: pools opt in with `allowedUses`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Purpose {
    Workload,
    Tunnel(Tunnel),
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Workload => "workloads",
            Self::Tunnel(Tunnel::Ipip) => "IPIP tunnel addresses",
            Self::Tunnel(Tunnel::Vxlan) => "VXLAN tunnel addresses",
        })
    }
}

/// Why a pool is not used for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unusable {
    OtherFamily,
    NotRequested,
    Disabled,
    /// `allowedUses` (or, for tunnels, the encapsulation mode) excludes the purpose.
    NotFor(Purpose),
    NodeNotSelected,
}

/// A request's view of the pools: family, purpose, the node's labels and the pools
/// it asked for (names or CIDRs; none means any).
#[derive(Debug, Clone, Copy)]
pub struct PoolQuery<'a> {
    pub family: Family,
    pub purpose: Purpose,
    pub node_labels: &'a BTreeMap<String, String>,
    pub requested: &'a [String],
}

impl PoolQuery<'_> {
    pub fn check(&self, pool: &IPPool) -> Result<(), Unusable> {
        let spec = &pool.spec;
        if Family::of_net(&spec.cidr.0) != self.family {
            return Err(Unusable::OtherFamily);
        }
        if !self.requested.is_empty() && self.position(pool).is_none() {
            return Err(Unusable::NotRequested);
        }
        if spec.disabled {
            return Err(Unusable::Disabled);
        }
        let allowed = match self.purpose {
            Purpose::Workload => spec.allowed_uses.contains(&AllowedUse::Workload),
            Purpose::Tunnel(tunnel) => {
                let mode = match tunnel {
                    Tunnel::Ipip => spec.ipip_mode,
                    Tunnel::Vxlan => spec.vxlan_mode,
                };
                spec.allowed_uses.contains(&AllowedUse::Tunnel) && mode != EncapsulationMode::Never
            }
        };
        if !allowed {
            return Err(Unusable::NotFor(self.purpose));
        }
        if !spec.node_selector.matches(self.node_labels) {
            return Err(Unusable::NodeNotSelected);
        }
        Ok(())
    }

    /// The usable pools, in the order requested (else by name).
    pub fn usable<'p>(&self, pools: &'p [IPPool]) -> Vec<&'p IPPool> {
        let mut usable: Vec<&IPPool> = pools.iter().filter(|p| self.check(p).is_ok()).collect();
        usable.sort_by_key(|p| (self.position(p), p.metadata.name.clone()));
        usable
    }

    /// Why nothing is usable, for an error: every pool of the family with its reason.
    pub fn explain(&self, pools: &[IPPool]) -> String {
        let reasons: Vec<String> = pools
            .iter()
            .filter_map(|pool| {
                let why = match self.check(pool) {
                    Ok(()) | Err(Unusable::OtherFamily) => return None,
                    Err(Unusable::NotRequested) => "not among the pools requested".to_owned(),
                    Err(Unusable::Disabled) => "disabled".to_owned(),
                    Err(Unusable::NotFor(purpose)) => format!("not allowed for {purpose}"),
                    Err(Unusable::NodeNotSelected) => {
                        format!(
                            "nodeSelector {} does not select the node",
                            pool.spec.node_selector
                        )
                    }
                };
                Some(format!(
                    "{} ({}) is {why}",
                    pool.metadata.name, pool.spec.cidr
                ))
            })
            .collect();
        if reasons.is_empty() {
            format!("there is no {} pool", self.family)
        } else {
            reasons.join("; ")
        }
    }

    fn position(&self, pool: &IPPool) -> Option<usize> {
        self.requested
            .iter()
            .position(|r| *r == pool.metadata.name || *r == pool.spec.cidr.to_string())
    }
}

/// The pool holding `net` (a block or a single address).
pub fn pool_holding<'p>(pools: &'p [IPPool], net: &IpNet) -> Option<&'p IPPool> {
    pools.iter().find(|p| p.spec.cidr.0.contains(net))
}

/// Per ordinal of a block: never handed out (reserved, or a tiny pool's edges).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserved(Vec<bool>);

impl Reserved {
    pub fn for_block(block: IpNet, pool: Option<&IPPool>, reservations: &[IPReservation]) -> Self {
        let size = 1usize << (block.max_prefix_len() - block.prefix_len()).min(16);
        let mut reserved = vec![false; size];
        let mut mark = |range: IpNet| {
            if range.contains(&block) {
                reserved.fill(true);
            } else if block.contains(&range) {
                let first = ordinal_of(block, range.network()).unwrap_or(size);
                let last = ordinal_of(block, range.broadcast()).unwrap_or(0);
                for slot in reserved.iter_mut().take(last + 1).skip(first) {
                    *slot = true;
                }
            }
        };
        for cidr in reservations.iter().flat_map(|r| &r.spec.reserved_cidrs) {
            mark(cidr.0);
        }
        if let Some(pool) = pool.map(|p| p.spec.cidr.0)
            && pool.addr().is_ipv4()
            && TINY_POOL_V4.contains(&pool.prefix_len())
        {
            for edge in [pool.network(), pool.broadcast()] {
                mark(IpNet::from(edge));
            }
        }
        Self(reserved)
    }

    pub fn contains(&self, ordinal: usize) -> bool {
        self.0.get(ordinal).copied().unwrap_or(false)
    }

    /// The reservation holding `ip`, for an error.
    pub fn reservation_of(reservations: &[IPReservation], ip: IpAddr) -> Option<&IPReservation> {
        reservations
            .iter()
            .find(|r| r.spec.reserved_cidrs.iter().any(|c| c.0.contains(&ip)))
    }
}

/// True when `ip` is the network or broadcast address of a tiny pool.
pub fn is_tiny_pool_edge(pool: &IPPool, ip: IpAddr) -> bool {
    let net = pool.spec.cidr.0;
    net.addr().is_ipv4()
        && TINY_POOL_V4.contains(&net.prefix_len())
        && (ip == net.network() || ip == net.broadcast())
}

#[cfg(test)]
mod tests {
    use api::resources::{Cidr, IPPoolSpec, IPReservationSpec};

    use super::*;

    fn pool(name: &str, cidr: &str, edit: impl FnOnce(&mut IPPoolSpec)) -> IPPool {
        let mut spec = IPPoolSpec::new(cidr.parse().unwrap());
        edit(&mut spec);
        IPPool::new(name, spec)
    }

    fn reservation(cidrs: &[&str]) -> IPReservation {
        IPReservation::new(
            "r",
            IPReservationSpec {
                reserved_cidrs: cidrs.iter().map(|c| c.parse::<Cidr>().unwrap()).collect(),
            },
        )
    }

    fn query<'a>(labels: &'a BTreeMap<String, String>, requested: &'a [String]) -> PoolQuery<'a> {
        PoolQuery {
            family: Family::V4,
            purpose: Purpose::Workload,
            node_labels: labels,
            requested,
        }
    }

    #[test]
    fn ipam_pools_are_usable_only_when_enabled_selected_and_allowed() {
        let pools = [
            pool("b", "10.1.0.0/16", |_| {}),
            pool("a", "10.0.0.0/16", |_| {}),
            pool("off", "10.2.0.0/16", |p| p.disabled = true),
            pool("tun", "10.3.0.0/16", |p| {
                p.allowed_uses = vec![AllowedUse::Tunnel]
            }),
            pool("east", "10.4.0.0/16", |p| {
                p.node_selector = "zone == 'east'".parse().unwrap()
            }),
            pool("v6", "fd00::/64", |_| {}),
        ];
        let labels = BTreeMap::new();
        let names = |q: PoolQuery<'_>| -> Vec<String> {
            q.usable(&pools)
                .iter()
                .map(|p| p.metadata.name.clone())
                .collect()
        };
        assert_eq!(names(query(&labels, &[])), ["a", "b"]);
        let requested = ["10.1.0.0/16".to_owned(), "a".to_owned()];
        assert_eq!(names(query(&labels, &requested)), ["b", "a"]);
        let east = BTreeMap::from([("zone".to_owned(), "east".to_owned())]);
        assert_eq!(names(query(&east, &[])), ["a", "b", "east"]);
        let only_off = ["off".to_owned(), "tun".to_owned(), "east".to_owned()];
        assert_eq!(
            query(&labels, &only_off).explain(&pools),
            "b (10.1.0.0/16) is not among the pools requested; \
             a (10.0.0.0/16) is not among the pools requested; \
             off (10.2.0.0/16) is disabled; \
             tun (10.3.0.0/16) is not allowed for workloads; \
             east (10.4.0.0/16) is nodeSelector zone == \"east\" does not select the node"
        );
    }

    #[test]
    fn ipam_tunnel_pools_need_the_encapsulation_enabled() {
        let ipip = pool("ipip", "10.0.0.0/16", |p| {
            p.ipip_mode = EncapsulationMode::Always
        });
        let plain = pool("plain", "10.1.0.0/16", |_| {});
        let labels = BTreeMap::new();
        let q = PoolQuery {
            family: Family::V4,
            purpose: Purpose::Tunnel(Tunnel::Ipip),
            node_labels: &labels,
            requested: &[],
        };
        assert_eq!(q.check(&ipip), Ok(()));
        assert_eq!(
            q.check(&plain),
            Err(Unusable::NotFor(Purpose::Tunnel(Tunnel::Ipip)))
        );
    }

    #[test]
    fn ipam_reservations_and_tiny_pool_edges_are_reserved_ordinals() {
        let tiny = pool("tiny", "10.0.0.0/28", |p| p.block_size = Some(29));
        let first = Reserved::for_block("10.0.0.0/29".parse().unwrap(), Some(&tiny), &[]);
        let last = Reserved::for_block("10.0.0.8/29".parse().unwrap(), Some(&tiny), &[]);
        assert!(first.contains(0) && !first.contains(7));
        assert!(last.contains(7) && !last.contains(0));

        let big = pool("big", "10.0.0.0/16", |_| {});
        let block = "10.0.0.0/26".parse().unwrap();
        assert_eq!(
            Reserved::for_block(block, Some(&big), &[]),
            Reserved(vec![false; 64])
        );
        let reserved = Reserved::for_block(block, Some(&big), &[reservation(&["10.0.0.4/30"])]);
        let marked: Vec<usize> = (0..64).filter(|o| reserved.contains(*o)).collect();
        assert_eq!(marked, [4, 5, 6, 7]);
        let whole = Reserved::for_block(block, Some(&big), &[reservation(&["10.0.0.0/24"])]);
        assert!((0..64).all(|o| whole.contains(o)));
        assert!(is_tiny_pool_edge(&tiny, "10.0.0.15".parse().unwrap()));
        assert!(!is_tiny_pool_edge(&big, "10.0.0.0".parse().unwrap()));
    }
}
