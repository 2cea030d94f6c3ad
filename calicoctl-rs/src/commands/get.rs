//! `get`: one kind, by name or all of it (paged through), in any output format.

use api::datastore::{Backend, Datastore, Error, list_all};
use api::resources::{BGPConfiguration, DEFAULT_BGP_CONFIGURATION};

use crate::cli::GetArgs;
use crate::error::CliError;
use crate::kinds::{CliResource, ResourceKind};
use crate::output::{self, OutputFormat, exit};
use crate::session::Session;
use crate::table::TableContext;
use crate::with_kind;

pub async fn get(session: &mut Session<'_>, args: GetArgs) -> Result<i32, CliError> {
    let store = session.store().await?;
    with_kind!(args.kind, R => get_kind::<R>(session, &*store, args).await)
}

async fn get_kind<R: CliResource>(
    session: &mut Session<'_>,
    store: &dyn Backend,
    args: GetArgs,
) -> Result<i32, CliError> {
    let mut missing = Vec::new();
    let mut resources: Vec<R> = if args.names.is_empty() {
        list_all(store, args.selector).await?.items
    } else {
        let mut found = Vec::new();
        for name in &args.names {
            match store.get::<R>(name).await {
                Ok(resource) => found.push(resource),
                Err(e @ Error::NotFound { .. }) => missing.push(e),
                Err(e) => return Err(e.into()),
            }
        }
        found
    };
    if let Some(namespace) = &args.namespace {
        resources.retain(|r| r.namespace().is_none_or(|n| n == namespace));
    }
    let context = table_context(store, args.output, R::TYPE).await?;
    let single = args.names.len() == 1;
    if !(resources.is_empty() && single) {
        session.print(&output::render(&resources, args.output, single, &context))?;
    }
    for error in &missing {
        session.warn(&format!("error: {error}"))?;
    }
    Ok(if missing.is_empty() {
        exit::OK
    } else {
        exit::PROBLEM
    })
}

/// The node table shows the cluster's AS for nodes without their own.
async fn table_context(
    store: &dyn Backend,
    format: OutputFormat,
    kind: ResourceKind,
) -> Result<TableContext, CliError> {
    let mut context = TableContext::default();
    let tabular = matches!(format, OutputFormat::Table | OutputFormat::Wide);
    if !tabular || kind != ResourceKind::Node {
        return Ok(context);
    }
    match store
        .get::<BGPConfiguration>(DEFAULT_BGP_CONFIGURATION)
        .await
    {
        Ok(config) => {
            if let Some(asn) = config.spec.as_number {
                context.cluster_as = asn;
            }
        }
        Err(Error::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(context)
}
