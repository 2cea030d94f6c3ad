//! Giving addresses back: everything a handle holds (idempotent; what a CNI DEL
//! does), or one address, optionally only if it is still the allocation the caller
//! saw (its handle and sequence number), which is how the controller makes sure it
//! never frees an address that was released and handed to someone else meanwhile.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use api::datastore::{Backend, Datastore, Error as DsError};
use api::resources::{Cidr, IPAMBlock, IPAMHandle, IPPool, Resource, cidr_name};
use futures::future::join_all;

use crate::assign::{Allocator, release_edit};
use crate::blocks::block_of;
use crate::cas::{self, ATTEMPTS, Edit, add_to_handle, list_all, read};
use crate::error::{IpamError, Result};
use crate::pools::pool_holding;
use crate::state::NodeState;
use crate::table::{AllocationTable, Released, ordinal_in};

/// What a release by IP insists on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expect {
    /// Only if this handle holds it.
    pub handle: Option<String>,
    /// Only if it is still the allocation with this sequence number.
    pub sequence: Option<u64>,
}

impl Allocator {
    /// Releases everything `handle` holds, using this node's cached blocks.
    pub async fn release_handle(&self, handle: &str) -> Result<Vec<Released>> {
        let mut state = self.lock().await;
        release_handle(&**self.store(), handle, Some(&mut state)).await
    }

    /// The handles holding addresses in the node's blocks whose ids start with
    /// `prefix`, read fresh (for a runtime's GC of its attachments).
    pub async fn local_handles(&self, prefix: &str) -> Result<BTreeSet<String>> {
        let mut state = self.lock().await;
        self.refresh(&mut state).await?;
        Ok(state
            .blocks
            .values()
            .flat_map(|b| b.spec.allocations())
            .filter_map(|a| a.handle)
            .filter(|h| h.starts_with(prefix))
            .map(str::to_owned)
            .collect())
    }

    /// Releases the node's blocks that hold no address; returns their CIDRs.
    pub async fn release_empty_blocks(&self) -> Result<Vec<Cidr>> {
        let mut state = self.lock().await;
        self.refresh(&mut state).await?;
        let empty: Vec<Cidr> = state
            .blocks
            .values()
            .filter(|b| b.spec.is_empty())
            .map(|b| b.spec.cidr)
            .collect();
        let mut released = Vec::new();
        for cidr in empty {
            let outcome =
                crate::claim::release_block(&**self.store(), &state.node, cidr, false).await?;
            if outcome == crate::claim::BlockRelease::Deleted {
                state.blocks.remove(&cidr_name(&cidr));
                released.push(cidr);
            }
        }
        Ok(released)
    }
}

/// Releases every address of `handle` and deletes it. A missing handle is
/// released already; with a node's `state`, that node's blocks are searched for
/// addresses still carrying the handle (a crash between block and handle writes).
pub async fn release_handle(
    store: &dyn Backend,
    handle: &str,
    mut state: Option<&mut NodeState>,
) -> Result<Vec<Released>> {
    let mut released = Vec::new();
    for _ in 0..ATTEMPTS {
        // The node's cached blocks holding the handle are freed while the handle is
        // read: a warm DEL costs the handle read and the block write, at once.
        let cached: Vec<IPAMBlock> = state
            .as_deref()
            .map(|s| {
                s.blocks
                    .values()
                    .filter(|b| {
                        b.spec
                            .allocations()
                            .iter()
                            .any(|a| a.handle == Some(handle))
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let (found, first) = futures::join!(
            read::<IPAMHandle>(store, handle),
            free_in(
                store,
                handle,
                cached
                    .iter()
                    .map(|b| (b.metadata.name.clone(), Some(b.clone())))
            )
        );
        let mut edited = first;
        let found = found?;
        let done: BTreeSet<String> = cached.iter().map(|b| b.metadata.name.clone()).collect();
        let listed: Vec<(String, Option<IPAMBlock>)> = found
            .iter()
            .flat_map(|h| h.spec.block.keys())
            .filter_map(|cidr| cidr.parse::<Cidr>().ok())
            .map(|cidr| cidr_name(&cidr))
            .filter(|name| !done.contains(name))
            .map(|name| {
                let cached = state.as_deref().and_then(|s| s.blocks.get(&name).cloned());
                (name, cached)
            })
            .collect();
        edited.extend(free_in(store, handle, listed.into_iter()).await);
        for (name, result) in edited {
            let block = result?;
            if let Some(state) = state.as_deref_mut() {
                state.record(&name, block.block);
            }
            released.extend(block.value.unwrap_or_default());
        }
        let Some(found) = found else {
            return Ok(released);
        };
        match store.delete::<IPAMHandle>(handle, found.revision()).await {
            Ok(_) | Err(DsError::NotFound { .. }) => return Ok(released),
            // The handle changed (another assignment to it): free what it holds now.
            Err(DsError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(IpamError::Contention {
        what: format!("releasing handle {handle}"),
        attempts: ATTEMPTS,
    })
}

/// Frees `handle`'s addresses in each block, all blocks at once.
async fn free_in(
    store: &dyn Backend,
    handle: &str,
    blocks: impl Iterator<Item = (String, Option<IPAMBlock>)>,
) -> Vec<(String, Result<cas::Edited<Vec<Released>>>)> {
    let blocks: Vec<_> = blocks.collect();
    let edits = join_all(blocks.iter().map(|(name, cached)| {
        cas::edit_block(store, name, cached.clone(), |spec| {
            let freed = spec.release_where(&|a| a.handle == Some(handle));
            release_edit(spec, freed)
        })
    }))
    .await;
    blocks
        .into_iter()
        .map(|(name, _)| name)
        .zip(edits)
        .collect()
}

/// Releases one address, if it is allocated as `expect` says; then takes it off
/// its handle's count.
pub async fn release_ip(store: &dyn Backend, ip: IpAddr, expect: &Expect) -> Result<Released> {
    let Some(name) = block_name_of(store, ip).await? else {
        return Err(not_allocated(ip, expect, None));
    };
    let mut seen = None;
    let mut block = None;
    let edited = cas::edit_block(store, &name, None, |spec| {
        block = Some(spec.cidr);
        let Some(allocation) = ordinal_in(spec, ip).and_then(|o| spec.allocation(o)) else {
            seen = None;
            return Edit::Keep(None);
        };
        let handle_ok = expect.handle.is_none() || allocation.handle == expect.handle.as_deref();
        let sequence_ok = expect.sequence.is_none() || allocation.sequence == expect.sequence;
        if !(handle_ok && sequence_ok) {
            seen = Some((allocation.handle.map(str::to_owned), allocation.sequence));
            return Edit::Keep(None);
        }
        let ordinal = allocation.ordinal;
        let freed = spec.release_where(&|a| a.ordinal == ordinal);
        match release_edit(spec, freed) {
            Edit::Keep(f) => Edit::Keep(f.into_iter().next()),
            Edit::Write(f) => Edit::Write(f.into_iter().next()),
            Edit::Delete(f) => Edit::Delete(f.into_iter().next()),
        }
    })
    .await?;
    let Some(released) = edited.value.flatten() else {
        return Err(not_allocated(ip, expect, seen));
    };
    if let (Some(handle), Some(block)) = (&released.handle, block) {
        let delta = BTreeMap::from([(block.to_string(), -1)]);
        add_to_handle(store, handle, &delta).await?;
    }
    Ok(released)
}

/// The name of the block holding `ip`: by its pool's block size, or (pool deleted)
/// by looking through the blocks.
async fn block_name_of(store: &dyn Backend, ip: IpAddr) -> Result<Option<String>> {
    let pools = list_all::<IPPool>(store).await?;
    if let Some(pool) = pool_holding(&pools, &ip.into())
        && let Some(block) = block_of(ip, pool.spec.block_size())
    {
        let name = cidr_name(&Cidr(block));
        if read::<IPAMBlock>(store, &name).await?.is_some() {
            return Ok(Some(name));
        }
    }
    let blocks = list_all::<IPAMBlock>(store).await?;
    Ok(blocks
        .into_iter()
        .find(|b| b.spec.cidr.0.contains(&ip))
        .map(|b| b.metadata.name))
}

fn not_allocated(
    ip: IpAddr,
    expect: &Expect,
    seen: Option<(Option<String>, Option<u64>)>,
) -> IpamError {
    let mut expected = String::new();
    if let Some(handle) = &expect.handle {
        expected.push_str(&format!(" to handle {handle}"));
    }
    if let Some(sequence) = expect.sequence {
        expected.push_str(&format!(" with sequence number {sequence}"));
    }
    if let Some((handle, sequence)) = seen {
        expected.push_str(&format!(
            " (it is held by {} with sequence number {}: freed and reallocated since)",
            handle.as_deref().unwrap_or("no handle"),
            sequence
                .map(|s| s.to_string())
                .unwrap_or_else(|| "none".into())
        ));
    }
    IpamError::NotAllocated { ip, expected }
}
