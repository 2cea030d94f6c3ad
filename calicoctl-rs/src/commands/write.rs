//! `create`, `apply` and `replace`: every document of every file is read and checked
//! first, then written one by one. `create` and `replace` also check beforehand that
//! every resource is absent (present), so a failure writes nothing.

use api::datastore::{Backend, Datastore, Error};
use api::resources::Resource;

use super::read_resources;
use super::retry::{Outcome, write_with_retry};
use crate::cli::{CreateArgs, FileArgs};
use crate::error::CliError;
use crate::kinds::{AnyResource, CliResource};
use crate::output::exit;
use crate::session::Session;
use crate::with_any;

pub async fn create(session: &mut Session<'_>, args: CreateArgs) -> Result<i32, CliError> {
    let documents = read_resources(session, &args.files.files)?;
    let store = session.store().await?;
    let mut absent = Vec::new();
    for document in documents {
        let exists = with_any!(&document.resource, r => exists(&*store, r).await?);
        match (exists, args.skip_exists) {
            (false, _) => absent.push(document.resource),
            (true, true) => {
                let line = format!("{} exists, left as it is", reference(&document.resource));
                session.print(&format!("{line}\n"))?;
            }
            (true, false) => {
                return Err(CliError::Refused(format!(
                    "{}: {} already exists: nothing was created; use apply to update it, or \
                     --skip-exists to leave it",
                    document.origin,
                    document.resource.describe()
                )));
            }
        }
    }
    for resource in absent {
        let line = with_any!(resource, r => {
            store.create(&r).await?;
            format!("{} created\n", r.reference())
        });
        session.print(&line)?;
    }
    Ok(exit::OK)
}

pub async fn apply(session: &mut Session<'_>, args: FileArgs) -> Result<i32, CliError> {
    let documents = read_resources(session, &args.files)?;
    let store = session.store().await?;
    for document in documents {
        let line = with_any!(document.resource, r => {
            // The file's resourceVersion, if any, is a stale read: apply writes over
            // whatever is there, at the revision it reads.
            let outcome =
                write_with_retry(&*store, r.name(), |stored| Ok(r.clone().written_over(stored)))
                    .await?;
            format!("{} {}\n", r.reference(), outcome.verb())
        });
        session.print(&line)?;
    }
    Ok(exit::OK)
}

pub async fn replace(session: &mut Session<'_>, args: FileArgs) -> Result<i32, CliError> {
    let documents = read_resources(session, &args.files)?;
    let store = session.store().await?;
    for document in &documents {
        if !with_any!(&document.resource, r => exists(&*store, r).await?) {
            return Err(CliError::Refused(format!(
                "{}: {} does not exist: nothing was replaced; use create or apply",
                document.origin,
                document.resource.describe()
            )));
        }
    }
    for document in documents {
        let line = with_any!(document.resource, r => {
            let outcome = replace_one(&*store, r.clone()).await?;
            format!("{} {}\n", r.reference(), replaced(outcome))
        });
        session.print(&line)?;
    }
    Ok(exit::OK)
}

fn replaced(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Unchanged => "unchanged",
        _ => "replaced",
    }
}

/// With the file's `resourceVersion`: exactly that version is replaced, or nothing.
/// Without: whatever is stored is.
async fn replace_one<R: CliResource>(
    store: &dyn Backend,
    resource: R,
) -> Result<Outcome, CliError> {
    let Some(read_at) = resource.revision() else {
        return write_with_retry(store, resource.name(), |current| match current {
            Some(stored) => Ok(resource.clone().written_over(Some(stored))),
            None => Err(not_found::<R>(resource.name())),
        })
        .await;
    };
    // The agent's fields of what this version held stay; the write fails if it is
    // no longer the stored version.
    let stored = store.get::<R>(resource.name()).await?;
    let resource = resource.written_over(Some(&stored));
    match store.update(&resource).await {
        Ok(_) => Ok(Outcome::Configured),
        Err(Error::Conflict { actual, .. }) => {
            let now = actual
                .map(|a| format!(" (it is at {a})"))
                .unwrap_or_default();
            Err(CliError::Refused(format!(
                "{} {:?} changed since resourceVersion {read_at} was read{now}: get it again \
                 and redo the change, or drop metadata.resourceVersion to replace whatever is \
                 stored",
                R::KIND,
                resource.name()
            )))
        }
        Err(e) => Err(e.into()),
    }
}

pub fn not_found<R: CliResource>(name: &str) -> CliError {
    CliError::Datastore(Error::NotFound {
        kind: R::KIND,
        name: name.to_owned(),
    })
}

async fn exists<R: CliResource>(store: &dyn Backend, resource: &R) -> Result<bool, CliError> {
    match store.get::<R>(resource.name()).await {
        Ok(_) => Ok(true),
        Err(Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn reference(resource: &AnyResource) -> String {
    with_any!(resource, r => r.reference())
}
