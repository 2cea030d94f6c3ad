//! Claiming a block for a node and giving it back, Calico's way:
//!
//! ```text
//! claim:   BlockAffinity <node>-<block> Pending   (create: one per node and block)
//!          IPAMBlock <block> affinity host:<node> (create: the arbiter, one per block)
//!          BlockAffinity Confirmed                (CAS)
//! release: BlockAffinity PendingDeletion          (CAS)
//!          IPAMBlock deleted at the revision read, only if empty (CAS)
//!          BlockAffinity deleted
//! ```
//!
//! Ownership is the block's `affinity` field: creating the block is atomic, so of two
//! nodes with pending affinities for one block exactly one gets it, and the other
//! drops its pending affinity. A pending affinity alone never means ownership; one
//! left by a crash is resumed by its node or removed by the controller.
//!
//! Blocks never overlap, whatever the pools say (pools written past tabby's checks,
//! a pool re-created with another block size over blocks that still hold
//! addresses). Blocks of one size collide on their name; for blocks of different
//! sizes, a claim writes its pending affinity first and then reads every affinity
//! and block: one overlapping its block, other than itself, makes it withdraw
//! before the block is written. Of two overlapping claims at once, at least one
//! reads the other's affinity (each writes before it reads, and reads are
//! linearizable on every backend), so at most one writes its block.

use std::collections::BTreeMap;

use api::datastore::{Backend, Datastore, Error as DsError, ListOptions};
use api::resources::{
    AffinityState, BlockAffinity, BlockAffinitySpec, Cidr, IPAMBlock, IPAMBlockSpec, IPPool,
    Resource, cidr_name, cidr_of_name,
};
use ipnet::IpNet;
use rand::Rng;

use crate::cas::{self, ATTEMPTS, Edit, list_all, read};
use crate::error::{IpamError, Result};
use crate::table::{AllocationTable, host_affinity};

/// Blocks tried per claim before reporting the pools as full: each failed try is a
/// block another node took between our listing and our create.
const CLAIM_TRIES: usize = 64;

/// `<node>-<block name>`, the affinity's object name.
pub fn affinity_name(node: &str, cidr: &Cidr) -> String {
    format!("{node}-{}", cidr_name(cidr))
}

/// A fresh block affine to `node`, every address free.
pub fn new_block(cidr: Cidr, node: Option<&str>) -> IPAMBlock {
    let mut block = IPAMBlock::new(
        cidr_name(&cidr),
        IPAMBlockSpec {
            cidr,
            affinity: node.map(host_affinity),
            allocations: Vec::new(),
            unallocated: Vec::new(),
            attributes: Vec::new(),
            deleted: false,
            sequence_number: 0,
            sequence_number_for_allocation: BTreeMap::new(),
        },
    );
    block.apply_defaults();
    block
}

/// Claims a free block of one of `pools` (in order) for `node`, which owns
/// `owned` already; `None` when every block of them is taken. Starts at a random
/// block so nodes claiming at once rarely collide.
pub async fn claim_free_block(
    store: &dyn Backend,
    node: &str,
    pools: &[&IPPool],
    owned: &BTreeMap<String, IPAMBlock>,
) -> Result<Option<IPAMBlock>> {
    let affinities = list_all::<BlockAffinity>(store).await?;
    let occupied = Occupied::read(store, &affinities).await?;
    // Our own affinities left by a claim cut short before the block was written.
    let resumable = affinities.iter().filter(|a| {
        a.spec.node == node
            && a.spec.state == AffinityState::Pending
            && !owned.contains_key(&cidr_name(&a.spec.cidr))
            && pools.iter().any(|p| p.spec.cidr.0.contains(&a.spec.cidr.0))
    });
    for affinity in resumable {
        if let Some(block) = claim_block(store, node, affinity.spec.cidr).await? {
            return Ok(Some(block));
        }
    }
    let mut tries = 0;
    for pool in pools {
        let Some(candidates) = BlockRange::of(pool) else {
            continue;
        };
        let start = rand::rng().random_range(0..candidates.count);
        let mut index = start;
        loop {
            let cidr = candidates.nth(index);
            if occupied.free(&cidr) {
                tries += 1;
                if let Some(block) = claim_block(store, node, Cidr(cidr)).await? {
                    return Ok(Some(block));
                }
                if tries >= CLAIM_TRIES {
                    return Ok(None);
                }
            }
            index = (index + 1) % candidates.count;
            if index == start {
                break;
            }
        }
    }
    Ok(None)
}

/// Claims the block `cidr` for `node`; `None` when it is another node's, overlaps
/// another block (or a claim of one), or a release of it is under way. Resumes a
/// claim of ours that was cut short.
pub async fn claim_block(store: &dyn Backend, node: &str, cidr: Cidr) -> Result<Option<IPAMBlock>> {
    let name = affinity_name(node, &cidr);
    if !place_pending(store, node, cidr).await? {
        return Ok(None);
    }
    let affinities = list_all::<BlockAffinity>(store).await?;
    let occupied = Occupied::read(store, &affinities).await?;
    if let Some(other) = occupied.overlapping(&cidr.0) {
        tracing::warn!(%node, block = %cidr, %other, "not claiming a block that overlaps another");
        delete_affinity(store, &name, None).await?;
        return Ok(None);
    }
    let block = match store.create(&new_block(cidr, Some(node))).await {
        Ok(block) => block,
        Err(DsError::AlreadyExists { .. }) => {
            match read::<IPAMBlock>(store, &cidr_name(&cidr)).await? {
                Some(block) if block.spec.affine_node() == Some(node) => block,
                _ => {
                    // Another node's block (or one being deleted): withdraw our claim.
                    // Unconditionally: only this node writes this affinity, and the
                    // block says it is not ours.
                    delete_affinity(store, &name, None).await?;
                    return Ok(None);
                }
            }
        }
        Err(e) => return Err(e.into()),
    };
    set_affinity_state(store, node, cidr, AffinityState::Confirmed).await?;
    Ok(Some(block))
}

/// Makes sure `node`'s affinity for `cidr` exists (creating it pending); false when
/// it is being released.
async fn place_pending(store: &dyn Backend, node: &str, cidr: Cidr) -> Result<bool> {
    let name = affinity_name(node, &cidr);
    let pending = BlockAffinity::new(
        name.clone(),
        BlockAffinitySpec {
            node: node.to_owned(),
            cidr,
            state: AffinityState::Pending,
        },
    );
    for _ in 0..ATTEMPTS {
        match store.create(&pending).await {
            Ok(_) => return Ok(true),
            Err(DsError::AlreadyExists { .. }) => {
                match read::<BlockAffinity>(store, &name).await? {
                    Some(existing) => {
                        return Ok(existing.spec.state != AffinityState::PendingDeletion);
                    }
                    // Deleted between our create and our read: create again.
                    None => continue,
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(IpamError::Contention {
        what: format!("block affinity {name}"),
        attempts: ATTEMPTS,
    })
}

/// The ranges of every affinity and block, by the name that holds them (blocks that
/// cannot be read are known by their names), so no claim lands over one.
#[derive(Debug)]
struct Occupied(Vec<(IpNet, String)>);

impl Occupied {
    async fn read(store: &dyn Backend, affinities: &[BlockAffinity]) -> Result<Self> {
        let mut ranges: Vec<(IpNet, String)> = affinities
            .iter()
            .map(|a| (a.spec.cidr.0, format!("block affinity {}", a.metadata.name)))
            .collect();
        let mut options = ListOptions::default();
        loop {
            let page = store.list::<IPAMBlock>(&options).await?;
            let readable = page.items.iter().map(|b| b.metadata.name.as_str());
            let unreadable = page.skipped.iter().map(|s| s.name.as_str());
            for name in readable.chain(unreadable) {
                if let Some(cidr) = cidr_of_name(name) {
                    ranges.push((cidr.0, format!("block {name}")));
                }
            }
            match page.continue_token {
                Some(token) => options.continue_token = Some(token),
                None => return Ok(Self(ranges)),
            }
        }
    }

    /// Whether nothing covers any address of `cidr`.
    fn free(&self, cidr: &IpNet) -> bool {
        !self.0.iter().any(|(other, _)| overlap(other, cidr))
    }

    /// What overlaps `cidr` without being that very block, if anything. (Claims of
    /// the same block are settled by creating it.)
    fn overlapping(&self, cidr: &IpNet) -> Option<&str> {
        self.0
            .iter()
            .find(|(other, _)| other != cidr && overlap(other, cidr))
            .map(|(_, what)| what.as_str())
    }
}

fn overlap(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// What [`release_block`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockRelease {
    /// The block was empty and is gone, with its affinity.
    Deleted,
    /// The block still holds addresses: kept, affinity confirmed again.
    NotEmpty,
    /// The block holds addresses and now has no affinity; the affinity is gone.
    Orphaned,
    /// The block was not the node's: only the node's affinity was removed.
    NotOwned,
}

/// Gives block `cidr` of `node` back. With `keep_addresses` (the node is gone) a
/// block still holding addresses loses its affinity but keeps them; otherwise it
/// is only deleted when empty.
pub async fn release_block(
    store: &dyn Backend,
    node: &str,
    cidr: Cidr,
    keep_addresses: bool,
) -> Result<BlockRelease> {
    let name = affinity_name(node, &cidr);
    let marked = read::<BlockAffinity>(store, &name).await?.is_some();
    if marked {
        set_affinity_state(store, node, cidr, AffinityState::PendingDeletion).await?;
    }
    let edited = cas::edit_block(store, &cidr_name(&cidr), None, |spec| {
        if spec.affine_node() != Some(node) {
            Edit::Keep(BlockRelease::NotOwned)
        } else if spec.is_empty() {
            Edit::Delete(BlockRelease::Deleted)
        } else if keep_addresses {
            spec.affinity = None;
            Edit::Write(BlockRelease::Orphaned)
        } else {
            Edit::Keep(BlockRelease::NotEmpty)
        }
    })
    .await?;
    let outcome = edited.value.unwrap_or(BlockRelease::NotOwned);
    if outcome == BlockRelease::NotEmpty {
        set_affinity_state(store, node, cidr, AffinityState::Confirmed).await?;
    } else if marked {
        delete_affinity(store, &name, None).await?;
    }
    Ok(outcome)
}

/// Sets the state of `node`'s affinity for `cidr`, creating it when missing.
pub async fn set_affinity_state(
    store: &dyn Backend,
    node: &str,
    cidr: Cidr,
    state: AffinityState,
) -> Result<()> {
    let name = affinity_name(node, &cidr);
    for _ in 0..ATTEMPTS {
        let written = match read::<BlockAffinity>(store, &name).await? {
            Some(affinity) if affinity.spec.state == state => return Ok(()),
            Some(mut affinity) => {
                affinity.spec.state = state;
                store.update(&affinity).await.map(drop)
            }
            None => {
                let spec = BlockAffinitySpec {
                    node: node.to_owned(),
                    cidr,
                    state,
                };
                store
                    .create(&BlockAffinity::new(name.clone(), spec))
                    .await
                    .map(drop)
            }
        };
        match written {
            Ok(()) => return Ok(()),
            Err(
                DsError::Conflict { .. } | DsError::NotFound { .. } | DsError::AlreadyExists { .. },
            ) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(IpamError::Contention {
        what: format!("block affinity {name}"),
        attempts: ATTEMPTS,
    })
}

/// Deletes an affinity (at `revision`, when given); false when it is gone already
/// or (at a revision) changed.
pub async fn delete_affinity(
    store: &dyn Backend,
    name: &str,
    revision: Option<api::resources::Revision>,
) -> Result<bool> {
    match store.delete::<BlockAffinity>(name, revision).await {
        Ok(_) => Ok(true),
        Err(DsError::NotFound { .. } | DsError::Conflict { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The blocks of a pool, addressed by index without enumerating them (an IPv6 pool
/// may hold 2^70 blocks).
#[derive(Debug, Clone, Copy)]
struct BlockRange {
    pool: IpNet,
    block: u8,
    count: u128,
}

impl BlockRange {
    fn of(pool: &IPPool) -> Option<Self> {
        let net = pool.spec.cidr.0.trunc();
        let block = pool.spec.block_size();
        if block > net.max_prefix_len() {
            return None;
        }
        let bits = u32::from(block.checked_sub(net.prefix_len())?);
        Some(Self {
            pool: net,
            block,
            count: 1u128.checked_shl(bits).unwrap_or(u128::MAX),
        })
    }

    fn nth(&self, index: u128) -> IpNet {
        let shift = u32::from(self.pool.max_prefix_len() - self.block);
        let offset = index << shift;
        let base = match self.pool.network() {
            std::net::IpAddr::V4(a) => std::net::IpAddr::V4((u32::from(a) + offset as u32).into()),
            std::net::IpAddr::V6(a) => std::net::IpAddr::V6((u128::from(a) + offset).into()),
        };
        IpNet::new(base, self.block).expect("a block size the pool validated")
    }
}

#[cfg(test)]
mod tests {
    use api::resources::IPPoolSpec;

    use super::*;

    #[test]
    fn ipam_block_ranges_address_blocks_by_index_in_both_families() {
        let mut spec = IPPoolSpec::new("10.0.0.0/24".parse().unwrap());
        spec.block_size = Some(26);
        let range = BlockRange::of(&IPPool::new("p", spec)).unwrap();
        assert_eq!(range.count, 4);
        assert_eq!(range.nth(3).to_string(), "10.0.0.192/26");
        let v6 = BlockRange::of(&IPPool::new(
            "v6",
            IPPoolSpec::new("fd00::/48".parse().unwrap()),
        ))
        .unwrap();
        assert_eq!(v6.count, 1 << 74);
        assert_eq!(v6.nth(1).to_string(), "fd00::40/122");
    }
}
