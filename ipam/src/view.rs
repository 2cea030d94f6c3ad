//! What the IPAM blocks say, indexed for readers that follow the datastore (the
//! agent's desired state, the ownership checks of agent and reflector): who owns
//! which block, and which node holds which address.
//!
//! A node owns a block when both sides agree: its `BlockAffinity` is confirmed and
//! the block itself names it (`affinity: host:<node>`), and the block is not being
//! released.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use api::resources::{AffinityState, BlockAffinity, IPAMBlock};
use ipnet::IpNet;

use crate::blocks::address_at;
use crate::table::attr;

/// One allocated address, with what IPAM recorded about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation<'a> {
    pub address: IpAddr,
    pub block: IpNet,
    pub node: Option<&'a str>,
    pub handle: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub pod: Option<&'a str>,
    pub container: Option<&'a str>,
    /// Set for tunnel addresses (`ipipTunnelAddress`, `vxlanTunnelAddress`).
    pub kind: Option<&'a str>,
}

/// The blocks and allocations, indexed.
#[derive(Debug, Clone, Default)]
pub struct View<'a> {
    /// Every block, with the node that owns it (confirmed on both sides).
    blocks: BTreeMap<IpNet, Option<&'a str>>,
    /// Every allocated address.
    allocations: BTreeMap<IpAddr, Allocation<'a>>,
}

impl<'a> View<'a> {
    pub fn new(
        blocks: impl IntoIterator<Item = &'a IPAMBlock>,
        affinities: impl IntoIterator<Item = &'a BlockAffinity>,
    ) -> Self {
        let confirmed: BTreeSet<(&str, IpNet)> = affinities
            .into_iter()
            .filter(|a| a.spec.state == AffinityState::Confirmed)
            .map(|a| (a.spec.node.as_str(), a.spec.cidr.0.trunc()))
            .collect();
        let mut view = Self::default();
        for block in blocks {
            let spec = &block.spec;
            let cidr = spec.cidr.0.trunc();
            let claimed = spec
                .affinity
                .as_deref()
                .and_then(|a| a.strip_prefix("host:"));
            let owner = claimed.filter(|node| !spec.deleted && confirmed.contains(&(*node, cidr)));
            view.blocks.insert(cidr, owner);
            for (ordinal, index) in spec.allocations.iter().enumerate() {
                let Some(attribute) = index.and_then(|i| spec.attributes.get(i)) else {
                    continue;
                };
                let Some(address) = address_at(cidr, ordinal) else {
                    continue;
                };
                let secondary = |key: &str| attribute.secondary.get(key).map(String::as_str);
                view.allocations.insert(
                    address,
                    Allocation {
                        address,
                        block: cidr,
                        node: secondary(attr::NODE),
                        handle: attribute.handle_id.as_deref(),
                        namespace: secondary(attr::NAMESPACE),
                        pod: secondary(attr::POD),
                        container: secondary(attr::CONTAINER_ID),
                        kind: secondary(attr::TYPE),
                    },
                );
            }
        }
        view
    }

    /// Whether `prefix` is a block, and if so who owns it.
    pub fn block(&self, prefix: IpNet) -> Option<Option<&'a str>> {
        self.blocks.get(&prefix).copied()
    }

    /// Every block, with its confirmed owner if it has one.
    pub fn blocks(&self) -> impl Iterator<Item = (IpNet, Option<&'a str>)> + '_ {
        self.blocks.iter().map(|(cidr, owner)| (*cidr, *owner))
    }

    /// Blocks and their confirmed owners.
    pub fn owned_blocks(&self) -> impl Iterator<Item = (IpNet, &'a str)> + '_ {
        self.blocks
            .iter()
            .filter_map(|(cidr, owner)| Some((*cidr, (*owner)?)))
    }

    /// The owner of the block holding `address`.
    pub fn owner_of_address(&self, address: IpAddr) -> Option<&'a str> {
        let allocation = self.allocations.get(&address)?;
        self.blocks.get(&allocation.block).copied().flatten()
    }

    pub fn allocation(&self, address: IpAddr) -> Option<&Allocation<'a>> {
        self.allocations.get(&address)
    }

    pub fn allocations(&self) -> impl Iterator<Item = &Allocation<'a>> {
        self.allocations.values()
    }
}
