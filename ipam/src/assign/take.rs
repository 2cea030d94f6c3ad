//! Choosing addresses in blocks and taking them: the plan from the node's cached
//! blocks, the take done on a cached block (written with the handle in one
//! transaction), and the compare-and-swap that takes them from one block.

use api::datastore::Backend;
use api::resources::{AllocationAttribute, IPAMBlock, IPAMBlockSpec};

use super::AssignRequest;
use crate::cas::{self, Edit, Edited};
use crate::error::Result;
use crate::handles::Assignment;
use crate::pools::{Family, Reserved, pool_holding};
use crate::state::{NodeState, Settings};
use crate::table::AllocationTable;

/// Addresses to take from one block.
#[derive(Debug, Clone)]
pub(super) struct Take {
    pub(super) name: String,
    pub(super) block: IPAMBlock,
    pub(super) count: usize,
    pub(super) reserved: Reserved,
    pub(super) borrowed: bool,
}

/// Takes from the node's cached blocks in usable pools, in pool order. The chosen
/// blocks move out of the cache into the plan; their writes put them back.
pub(super) fn plan_owned(
    state: &mut NodeState,
    request: &AssignRequest,
    family: Family,
    count: usize,
) -> Vec<Take> {
    let Some(settings) = &state.settings else {
        return Vec::new();
    };
    let usable = request.query(family, settings).usable(&settings.pools);
    let mut candidates: Vec<(usize, &String, &IPAMBlock)> = state
        .blocks
        .iter()
        .filter_map(|(name, block)| {
            let rank = usable
                .iter()
                .position(|p| p.spec.cidr.0.contains(&block.spec.cidr.0))?;
            Some((rank, name, block))
        })
        .collect();
    candidates.sort_by_key(|(rank, name, _)| (*rank, *name));
    let mut left = count;
    let mut chosen = Vec::new();
    for (_, name, block) in candidates {
        if left == 0 {
            break;
        }
        let (reserved, free) = free_in(block, settings);
        if free > 0 {
            let take = free.min(left);
            left -= take;
            chosen.push((name.clone(), take, reserved));
        }
    }
    chosen
        .into_iter()
        .filter_map(|(name, count, reserved)| {
            let block = state.blocks.remove(&name)?;
            Some(Take {
                name,
                block,
                count,
                reserved,
                borrowed: false,
            })
        })
        .collect()
}

/// A block's reserved ordinals and how many free addresses it has besides.
pub(super) fn free_in(block: &IPAMBlock, settings: &Settings) -> (Reserved, usize) {
    let pool = pool_holding(&settings.pools, &block.spec.cidr.0);
    let reserved = Reserved::for_block(block.spec.cidr.0, pool, &settings.reservations);
    let free = block.spec.free_count(&|o| reserved.contains(o));
    (reserved, free)
}

/// Up to `count` addresses of `block`, as far as its free unreserved ones go.
pub(super) fn take_of(
    name: String,
    block: IPAMBlock,
    count: usize,
    settings: &Settings,
    borrowed: bool,
) -> Take {
    let (reserved, free) = free_in(&block, settings);
    let count = count.min(free);
    Take {
        name,
        block,
        count,
        reserved,
        borrowed,
    }
}

/// Takes the planned addresses from one block by compare-and-swap, reading it
/// first when `fresh` (the cached copy was refused).
pub(super) async fn take_from(
    store: &dyn Backend,
    node: &str,
    take: Take,
    holder: &AllocationAttribute,
    fresh: bool,
) -> Result<Edited<Vec<Assignment>>> {
    let cached = (!fresh).then(|| take.block.clone());
    cas::edit_block(store, &take.name, cached, |spec| {
        take_edit(spec, node, &take, holder)
    })
    .await
}

/// A take done on its cached block, ready to be written with others in one
/// transaction; `None` when the cached copy has nothing to give (then
/// [`take_from`] asks the datastore).
pub(super) fn prepare(
    node: &str,
    take: &Take,
    holder: &AllocationAttribute,
) -> Option<(IPAMBlock, Vec<Assignment>)> {
    let mut block = take.block.clone();
    match take_edit(&mut block.spec, node, take, holder) {
        Edit::Write(assigned) => Some((block, assigned)),
        Edit::Keep(_) | Edit::Delete(_) => None,
    }
}

/// The edit of a take: the planned addresses taken from `spec`, unless the
/// block's owner is no longer what the plan assumed.
fn take_edit(
    spec: &mut IPAMBlockSpec,
    node: &str,
    take: &Take,
    holder: &AllocationAttribute,
) -> Edit<Vec<Assignment>> {
    let owned = spec.affine_node() == Some(node);
    if owned == take.borrowed {
        // Ownership changed under us: plan again.
        return Edit::Keep(Vec::new());
    }
    let cidr = spec.cidr;
    let taken = spec.take_free(take.count, holder, &|o| take.reserved.contains(o));
    let assigned: Vec<Assignment> = taken
        .into_iter()
        .filter_map(|(ordinal, sequence)| {
            Some(Assignment {
                ip: crate::blocks::address_at(cidr.0, ordinal)?,
                block: cidr,
                sequence: Some(sequence),
                borrowed: take.borrowed,
            })
        })
        .collect();
    if assigned.is_empty() {
        Edit::Keep(assigned)
    } else {
        Edit::Write(assigned)
    }
}
