//! Compare-and-swap edits: read (or start from a cached copy), edit in memory,
//! write at the revision read, and on a conflict read again and redo the edit.
//!
//! An edit that decides to change nothing is never trusted on a cached copy: the
//! object is read once more and the edit redone, so "no free address" or "nothing
//! of this handle here" always reflects the datastore.

use api::datastore::{Backend, Datastore, Error as DsError};
use api::resources::{IPAMBlock, IPAMBlockSpec, IPAMHandle, IPAMHandleSpec, Resource};

use crate::error::{IpamError, Result};

/// Writes of one object tried before giving up to contention.
pub const ATTEMPTS: usize = 40;

/// What an edit wants done with the object it was shown. An edit that returns
/// `Keep` must leave the object as it found it.
#[derive(Debug)]
pub enum Edit<T> {
    /// Nothing to write.
    Keep(T),
    Write(T),
    Delete(T),
}

/// The outcome of [`edit_block`]: the block as stored afterwards (`None`: it does not
/// exist) and the edit's value (`None`: there was no block to edit).
#[derive(Debug)]
pub struct Edited<T> {
    pub block: Option<IPAMBlock>,
    pub value: Option<T>,
}

/// Edits block `name` by compare-and-swap, starting from `cached` when given.
pub async fn edit_block<T>(
    store: &dyn Backend,
    name: &str,
    cached: Option<IPAMBlock>,
    mut edit: impl FnMut(&mut IPAMBlockSpec) -> Edit<T>,
) -> Result<Edited<T>> {
    let gone = || Edited {
        block: None,
        value: None,
    };
    let (mut current, mut from_cache) = match cached {
        Some(block) => (block, true),
        None => match read::<IPAMBlock>(store, name).await? {
            Some(block) => (block, false),
            None => return Ok(gone()),
        },
    };
    for _ in 0..ATTEMPTS {
        // Edited in place: an edit that keeps leaves the spec as it was, and after a
        // failed write the block is read again anyway.
        let revision = current.revision();
        let outcome = match edit(&mut current.spec) {
            Edit::Keep(value) if !from_cache => {
                return Ok(Edited {
                    block: Some(current),
                    value: Some(value),
                });
            }
            Edit::Keep(_) => Err(()),
            Edit::Write(value) => match store.update(&current).await {
                Ok(stored) => Ok((Some(stored), value)),
                Err(e) if retryable(&e) => Err(()),
                Err(e) => return Err(e.into()),
            },
            Edit::Delete(value) => match store.delete::<IPAMBlock>(name, revision).await {
                Ok(_) => Ok((None, value)),
                Err(e) if retryable(&e) => Err(()),
                Err(e) => return Err(e.into()),
            },
        };
        if let Ok((block, value)) = outcome {
            return Ok(Edited {
                block,
                value: Some(value),
            });
        }
        match read::<IPAMBlock>(store, name).await? {
            Some(block) => (current, from_cache) = (block, false),
            None => return Ok(gone()),
        }
    }
    Err(IpamError::Contention {
        what: format!("block {name}"),
        attempts: ATTEMPTS,
    })
}

/// Edits handle `id` by compare-and-swap; the edit sees `None` when it does not
/// exist and may create it (return `Some`) or delete it (return `None`).
pub async fn edit_handle(
    store: &dyn Backend,
    id: &str,
    mut edit: impl FnMut(Option<&IPAMHandleSpec>) -> Option<IPAMHandleSpec>,
) -> Result<()> {
    for _ in 0..ATTEMPTS {
        let current = read::<IPAMHandle>(store, id).await?;
        let wanted = edit(current.as_ref().map(|h| &h.spec));
        let written = match (current, wanted) {
            (None, None) => return Ok(()),
            (None, Some(spec)) => store.create(&IPAMHandle::new(id, spec)).await.map(drop),
            (Some(old), None) => store
                .delete::<IPAMHandle>(id, old.revision())
                .await
                .map(drop),
            (Some(old), Some(spec)) if spec == old.spec => return Ok(()),
            (Some(mut old), Some(spec)) => {
                old.spec = spec;
                store.update(&old).await.map(drop)
            }
        };
        match written {
            Ok(()) => return Ok(()),
            Err(e) if retryable(&e) || matches!(e, DsError::AlreadyExists { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(IpamError::Contention {
        what: format!("handle {id}"),
        attempts: ATTEMPTS,
    })
}

/// Adds `delta` (per block CIDR, may be negative) to a handle's counts, creating
/// the handle when it is missing and deleting it when nothing is left.
pub async fn add_to_handle(
    store: &dyn Backend,
    id: &str,
    delta: &std::collections::BTreeMap<String, i64>,
) -> Result<()> {
    edit_handle(store, id, |current| {
        let mut spec = current.cloned().unwrap_or_else(|| IPAMHandleSpec {
            handle_id: id.to_owned(),
            block: Default::default(),
            deleted: false,
        });
        for (block, change) in delta {
            let count = i64::from(spec.block.get(block).copied().unwrap_or(0)) + change;
            match u32::try_from(count) {
                Ok(count) if count > 0 => {
                    spec.block.insert(block.clone(), count);
                }
                _ => {
                    spec.block.remove(block);
                }
            }
        }
        (!spec.block.is_empty()).then_some(spec)
    })
    .await
}

/// A resource, or `None` when it does not exist.
pub async fn read<R: Resource>(store: &dyn Backend, name: &str) -> Result<Option<R>> {
    match store.get::<R>(name).await {
        Ok(resource) => Ok(Some(resource)),
        Err(DsError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Every resource of a kind: `api::datastore::list_all` without its revision.
pub async fn list_all<R: Resource>(store: &dyn Backend) -> Result<Vec<R>> {
    Ok(api::datastore::list_all(store, None).await?.items)
}

/// A write lost to another writer (or the object went away): read again.
pub(crate) fn retryable(error: &DsError) -> bool {
    matches!(error, DsError::Conflict { .. } | DsError::NotFound { .. })
}
