//! `get`: one kind, by name or all of it (paged through), in any output format.

use api::datastore::{Backend, Datastore, Error, list_all};
use api::resources::{BGPConfiguration, DEFAULT_BGP_CONFIGURATION};

use crate::cli::GetArgs;
use crate::error::CliError;
use crate::kinds::{CliResource, ResourceKind};
use crate::output::{self, GetOutput, exit};
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
    let context = table_context(store, &args.output, R::TYPE).await?;
    let single = args.names.len() == 1;
    let text = match &args.output {
        GetOutput::Format(_) if resources.is_empty() && single => String::new(),
        GetOutput::Format(format) => output::render(&resources, *format, single, &context),
        GetOutput::CustomColumns(headings) => {
            output::custom_columns(&resources, headings, &context).map_err(CliError::Usage)?
        }
        GetOutput::GoTemplate(template) => {
            output::go_template(&resources, template).map_err(CliError::Usage)?
        }
        GetOutput::GoTemplateFile(path) => {
            let template = std::fs::read_to_string(path).map_err(CliError::io(format!(
                "-o go-template-file={}",
                path.display()
            )))?;
            output::go_template(&resources, &template).map_err(CliError::Usage)?
        }
    };
    session.print(&text)?;
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
    format: &GetOutput,
    kind: ResourceKind,
) -> Result<TableContext, CliError> {
    let mut context = TableContext::default();
    if !format.is_tabular() || kind != ResourceKind::Node {
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
