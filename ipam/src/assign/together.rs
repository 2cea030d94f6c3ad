//! A round's writes in one datastore round trip: every planned block whose cached
//! copy has the addresses, and the request's handle, in one `Backend::write_all`
//! (one etcd transaction: the blocks' compare-and-swaps and the handle's create
//! succeed or fail together). A block the transaction could not write then goes
//! the single-object way (read again when its copy was stale; a block found gone
//! gives nothing), and so does one whose cached copy had nothing to give. A handle
//! the transaction could not create goes alone beside those blocks (so a handle
//! that exists is still found, for a repeated ADD), or, with no block to try
//! again, is left to the next round's transaction. The common case is one round
//! trip; a contended one costs what it cost before.

use api::datastore::stored::decode;
use api::datastore::{Backend, Datastore, Error as DsError, Write};
use api::resources::{AllocationAttribute, IPAMBlock, IPAMHandle};
use futures::future::join_all;
use tracing::Instrument;

use super::take::{Take, prepare, take_from};
use crate::cas::{Edited, retryable};
use crate::error::Result;
use crate::handles::Assignment;

/// A take's block name, whether it is borrowed, and the outcome of its edit.
pub(super) type Taken = (String, bool, Result<Edited<Vec<Assignment>>>);

/// What happened to a round's writes.
pub(super) struct Written {
    /// Per take, in the plan's order.
    pub(super) takes: Vec<Taken>,
    /// The handle's create, when one was asked for and made (`None`: left for the
    /// next round).
    pub(super) handle: Option<Result<(), DsError>>,
}

/// Writes `plan`'s takes and creates `handle` (when given).
pub(super) async fn write(
    store: &dyn Backend,
    node: &str,
    plan: Vec<Take>,
    holder: &AllocationAttribute,
    handle: Option<IPAMHandle>,
) -> Result<Written> {
    let mut batch = Vec::new();
    let mut writes = Vec::new();
    let mut alone = Vec::new();
    for (index, take) in plan.into_iter().enumerate() {
        match prepare(node, &take, holder) {
            Some((block, assigned)) => {
                writes.push(Write::update(&block)?);
                batch.push((index, take, assigned));
            }
            None => alone.push((index, take, true)),
        }
    }
    if let Some(handle) = &handle {
        writes.push(Write::create(handle)?);
    }
    let mut results = match writes.is_empty() {
        true => Vec::new(),
        false => {
            let span = tracing::debug_span!(target: "stage", "datastore.write_all");
            store.write_all(writes).instrument(span).await
        }
    };
    let mut created = handle
        .as_ref()
        .map(|_| results.pop().expect("the handle's write").map(drop));

    let mut done = Vec::new();
    for ((index, take, assigned), result) in batch.into_iter().zip(results) {
        let edited = match result {
            Ok(record) => Ok(Edited {
                block: Some(decode::<IPAMBlock>(record)?),
                value: Some(assigned),
            }),
            // Deleted since it was cached: nothing to take from it.
            Err(DsError::NotFound { .. }) => Ok(Edited {
                block: None,
                value: None,
            }),
            // Left undone by another write of the transaction: the copy is current.
            Err(DsError::NotWritten { .. }) => {
                alone.push((index, take, false));
                continue;
            }
            Err(e) if retryable(&e) => {
                alone.push((index, take, true));
                continue;
            }
            Err(e) => Err(e.into()),
        };
        done.push((index, take.name, take.borrowed, edited));
    }
    // A handle the transaction left undone goes alone, beside the blocks tried
    // again (which take addresses for it); with none to try, the next round's
    // transaction carries it.
    let handle_again = match (&created, handle) {
        (Some(Err(DsError::NotWritten { .. })), Some(handle)) if !alone.is_empty() => Some(handle),
        (Some(Err(DsError::NotWritten { .. })), _) => {
            created = None;
            None
        }
        _ => None,
    };
    let singles = join_all(alone.into_iter().map(|(index, take, fresh)| async move {
        let (name, borrowed) = (take.name.clone(), take.borrowed);
        let edited = take_from(store, node, take, holder, fresh).await;
        (index, name, borrowed, edited)
    }));
    let create = async {
        match &handle_again {
            Some(handle) => Some(store.create(handle).await.map(drop)),
            None => None,
        }
    };
    let (singles, again) = futures::join!(singles, create);
    if again.is_some() {
        created = again;
    }
    done.extend(singles);
    done.sort_by_key(|(index, ..)| *index);
    Ok(Written {
        takes: done
            .into_iter()
            .map(|(_, name, borrowed, edited)| (name, borrowed, edited))
            .collect(),
        handle: created,
    })
}
