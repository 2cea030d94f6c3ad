//! How a resource becomes a stored record and back: the one rule for what is read.
//!
//! - Written: defaults, then validation, so nothing invalid is stored through tabby;
//!   fields set aside when the object was read are written back as they were.
//! - Read: a stored object is input. A newer tabby may have written it during a
//!   rolling upgrade, or an operator with kubectl or etcdctl, past tabby's checks. So
//!   fields this version's schema does not know are set aside (as the API server
//!   prunes fields its CRD schema does not know) and kept in the object's
//!   [`Metadata::set_aside`](crate::resources::Metadata), then the rest is decoded
//!   strictly, defaulted and validated like an object written through the API. What
//!   still fails is [`Error::Corrupt`]: `get` returns it, lists and watches skip the
//!   object and report it ([`super::skipped`]).
//! - YAML a person writes (calicoctl-rs) stays strict: an unknown field there is a
//!   typo, reported with its line ([`crate::yaml`]).

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use serde_json::{Map, Value};

use super::{Error, Record, Result};
use crate::resources::{Resource, SetAside, SetAsideField, ValidationError};

/// Why a stored object cannot be read.
#[derive(Debug)]
pub enum Unreadable {
    /// Not JSON at all (etcd holds bytes).
    NotJson(serde_json::Error),
    /// A field of the wrong type or form, at `path`.
    Decode {
        path: String,
        source: serde_json::Error,
    },
    /// Decoded, but not a valid resource.
    Invalid(ValidationError),
}

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotJson(e) => write!(f, "not JSON: {e}"),
            Self::Decode { path, source } if path.is_empty() || path == "." => {
                write!(f, "{source}")
            }
            Self::Decode { path, source } => write!(f, "{path}: {source}"),
            Self::Invalid(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Unreadable {}

fn corrupt<R: Resource>(name: &str, problem: Unreadable) -> Error {
    Error::Corrupt {
        kind: R::KIND,
        name: name.to_owned(),
        problem,
    }
}

/// Defaults, validation, then JSON without the revision (the backend owns it) and
/// with the fields set aside at read.
pub fn encode<R: Resource>(resource: &R) -> Result<Value> {
    let mut resource = resource.clone();
    resource.apply_defaults();
    resource.validate().map_err(|source| Error::Invalid {
        kind: R::KIND,
        name: resource.name().to_owned(),
        source,
    })?;
    resource.metadata_mut().resource_version = None;
    let mut value = serde_json::to_value(&resource).map_err(|source| {
        let path = String::new();
        corrupt::<R>(resource.name(), Unreadable::Decode { path, source })
    })?;
    restore(&mut value, &resource.metadata().set_aside);
    Ok(value)
}

/// The resource a record holds, at the record's revision: unknown fields set aside,
/// defaults applied, validated.
pub fn decode<R: Resource>(record: Record) -> Result<R> {
    let Record {
        name,
        revision,
        mut value,
    } = record;
    let mut set_aside = Vec::new();
    prune_envelope(&mut value, R::KIND, &mut set_aside);
    let mut resource = R::deserialize(&value).map_err(|_| {
        // Again, tracking the path, only to say where.
        let failed = serde_path_to_error::deserialize::<_, R>(&value).err();
        let (path, source) = match failed {
            Some(e) => (e.path().to_string(), e.into_inner()),
            None => (String::new(), serde::de::Error::custom("does not decode")),
        };
        corrupt::<R>(&name, Unreadable::Decode { path, source })
    })?;
    resource.apply_defaults();
    resource
        .validate()
        .map_err(|e| corrupt::<R>(&name, Unreadable::Invalid(e)))?;
    if !set_aside.is_empty() {
        let aside = SetAside(set_aside);
        tracing::debug!(kind = R::KIND, %name, fields = ?aside.paths(),
            "keeping fields this version does not know");
        resource.metadata_mut().set_aside = aside;
    }
    resource.metadata_mut().resource_version = Some(revision);
    Ok(resource)
}

/// The fields of `metadata` tabby reads (the others are the server's).
const METADATA_FIELDS: [&str; 4] = ["name", "resourceVersion", "labels", "annotations"];

/// Sets aside what the kind's schema does not know, at the top, in `metadata` and
/// throughout `spec`.
fn prune_envelope(value: &mut Value, kind: &str, set_aside: &mut Vec<SetAsideField>) {
    let Some(schema) = schema_of(kind) else {
        return;
    };
    let Some(object) = value.as_object_mut() else {
        return;
    };
    let mut path = Vec::new();
    prune_fields(
        object,
        &mut path,
        |name| schema["properties"].get(name).is_some(),
        set_aside,
    );
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        path.push("metadata".to_owned());
        prune_fields(
            metadata,
            &mut path,
            |name| METADATA_FIELDS.contains(&name),
            set_aside,
        );
        path.pop();
    }
    if let Some(spec) = object.get_mut("spec") {
        path.push("spec".to_owned());
        prune(
            spec,
            &schema["properties"]["spec"],
            &mut path,
            Some(set_aside),
        );
    }
}

/// Removes the fields `known` does not accept from `object`, into `set_aside`.
fn prune_fields(
    object: &mut Map<String, Value>,
    parents: &mut [String],
    known: impl Fn(&str) -> bool,
    set_aside: &mut Vec<SetAsideField>,
) {
    let unknown: Vec<String> = object.keys().filter(|k| !known(k)).cloned().collect();
    for name in unknown {
        if let Some(value) = object.remove(&name) {
            set_aside.push(SetAsideField {
                parents: parents.to_vec(),
                name,
                value,
            });
        }
    }
}

/// Prunes `value` to `schema`. Inside arrays (`set_aside` is `None`) unknown fields
/// are dropped: items have no stable path to write them back to.
fn prune(
    value: &mut Value,
    schema: &Value,
    path: &mut Vec<String>,
    mut set_aside: Option<&mut Vec<SetAsideField>>,
) {
    match value {
        Value::Object(object) => {
            if let Some(properties) = schema["properties"].as_object() {
                let mut dropped = Vec::new();
                prune_fields(
                    object,
                    path,
                    |name| properties.contains_key(name),
                    set_aside.as_deref_mut().unwrap_or(&mut dropped),
                );
                for (name, child) in object.iter_mut() {
                    path.push(name.clone());
                    prune(child, &properties[name], path, set_aside.as_deref_mut());
                    path.pop();
                }
            } else if schema["additionalProperties"].is_object() {
                for (name, child) in object.iter_mut() {
                    path.push(name.clone());
                    let entry = &schema["additionalProperties"];
                    prune(child, entry, path, set_aside.as_deref_mut());
                    path.pop();
                }
            }
        }
        Value::Array(items) if schema["items"].is_object() => {
            for item in items {
                prune(item, &schema["items"], path, None);
            }
        }
        _ => {}
    }
}

/// Puts fields set aside back where they were, unless that object is gone or the
/// field is set again.
fn restore(value: &mut Value, set_aside: &SetAside) {
    for field in &set_aside.0 {
        let mut target = Some(&mut *value);
        for parent in &field.parents {
            target = target.and_then(|v| v.get_mut(parent));
        }
        if let Some(object) = target.and_then(Value::as_object_mut) {
            object
                .entry(field.name.clone())
                .or_insert_with(|| field.value.clone());
        }
    }
}

/// The CRD schema of `kind` (`openAPIV3Schema`): what this version knows.
fn schema_of(kind: &str) -> Option<&'static Value> {
    static SCHEMAS: OnceLock<HashMap<String, Value>> = OnceLock::new();
    SCHEMAS
        .get_or_init(|| {
            crate::crd::definitions()
                .into_iter()
                .filter_map(|mut crd| {
                    let kind = crd["spec"]["names"]["kind"].as_str()?.to_owned();
                    let schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].take();
                    Some((kind, schema))
                })
                .collect()
        })
        .get(kind)
}
