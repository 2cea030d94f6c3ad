//! `patch` and `label`: a change computed from a fresh read and written at that
//! read's revision, recomputed when someone else wrote in between.

use std::collections::BTreeMap;

use api::datastore::Backend;
use api::resources::Resource;

use super::retry::write_with_retry;
use super::write::not_found;
use crate::cli::{LabelArgs, PatchArgs};
use crate::error::CliError;
use crate::input::decode::{Failure, decode_value};
use crate::kinds::CliResource;
use crate::merge_patch;
use crate::output::{exit, json};
use crate::session::Session;
use crate::with_kind;

pub async fn patch(session: &mut Session<'_>, args: PatchArgs) -> Result<i32, CliError> {
    // YAML is a superset of JSON: one parser takes both forms of the patch.
    let patch: serde_json::Value = yaml_serde::from_str(&args.patch)
        .map_err(|e| CliError::Usage(format!("--patch is neither JSON nor YAML: {e}")))?;
    if !patch.is_object() {
        return Err(CliError::Usage(format!(
            "--patch must be an object like {{\"spec\": {{...}}}}, not {patch}"
        )));
    }
    let kind = super::writable(args.kind)?;
    let store = session.store().await?;
    let line = with_kind!(kind, R => {
        let outcome = write_with_retry::<R>(&*store, &args.name, |current| {
            let current = current.ok_or_else(|| not_found::<R>(&args.name))?;
            patched(current, &patch)
        })
        .await?;
        format!("{}/{} {}\n", R::KIND.to_lowercase(), args.name, patch_verb(outcome.verb()))
    });
    session.print(&line)?;
    Ok(exit::OK)
}

fn patch_verb(verb: &str) -> &str {
    if verb == "configured" {
        "patched"
    } else {
        verb
    }
}

/// `current` with `patch` merged in, checked like any resource read from a file.
fn patched<R: CliResource>(current: &R, patch: &serde_json::Value) -> Result<R, CliError> {
    let mut value = json(current);
    merge_patch::apply(&mut value, patch);
    for (pointer, what) in [
        ("/apiVersion", "apiVersion"),
        ("/kind", "kind"),
        ("/metadata/name", "metadata.name"),
    ] {
        if value.pointer(pointer) != json(current).pointer(pointer) {
            return Err(CliError::Usage(format!(
                "the patch changes {what}, which a patch cannot; create a new resource instead"
            )));
        }
    }
    let invalid = |message: String| {
        CliError::Refused(format!(
            "{} {:?}: the patched resource is invalid: {message}; nothing was written",
            R::KIND,
            current.name()
        ))
    };
    decode_value::<R, _>(value, current).map_err(|failure| match failure {
        Failure::Parse(message) | Failure::Invalid(message) => invalid(message),
        Failure::Refused(messages) => invalid(messages.join("; ")),
    })
}

pub async fn label(session: &mut Session<'_>, args: LabelArgs) -> Result<i32, CliError> {
    let changes = label_changes(&args)?;
    let kind = super::writable(args.kind)?;
    let store = session.store().await?;
    let line = with_kind!(kind, R => {
        let outcome = relabel::<R>(&*store, &args, &changes).await?;
        let verb = if outcome == "configured" { "labeled" } else { outcome };
        format!("{}/{} {verb}\n", R::KIND.to_lowercase(), args.name)
    });
    session.print(&line)?;
    Ok(exit::OK)
}

/// Label key → new value (`None`: remove).
type LabelChanges = BTreeMap<String, Option<String>>;

fn label_changes(args: &LabelArgs) -> Result<LabelChanges, CliError> {
    let mut changes = BTreeMap::new();
    for label in &args.labels {
        let (key, value) = match (label.split_once('='), args.remove) {
            (None, true) => (label.clone(), None),
            (Some(_), true) => {
                return Err(CliError::Usage(format!(
                    "{label:?}: --remove takes label keys, not KEY=VALUE"
                )));
            }
            (Some((key, value)), false) => (key.to_owned(), Some(value.to_owned())),
            (None, false) => {
                return Err(CliError::Usage(format!(
                    "{label:?} is not KEY=VALUE (to remove the label, add --remove)"
                )));
            }
        };
        changes.insert(key, value);
    }
    Ok(changes)
}

async fn relabel<R: CliResource>(
    store: &dyn Backend,
    args: &LabelArgs,
    changes: &LabelChanges,
) -> Result<&'static str, CliError> {
    let outcome = write_with_retry::<R>(store, &args.name, |current| {
        let mut next = current.ok_or_else(|| not_found::<R>(&args.name))?.clone();
        let labels = &mut next.metadata_mut().labels;
        for (key, value) in changes {
            match (labels.get(key), value) {
                (Some(old), Some(new)) if old != new && !args.overwrite => {
                    return Err(CliError::Refused(format!(
                        "{} {:?} already has label {key}={old}: add --overwrite to change it",
                        R::KIND,
                        args.name
                    )));
                }
                (None, None) => {
                    return Err(CliError::Refused(format!(
                        "{} {:?} has no label {key:?} to remove",
                        R::KIND,
                        args.name
                    )));
                }
                (_, Some(new)) => {
                    labels.insert(key.clone(), new.clone());
                }
                (_, None) => {
                    labels.remove(key);
                }
            }
        }
        next.validate()
            .map_err(|e| CliError::Usage(format!("{} {:?}: {e}", R::KIND, args.name)))?;
        Ok(next)
    })
    .await?;
    Ok(outcome.verb())
}
