//! Which learned routes may reach the kernel.
//!
//! From cluster peers (iBGP: the mesh, route reflectors) only pool addresses, and,
//! unless switched off, only from the node that owns them per IPAM: the advertiser
//! is the node whose BGP address is the route's next hop (route reflectors keep next
//! hops), and it must own the block (confirmed affinity) or hold the address (a
//! borrowed /32). So a misbehaving node cannot draw another node's pods to itself.
//! From external peers (eBGP: top-of-rack routers) whatever the session's policy
//! let through: those routers are the operator's infrastructure.

use std::net::IpAddr;

use bgp::rib::Path;
use ipnet::IpNet;

use super::cluster::{Cluster, Ipam};

/// A learned route that was not programmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub prefix: IpNet,
    pub next_hop: IpAddr,
    /// The session it came over.
    pub peer: Option<IpAddr>,
    pub refusal: Refusal,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} via {}", self.prefix, self.next_hop)?;
        if let Some(peer) = self.peer {
            write!(f, " from peer {peer}")?;
        }
        write!(f, ": {}", self.refusal)
    }
}

/// Why a learned route was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("outside every IP pool, and cluster (iBGP) peers may announce only pool addresses")]
    OutsidePools,
    #[error("inside pool {pool:?} but neither an IPAM block nor an allocated address")]
    NotInIpam { pool: String },
    #[error(
        "owned by {}, but the next hop is {}",
        owner.as_deref().map_or("no node".to_owned(), |n| format!("node {n:?}")),
        advertiser.as_deref().map_or("not a node's address".to_owned(), |n| format!("node {n:?}"))
    )]
    NotOwner {
        owner: Option<String>,
        advertiser: Option<String>,
    },
}

impl Refusal {
    /// A short, stable label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::OutsidePools => "outside_pools",
            Self::NotInIpam { .. } => "not_in_ipam",
            Self::NotOwner { .. } => "not_owner",
        }
    }
}

/// Checks one learned path to `prefix`.
pub fn check(
    cluster: &Cluster,
    ipam: &Ipam<'_>,
    prefix: IpNet,
    path: &Path,
    check_ownership: bool,
) -> Result<(), Refusal> {
    let internal = path.source.internal;
    let Some(pool) = cluster.pool_of(prefix) else {
        return if internal {
            Err(Refusal::OutsidePools)
        } else {
            Ok(())
        };
    };
    if !internal || !check_ownership {
        return Ok(());
    }
    let advertiser = node_at(cluster, path.next_hop);
    let is_host = prefix.prefix_len() == prefix.max_prefix_len();
    let allocation = ipam.allocation(prefix.addr()).filter(|_| is_host);
    let owner = match (allocation, ipam.block(prefix)) {
        (Some(allocation), _) => allocation.node,
        (None, Some(owner)) => owner,
        (None, None) => {
            return Err(Refusal::NotInIpam {
                pool: pool.metadata.name.clone(),
            });
        }
    };
    match (owner, advertiser) {
        (Some(owner), Some(advertiser)) if owner == advertiser => Ok(()),
        _ => Err(Refusal::NotOwner {
            owner: owner.map(str::to_owned),
            advertiser: advertiser.map(str::to_owned),
        }),
    }
}

/// The node whose BGP address is `address`.
pub fn node_at(cluster: &Cluster, address: IpAddr) -> Option<&str> {
    cluster.nodes.values().find_map(|node| {
        let bgp = node.spec.bgp.as_ref()?;
        [bgp.ipv4_address, bgp.ipv6_address]
            .into_iter()
            .flatten()
            .any(|cidr| cidr.0.addr() == address)
            .then_some(node.metadata.name.as_str())
    })
}

#[cfg(test)]
mod tests {
    use api::resources::{AffinityState, EncapsulationMode};

    use super::*;
    use crate::desired::testing::*;

    /// Pool 10.0.0.0/16; nodes a, b, c; b owns 10.0.1.0/26 where c borrowed .9.
    fn cluster() -> Cluster {
        let mut cluster = Cluster::default();
        add_pool(&mut cluster, "p", "10.0.0.0/16", EncapsulationMode::Never);
        add_node(&mut cluster, "a", "192.0.2.10/24");
        add_node(&mut cluster, "b", "192.0.2.11/24");
        add_node(&mut cluster, "c", "192.0.2.12/24");
        add_block(
            &mut cluster,
            "10.0.1.0/26",
            Some("b"),
            AffinityState::Confirmed,
        );
        allocate(&mut cluster, "10.0.1.9", "c", Some(("default", "web")));
        add_block(
            &mut cluster,
            "10.0.2.0/26",
            Some("c"),
            AffinityState::Pending,
        );
        cluster
    }

    fn run(prefix: &str, path: Path) -> Result<(), Refusal> {
        let cluster = cluster();
        check(&cluster, &Ipam::new(&cluster), net(prefix), &path, true)
    }

    fn mesh(next_hop: &str) -> Path {
        learned(next_hop, next_hop, true)
    }

    #[test]
    fn the_owner_of_a_block_is_believed() {
        assert_eq!(run("10.0.1.0/26", mesh("192.0.2.11")), Ok(()));
    }

    #[test]
    fn a_reflected_route_is_judged_by_its_next_hop_not_the_reflector() {
        assert_eq!(
            run("10.0.1.0/26", learned("192.0.2.200", "192.0.2.11", true)),
            Ok(())
        );
    }

    #[test]
    fn another_node_announcing_the_block_is_a_hijack() {
        assert_eq!(
            run("10.0.1.0/26", mesh("192.0.2.12")),
            Err(Refusal::NotOwner {
                owner: Some("b".into()),
                advertiser: Some("c".into())
            })
        );
    }

    #[test]
    fn a_borrowed_address_belongs_to_the_node_holding_it_not_the_blocks_owner() {
        assert_eq!(run("10.0.1.9/32", mesh("192.0.2.12")), Ok(()));
        assert!(matches!(
            run("10.0.1.9/32", mesh("192.0.2.11")),
            Err(Refusal::NotOwner { .. })
        ));
    }

    #[test]
    fn a_block_whose_affinity_is_unconfirmed_has_no_owner_to_believe() {
        assert_eq!(
            run("10.0.2.0/26", mesh("192.0.2.12")),
            Err(Refusal::NotOwner {
                owner: None,
                advertiser: Some("c".into())
            })
        );
    }

    #[test]
    fn pool_prefixes_that_are_not_blocks_or_addresses_are_refused() {
        for prefix in ["10.0.0.0/16", "10.0.1.0/27", "10.0.9.0/26", "10.0.9.9/32"] {
            assert!(
                matches!(
                    run(prefix, mesh("192.0.2.11")),
                    Err(Refusal::NotInIpam { .. })
                ),
                "{prefix}"
            );
        }
    }

    #[test]
    fn cluster_peers_may_not_announce_outside_the_pools_but_routers_may() {
        assert_eq!(
            run("0.0.0.0/0", mesh("192.0.2.11")),
            Err(Refusal::OutsidePools)
        );
        assert_eq!(
            run("0.0.0.0/0", learned("192.0.2.1", "192.0.2.1", false)),
            Ok(())
        );
    }

    #[test]
    fn external_peers_and_a_disabled_check_are_not_held_to_ownership() {
        assert_eq!(
            run("10.0.1.0/26", learned("192.0.2.1", "192.0.2.1", false)),
            Ok(())
        );
        let cluster = cluster();
        let unchecked = check(
            &cluster,
            &Ipam::new(&cluster),
            net("10.0.1.0/26"),
            &mesh("192.0.2.12"),
            false,
        );
        assert_eq!(unchecked, Ok(()));
    }

    #[test]
    fn refusals_read_as_sentences() {
        let rejection = Rejection {
            prefix: net("10.0.1.0/26"),
            next_hop: ip("192.0.2.99"),
            peer: Some(ip("192.0.2.99")),
            refusal: Refusal::NotOwner {
                owner: Some("b".into()),
                advertiser: None,
            },
        };
        assert_eq!(
            rejection.to_string(),
            "10.0.1.0/26 via 192.0.2.99 from peer 192.0.2.99: owned by node \"b\", but the \
             next hop is not a node's address"
        );
    }
}
