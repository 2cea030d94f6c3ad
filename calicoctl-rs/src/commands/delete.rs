//! `delete`: by kind and names, or every resource of files. Deleting an IP pool that
//! still holds allocations is refused (with how many, where, and how to proceed)
//! unless `--force`: pods would keep addresses no pool covers.

use std::collections::BTreeMap;

use api::datastore::{Backend, Datastore, Error};
use api::resources::{IPAMBlock, IPPool, Resource};
use ipam::inventory::Owner;
use ipam::table::AllocationTable;

use crate::cli::DeleteArgs;
use crate::error::CliError;
use crate::kinds::{CliResource, ResourceKind};
use crate::output::exit;
use crate::session::Session;
use crate::with_kind;

pub async fn delete(session: &mut Session<'_>, args: DeleteArgs) -> Result<i32, CliError> {
    let targets: Vec<(ResourceKind, String)> = match args.kind {
        Some(kind) if args.names.is_empty() => {
            return Err(CliError::Usage(format!(
                "name the {} to delete (delete does not delete a whole kind)",
                kind.name()
            )));
        }
        Some(kind) => {
            let kind = super::writable(kind)?;
            args.names.iter().map(|n| (kind, n.clone())).collect()
        }
        None => super::read_resources(session, &args.files)?
            .into_iter()
            .map(|d| (d.resource.kind(), d.resource.name().to_owned()))
            .collect(),
    };
    let store = session.store().await?;
    let mut failed = false;
    for (kind, name) in targets {
        let deleted = match kind {
            ResourceKind::IPPool => delete_pool(session, &*store, &name, args.force).await,
            _ => with_kind!(kind, R => delete_one::<R>(&*store, &name).await),
        };
        match deleted {
            Ok(reference) => session.print(&format!("{reference} deleted\n"))?,
            Err(CliError::Datastore(e @ Error::NotFound { .. })) if args.skip_not_found => {
                session.warn(&format!("skipped: {e}"))?;
            }
            Err(e) => {
                session.warn(&format!("error: {e}"))?;
                failed = true;
            }
        }
    }
    Ok(if failed { exit::PROBLEM } else { exit::OK })
}

async fn delete_one<R: CliResource>(store: &dyn Backend, name: &str) -> Result<String, CliError> {
    let deleted = store.delete::<R>(name, None).await?;
    Ok(deleted.reference())
}

async fn delete_pool(
    session: &mut Session<'_>,
    store: &dyn Backend,
    name: &str,
    force: bool,
) -> Result<String, CliError> {
    let pool: IPPool = store.get(name).await?;
    guard_pool(session, store, &pool, force).await?;
    // At the revision checked: a pool changed since (re-enabled, say) is not deleted.
    store.delete::<IPPool>(name, pool.revision()).await?;
    Ok(pool.reference())
}

/// Allocations inside `pool`, by the node that holds them (a borrowed address by
/// its borrower, as the `ipam` crate reads owners).
async fn allocations_by_node(
    store: &dyn Backend,
    pool: &IPPool,
) -> Result<BTreeMap<String, usize>, CliError> {
    let blocks: Vec<IPAMBlock> = api::datastore::list_all(store, None).await?.items;
    let mut by_node = BTreeMap::new();
    let in_pool = blocks
        .iter()
        .filter(|b| pool.spec.cidr.0.contains(&b.spec.cidr.0));
    for block in in_pool {
        for allocation in block.spec.allocations() {
            let owner = Owner::of(&allocation);
            let node = owner
                .node()
                .or(block.spec.affine_node())
                .unwrap_or("(no node)");
            *by_node.entry(node.to_owned()).or_insert(0) += 1;
        }
    }
    Ok(by_node)
}

async fn guard_pool(
    session: &mut Session<'_>,
    store: &dyn Backend,
    pool: &IPPool,
    force: bool,
) -> Result<(), CliError> {
    let by_node = allocations_by_node(store, pool).await?;
    let total: usize = by_node.values().sum();
    if total == 0 {
        return Ok(());
    }
    let nodes: Vec<String> = by_node
        .iter()
        .map(|(node, count)| format!("{count} on {node}"))
        .collect();
    let (name, cidr) = (&pool.metadata.name, pool.spec.cidr);
    let summary = format!(
        "IPPool {name:?} ({cidr}) still holds {total} allocation{} ({})",
        if total == 1 { "" } else { "s" },
        nodes.join(", ")
    );
    if force {
        return session.warn(&format!("warning: {summary}; deleting it anyway (--force)"));
    }
    Err(CliError::Refused(format!(
        "{summary}: disable it first (calicoctl-rs patch ippool {name} -p \
         '{{\"spec\":{{\"disabled\":true}}}}'), move those pods, see who is left with \
         `calicoctl-rs ipam show --pool {cidr} --show-allocations`, or delete anyway with \
         --force"
    )))
}
