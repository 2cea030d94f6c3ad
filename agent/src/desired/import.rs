//! Which learned routes may reach the kernel.
//!
//! From cluster peers (iBGP: the mesh, route reflectors) only pool addresses, and,
//! unless switched off, only from the node that owns them per IPAM: the advertiser
//! is the node whose BGP address is the route's next hop (route reflectors keep next
//! hops), and it must own the block (confirmed affinity) or hold the address (a
//! borrowed /32). So a misbehaving node cannot draw another node's pods to itself.
//! From external peers (eBGP: top-of-rack routers) whatever the session's policy
//! let through: those routers are the operator's infrastructure. A router in the
//! node's own AS (Calico's AS-per-rack design: iBGP to the rack's ToR, next hop
//! self) is judged as a cluster peer, and no node is at its next hop: such a
//! cluster runs with `--import-ownership-check=false`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use bgp::rib::Path;
use ipnet::IpNet;

use super::cluster::{Cluster, Ipam};

/// A learned route that was not programmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub prefix: IpNet,
    /// Unknown when the speaker's import hook refused it.
    pub next_hop: Option<IpAddr>,
    /// The session it came over.
    pub peer: Option<IpAddr>,
    pub refusal: Refusal,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.prefix)?;
        if let Some(next_hop) = self.next_hop {
            write!(f, " via {next_hop}")?;
        }
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
        "owned by {}, but announced by {}",
        owner.as_deref().map_or("no node".to_owned(), |n| format!("node {n:?}")),
        advertiser.as_deref().map_or("an address that is no node's".to_owned(), |n| format!("node {n:?}"))
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

/// What the import checks need of the datastore, owned, so the speaker's import
/// hook can hold a copy while the agent's loop builds the next one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owners {
    /// Pool CIDRs and names.
    pools: Vec<(IpNet, String)>,
    /// Every block, with its owner (confirmed on both sides).
    blocks: BTreeMap<IpNet, Option<String>>,
    /// Every allocated address, with the node holding it.
    holders: BTreeMap<IpAddr, Option<String>>,
    /// Nodes by BGP address (also their router id, which is their IPv4 address).
    nodes: BTreeMap<IpAddr, String>,
    check_ownership: bool,
}

impl Owners {
    pub fn new(cluster: &Cluster, ipam: &Ipam<'_>, check_ownership: bool) -> Self {
        let owned = |node: Option<&str>| node.map(str::to_owned);
        Self {
            pools: cluster
                .pools
                .values()
                .map(|p| (p.spec.cidr.0.trunc(), p.metadata.name.clone()))
                .collect(),
            blocks: ipam
                .blocks()
                .map(|(cidr, owner)| (cidr, owned(owner)))
                .collect(),
            holders: ipam
                .allocations()
                .map(|a| (a.address, owned(a.node)))
                .collect(),
            nodes: cluster
                .nodes
                .values()
                .flat_map(|node| {
                    let bgp = node.spec.bgp.iter();
                    bgp.flat_map(|b| [b.ipv4_address, b.ipv6_address])
                        .flatten()
                        .map(|cidr| (cidr.0.addr(), node.metadata.name.clone()))
                })
                .collect(),
            check_ownership,
        }
    }

    /// The desired state's check of a learned path: the advertiser is the node at
    /// its next hop, and a pool prefix IPAM does not know is refused.
    pub fn check(&self, prefix: IpNet, path: &Path) -> Result<(), Refusal> {
        match self.judge(prefix, path.source.internal, self.nodes.get(&path.next_hop))? {
            Judgement::Unknown { pool } => Err(Refusal::NotInIpam { pool }),
            Judgement::Fine => Ok(()),
        }
    }

    /// The speaker's import hook, which keeps hijacks out of best-path selection:
    /// it refuses only what is certainly wrong, a known node announcing what IPAM
    /// says another known node owns (the advertiser is the route's originator, by
    /// router id). Everything else is judged again by the desired state, which
    /// sees the datastore catch up; a route the speaker dropped stays dropped.
    pub fn check_announcement(
        &self,
        prefix: IpNet,
        internal: bool,
        originator: Ipv4Addr,
    ) -> Result<(), Refusal> {
        match self.judge(prefix, internal, self.nodes.get(&IpAddr::V4(originator))) {
            Err(
                refusal @ Refusal::NotOwner {
                    owner: Some(_),
                    advertiser: Some(_),
                },
            ) => Err(refusal),
            _ => Ok(()),
        }
    }

    /// The node IPAM gives `prefix` (a host prefix's holder, or a block's owner).
    pub fn owner_of(&self, prefix: IpNet) -> Option<&str> {
        let is_host = prefix.prefix_len() == prefix.max_prefix_len();
        let holder = self.holders.get(&prefix.addr()).filter(|_| is_host);
        holder.or(self.blocks.get(&prefix))?.as_deref()
    }

    fn judge(
        &self,
        prefix: IpNet,
        internal: bool,
        advertiser: Option<&String>,
    ) -> Result<Judgement, Refusal> {
        let Some((_, pool)) = self.pools.iter().find(|(cidr, _)| cidr.contains(&prefix)) else {
            return if internal {
                Err(Refusal::OutsidePools)
            } else {
                Ok(Judgement::Fine)
            };
        };
        if !internal || !self.check_ownership {
            return Ok(Judgement::Fine);
        }
        let is_host = prefix.prefix_len() == prefix.max_prefix_len();
        let holder = self.holders.get(&prefix.addr()).filter(|_| is_host);
        let owner = match (holder, self.blocks.get(&prefix)) {
            (Some(node), _) | (None, Some(node)) => node.as_ref(),
            (None, None) => return Ok(Judgement::Unknown { pool: pool.clone() }),
        };
        match (owner, advertiser) {
            (Some(owner), Some(advertiser)) if owner == advertiser => Ok(Judgement::Fine),
            _ => Err(Refusal::NotOwner {
                owner: owner.cloned(),
                advertiser: advertiser.cloned(),
            }),
        }
    }
}

enum Judgement {
    Fine,
    /// Inside `pool`, but neither a block nor an allocated address.
    Unknown {
        pool: String,
    },
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

    fn owners(check_ownership: bool) -> Owners {
        let cluster = cluster();
        Owners::new(&cluster, &Ipam::new(&cluster), check_ownership)
    }

    fn run(prefix: &str, path: Path) -> Result<(), Refusal> {
        owners(true).check(net(prefix), &path)
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
        let unchecked = owners(false).check(net("10.0.1.0/26"), &mesh("192.0.2.12"));
        assert_eq!(unchecked, Ok(()));
    }

    #[test]
    fn the_import_hook_judges_by_originator_and_lets_unknown_blocks_through() {
        let owners = owners(true);
        let id = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(
            owners.check_announcement(net("10.0.1.0/26"), true, id("192.0.2.11")),
            Ok(())
        );
        assert!(matches!(
            owners.check_announcement(net("10.0.1.0/26"), true, id("192.0.2.12")),
            Err(Refusal::NotOwner { .. })
        ));
        // A block the datastore has not told this node about yet, an unknown
        // announcer, a prefix outside the pools: for the desired state to judge.
        for (prefix, originator) in [
            ("10.0.9.0/26", "192.0.2.12"),
            ("10.0.1.0/26", "192.0.2.99"),
            ("0.0.0.0/0", "192.0.2.12"),
        ] {
            assert_eq!(
                owners.check_announcement(net(prefix), true, id(originator)),
                Ok(()),
                "{prefix} from {originator}"
            );
        }
    }

    #[test]
    fn refusals_read_as_sentences() {
        let rejection = Rejection {
            prefix: net("10.0.1.0/26"),
            next_hop: Some(ip("192.0.2.99")),
            peer: Some(ip("192.0.2.99")),
            refusal: Refusal::NotOwner {
                owner: Some("b".into()),
                advertiser: None,
            },
        };
        assert_eq!(
            rejection.to_string(),
            "10.0.1.0/26 via 192.0.2.99 from peer 192.0.2.99: owned by node \"b\", but \
             announced by an address that is no node's"
        );
    }
}
