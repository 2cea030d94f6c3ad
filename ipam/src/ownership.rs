//! Whose pod addresses a route learned over BGP may carry. IPAM is the single
//! source of truth ([`crate::view`]: a block's confirmed owner, an address's
//! holder), and a route is judged by what its traffic will do: its next hop is
//! the node, or the router, that receives the packets. The peer's AS and the
//! ORIGINATOR_ID it claims play no part; what the peer *is* decides whether it
//! may send routes outside the pools, and through itself.
//!
//! | prefix | next hop | from a node or reflector | from a router |
//! | --- | --- | --- | --- |
//! | outside every pool | any | refused | accepted |
//! | a block or allocated address | its owner (block) or holder (/32) | accepted | accepted |
//! | a block or allocated address | another node | refused | refused |
//! | anything else in a pool | a node | refused | refused |
//! | in a pool | no node (a router) | refused | accepted: the router forwards |
//!
//! `docs/security.md` has the same table with a test per case.

use std::collections::BTreeMap;
use std::net::IpAddr;

use api::resources::{IPPool, Node};
use ipnet::IpNet;

use crate::view::View;

/// What a BGP peer is, as the rule sees it: decided by what the peer is (a
/// Node's address, a configured reflector), never by the AS it uses, which a
/// node may change on its own `Node`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PeerRole {
    /// A node of the cluster.
    Node,
    /// A route reflector of the cluster: a node with a cluster id, or an iBGP
    /// peer that is no node.
    Reflector,
    /// A router outside the cluster (a top-of-rack switch): the operator's own,
    /// trusted with what it routes through itself.
    Router,
}

impl PeerRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Node => "node",
            Self::Reflector => "reflector",
            Self::Router => "router",
        }
    }
}

/// Why a learned route may not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "outside every IP pool, and cluster peers (nodes, reflectors) may announce only pool addresses"
    )]
    OutsidePools,
    #[error("inside pool {pool:?} but neither an IPAM block nor an allocated address")]
    NotInIpam { pool: String },
    #[error(
        "owned by {}, but its next hop is {}",
        owner.as_deref().map_or("no node".to_owned(), |n| format!("node {n:?}")),
        next_hop.as_deref().map_or("an address that is no node's".to_owned(), |n| format!("node {n:?}"))
    )]
    NotOwner {
        owner: Option<String>,
        /// The node at the next hop, if it is one.
        next_hop: Option<String>,
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

/// A learned route that was refused.
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

/// What the rule needs of the datastore, owned, so that a speaker's import hook
/// can hold a copy while the daemon builds the next one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owners {
    /// Pool CIDRs and names.
    pools: Vec<(IpNet, String)>,
    /// Every block, with its owner (confirmed on both sides).
    blocks: BTreeMap<IpNet, Option<String>>,
    /// Every allocated address, with the node holding it.
    holders: BTreeMap<IpAddr, Option<String>>,
    /// Nodes by BGP address.
    nodes: BTreeMap<IpAddr, String>,
    /// Off: pool prefixes are not held to ownership (the agent's
    /// `--import-ownership-check=false`, for migrations).
    check_ownership: bool,
}

impl Owners {
    pub fn new<'a>(
        pools: impl IntoIterator<Item = &'a IPPool>,
        view: &View<'_>,
        nodes: impl IntoIterator<Item = &'a Node>,
        check_ownership: bool,
    ) -> Self {
        let owned = |node: Option<&str>| node.map(str::to_owned);
        Self {
            pools: pools
                .into_iter()
                .map(|p| (p.spec.cidr.0.trunc(), p.metadata.name.clone()))
                .collect(),
            blocks: view
                .blocks()
                .map(|(cidr, owner)| (cidr, owned(owner)))
                .collect(),
            holders: view
                .allocations()
                .map(|a| (a.address, owned(a.node)))
                .collect(),
            nodes: nodes
                .into_iter()
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

    /// The node whose BGP address is `address`.
    pub fn node_at(&self, address: IpAddr) -> Option<&str> {
        self.nodes.get(&address).map(String::as_str)
    }

    /// The node IPAM gives `prefix` (a host prefix's holder, or a block's owner).
    pub fn owner_of(&self, prefix: IpNet) -> Option<&str> {
        let is_host = prefix.prefix_len() == prefix.max_prefix_len();
        let holder = self.holders.get(&prefix.addr()).filter(|_| is_host);
        holder.or(self.blocks.get(&prefix))?.as_deref()
    }

    /// The rule (see the module's table) for a route to `prefix` through
    /// `next_hop`, from a peer that is `from`.
    pub fn check(&self, prefix: IpNet, next_hop: IpAddr, from: PeerRole) -> Result<(), Refusal> {
        let Some((_, pool)) = self.pools.iter().find(|(cidr, _)| cidr.contains(&prefix)) else {
            return match from {
                PeerRole::Router => Ok(()),
                PeerRole::Node | PeerRole::Reflector => Err(Refusal::OutsidePools),
            };
        };
        let node = self.nodes.get(&next_hop);
        if !self.check_ownership || (node.is_none() && from == PeerRole::Router) {
            return Ok(());
        }
        let is_host = prefix.prefix_len() == prefix.max_prefix_len();
        let holder = self.holders.get(&prefix.addr()).filter(|_| is_host);
        let owner = match (holder, self.blocks.get(&prefix)) {
            (Some(node), _) | (None, Some(node)) => node.as_ref(),
            (None, None) => return Err(Refusal::NotInIpam { pool: pool.clone() }),
        };
        match (owner, node) {
            (Some(owner), Some(node)) if owner == node => Ok(()),
            _ => Err(Refusal::NotOwner {
                owner: owner.cloned(),
                next_hop: node.cloned(),
            }),
        }
    }
}

/// The rule as a daemon applies it: the ownership index and what each of its
/// peers is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Judge {
    pub owners: Owners,
    /// By peer address; a peer not listed (a dynamic neighbour) is held to the
    /// cluster's rule, the strictest.
    pub roles: BTreeMap<IpAddr, PeerRole>,
}

impl Judge {
    pub fn role(&self, peer: Option<IpAddr>) -> PeerRole {
        peer.and_then(|p| self.roles.get(&p).copied())
            .unwrap_or(PeerRole::Node)
    }

    /// [`Owners::check`] for a route learned over the session with `peer`.
    pub fn check(
        &self,
        prefix: IpNet,
        next_hop: IpAddr,
        peer: Option<IpAddr>,
    ) -> Result<(), Rejection> {
        self.owners
            .check(prefix, next_hop, self.role(peer))
            .map_err(|refusal| Rejection {
                prefix,
                next_hop,
                peer,
                refusal,
            })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use api::resources::{
        AffinityState, AllocationAttribute, BlockAffinity, BlockAffinitySpec, Cidr, IPAMBlock,
        IPPoolSpec, Resource,
    };

    use super::*;
    use crate::table::attr;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const A: &str = "192.0.2.10";
    const B: &str = "192.0.2.11";
    const C: &str = "192.0.2.12";
    const ROUTER: &str = "192.0.2.1";

    /// Pool 10.0.0.0/16; nodes a, b, c; b owns 10.0.1.0/26 where c holds .9 (a
    /// borrowed address); c's claim on 10.0.2.0/26 is still pending.
    fn owners(check_ownership: bool) -> Owners {
        let pool = IPPool::new("p", IPPoolSpec::new(Cidr(net("10.0.0.0/16"))));
        let node = |name: &str, address: &str| {
            let bgp = serde_json::json!({"bgp": {"ipv4Address": format!("{address}/24")}});
            Node::new(name, serde_json::from_value(bgp).unwrap())
        };
        let nodes = [node("a", A), node("b", B), node("c", C)];
        let mut owned = crate::claim::new_block(Cidr(net("10.0.1.0/26")), Some("b"));
        owned.spec.allocations[9] = Some(0);
        owned.spec.attributes.push(AllocationAttribute {
            handle_id: Some("k8s-pod-network.web".into()),
            secondary: BTreeMap::from([(attr::NODE.to_owned(), "c".to_owned())]),
        });
        let pending = crate::claim::new_block(Cidr(net("10.0.2.0/26")), Some("c"));
        let affinity = |node: &str, block: &IPAMBlock, state| {
            BlockAffinity::new(
                format!("{node}-{}", block.name()),
                BlockAffinitySpec {
                    node: node.into(),
                    cidr: block.spec.cidr,
                    state,
                },
            )
        };
        let affinities = [
            affinity("b", &owned, AffinityState::Confirmed),
            affinity("c", &pending, AffinityState::Pending),
        ];
        let blocks = [owned, pending];
        let view = View::new(&blocks, &affinities);
        Owners::new([&pool], &view, &nodes, check_ownership)
    }

    fn check(prefix: &str, next_hop: &str, from: PeerRole) -> Result<(), Refusal> {
        owners(true).check(net(prefix), ip(next_hop), from)
    }

    const CLUSTER: [PeerRole; 2] = [PeerRole::Node, PeerRole::Reflector];
    const EVERY: [PeerRole; 3] = [PeerRole::Node, PeerRole::Reflector, PeerRole::Router];

    #[test]
    fn hardening_a_block_through_its_owner_is_accepted_from_every_kind_of_peer() {
        for from in EVERY {
            assert_eq!(check("10.0.1.0/26", B, from), Ok(()), "{from:?}");
        }
    }

    #[test]
    fn hardening_a_block_through_another_node_is_refused_from_every_kind_of_peer() {
        for from in EVERY {
            assert_eq!(
                check("10.0.1.0/26", C, from),
                Err(Refusal::NotOwner {
                    owner: Some("b".into()),
                    next_hop: Some("c".into())
                }),
                "{from:?}"
            );
        }
    }

    #[test]
    fn hardening_a_borrowed_address_belongs_to_its_holder_not_the_blocks_owner() {
        for from in EVERY {
            assert_eq!(check("10.0.1.9/32", C, from), Ok(()), "{from:?}");
            assert!(
                matches!(check("10.0.1.9/32", B, from), Err(Refusal::NotOwner { .. })),
                "{from:?}"
            );
        }
    }

    #[test]
    fn hardening_a_32_inside_another_nodes_block_that_no_one_holds_is_refused() {
        for from in EVERY {
            for next_hop in [A, C] {
                assert!(
                    matches!(
                        check("10.0.1.10/32", next_hop, from),
                        Err(Refusal::NotInIpam { .. })
                    ),
                    "{from:?} via {next_hop}"
                );
            }
        }
    }

    #[test]
    fn hardening_pool_prefixes_that_are_not_blocks_or_addresses_are_refused_through_a_node() {
        for from in EVERY {
            for prefix in ["10.0.0.0/16", "10.0.1.0/27", "10.0.9.0/26", "10.0.9.9/32"] {
                assert!(
                    matches!(check(prefix, B, from), Err(Refusal::NotInIpam { .. })),
                    "{prefix} from {from:?}"
                );
            }
        }
    }

    #[test]
    fn hardening_a_block_whose_affinity_is_unconfirmed_has_no_owner_to_believe() {
        for from in EVERY {
            assert_eq!(
                check("10.0.2.0/26", C, from),
                Err(Refusal::NotOwner {
                    owner: None,
                    next_hop: Some("c".into())
                })
            );
        }
    }

    #[test]
    fn hardening_pool_traffic_sent_to_an_address_that_is_no_node_is_refused_from_cluster_peers() {
        for from in CLUSTER {
            assert_eq!(
                check("10.0.1.0/26", ROUTER, from),
                Err(Refusal::NotOwner {
                    owner: Some("b".into()),
                    next_hop: None
                }),
                "{from:?}"
            );
        }
        // A router forwards what it routes through itself.
        for prefix in ["10.0.1.0/26", "10.0.1.10/32", "10.0.0.0/16"] {
            assert_eq!(check(prefix, ROUTER, PeerRole::Router), Ok(()), "{prefix}");
        }
    }

    #[test]
    fn hardening_prefixes_outside_every_pool_come_only_from_routers() {
        for from in CLUSTER {
            for next_hop in [B, ROUTER] {
                assert_eq!(
                    check("0.0.0.0/0", next_hop, from),
                    Err(Refusal::OutsidePools)
                );
            }
        }
        for next_hop in [B, ROUTER] {
            assert_eq!(check("198.51.100.0/24", next_hop, PeerRole::Router), Ok(()));
        }
    }

    #[test]
    fn a_disabled_check_holds_pool_prefixes_to_nothing_but_the_pools() {
        let unchecked = owners(false);
        assert_eq!(
            unchecked.check(net("10.0.1.0/26"), ip(C), PeerRole::Node),
            Ok(())
        );
        assert_eq!(
            unchecked.check(net("0.0.0.0/0"), ip(C), PeerRole::Node),
            Err(Refusal::OutsidePools)
        );
    }

    #[test]
    fn hardening_a_peer_the_judge_does_not_know_is_held_to_the_cluster_rule() {
        let judge = Judge {
            owners: owners(true),
            roles: BTreeMap::from([(ip(ROUTER), PeerRole::Router)]),
        };
        let prefix = net("10.0.1.0/26");
        assert!(judge.check(prefix, ip(ROUTER), Some(ip(ROUTER))).is_ok());
        let rejection = judge
            .check(prefix, ip(ROUTER), Some(ip("192.0.2.99")))
            .unwrap_err();
        assert_eq!(
            rejection.to_string(),
            "10.0.1.0/26 via 192.0.2.1 from peer 192.0.2.99: owned by node \"b\", but its \
             next hop is an address that is no node's"
        );
    }
}
