//! tabby's resources: group `tabby.dev`, version `v1`, cluster-scoped, fields named as
//! Calico names them so an operator's `projectcalico.org/v3` YAML converts by changing
//! `apiVersion`.
//!
//! Every kind is an [`Object`] around its spec: `apiVersion`, `kind`, `metadata`,
//! `spec`. Unknown fields are rejected (a typo is an error, not a silently ignored
//! setting); [`Resource::validate`] checks the rest and names the field path and value
//! of what is wrong; [`Resource::apply_defaults`] fills in what the operator left out.

mod bgp;
mod ipam;
mod ippool;
mod meta;
mod node;
mod types;
mod workload;

use std::fmt::Debug;

use serde::de::{self, DeserializeOwned};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use bgp::*;
pub use ipam::*;
pub use ippool::*;
pub(crate) use meta::SetAsideField;
pub use meta::{Metadata, Revision, SetAside};
pub use node::*;
pub(crate) use types::parsed_str;
pub use types::*;
pub use workload::*;

/// The one `apiVersion` tabby accepts.
pub const API_VERSION: &str = "tabby.dev/v1";
/// The API group, as in CRD names (`ippools.tabby.dev`).
pub const GROUP: &str = "tabby.dev";
/// Calico's group: recognised only to tell the operator what to change.
const CALICO_API_VERSION: &str = "projectcalico.org/v3";

/// What is wrong with a resource: the field path, its value and the problem, as in
/// `spec.cidr: "10.0.0.0/33" is not a CIDR`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {value} {problem}")]
pub struct ValidationError {
    pub path: String,
    /// The offending value as written in Rust debug form (strings quoted).
    pub value: String,
    pub problem: String,
}

impl ValidationError {
    pub fn new(path: impl Into<String>, value: impl Debug, problem: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            value: format!("{value:?}"),
            problem: problem.into(),
        }
    }

    /// A required field that is not set.
    pub fn missing(path: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::rendered(path, "(unset)", problem)
    }

    /// With the value already rendered as the operator wrote it (JSON, say).
    pub fn rendered(
        path: impl Into<String>,
        value: impl Into<String>,
        problem: impl Into<String>,
    ) -> Self {
        Self {
            path: path.into(),
            value: value.into(),
            problem: problem.into(),
        }
    }
}

/// The kind-specific part of a resource.
pub trait Spec:
    Serialize + DeserializeOwned + Clone + Debug + PartialEq + Send + Sync + 'static
{
    const KIND: &'static str;
    /// Lower-case plural, as in URLs and storage keys (`ippools`).
    const PLURAL: &'static str;

    /// Fills in what the operator may leave out. Idempotent.
    fn apply_defaults(&mut self, _name: &str) {}

    /// Checks the spec; paths in errors start at `spec.`.
    fn validate(&self, name: &str) -> Result<(), ValidationError>;

    /// Fields of the spec (as written in JSON) that an update may not change. Kinds
    /// whose identity is spelled in their name (a block's CIDR, a handle's ID) leave
    /// this empty: `validate` already ties those fields to the name, which no update
    /// can change. An update of a kind with immutable fields costs the datastore one
    /// extra read, so the hot IPAM kinds have none.
    const IMMUTABLE: &'static [&'static str] = &[];

    /// Rules across fields the CRD's schema carries (CEL, `x-kubernetes-validations`
    /// on the spec), as (rule, message): the API server refuses what `validate`
    /// refuses before the object reaches tabby. `validate` stays the authority.
    const SCHEMA_RULES: &'static [(&'static str, &'static str)] = &[];

    /// Objects of this kind may not overlap one another ([`Spec::overlap`] says
    /// where): the datastore refuses to create one that overlaps another.
    const DISJOINT: bool = false;

    /// Where this object overlaps `other` (named `other_name`), as an error on this
    /// one; only asked of [`Spec::DISJOINT`] kinds.
    fn overlap(&self, _other: &Self, _other_name: &str) -> Option<ValidationError> {
        None
    }
}

/// What the datastore needs of every kind.
pub trait Resource:
    Serialize + DeserializeOwned + Clone + Debug + PartialEq + Send + Sync + 'static
{
    const KIND: &'static str;
    const PLURAL: &'static str;

    fn metadata(&self) -> &Metadata;
    fn metadata_mut(&mut self) -> &mut Metadata;
    /// Spec fields an update may not change; see [`Spec::IMMUTABLE`].
    const IMMUTABLE: &'static [&'static str];

    fn apply_defaults(&mut self);
    fn validate(&self) -> Result<(), ValidationError>;
    /// Checks that no [`Resource::IMMUTABLE`] field differs from `old` (both with
    /// defaults applied).
    fn validate_update(&self, old: &Self) -> Result<(), ValidationError>;
    /// See [`Spec::DISJOINT`].
    const DISJOINT: bool;
    /// Where this object overlaps `other`; see [`Spec::overlap`].
    fn overlap(&self, other: &Self) -> Option<ValidationError>;

    fn name(&self) -> &str {
        &self.metadata().name
    }

    /// The stored version this copy was read at; `None` before it is created.
    fn revision(&self) -> Option<Revision> {
        self.metadata().resource_version
    }
}

/// A resource of kind `S::KIND`: `apiVersion`, `kind`, `metadata`, `spec`.
#[derive(Debug, Clone, PartialEq)]
pub struct Object<S> {
    pub metadata: Metadata,
    pub spec: S,
}

impl<S: Spec> Object<S> {
    pub fn new(name: impl Into<String>, spec: S) -> Self {
        Self {
            metadata: Metadata::named(name),
            spec,
        }
    }
}

impl<S: Spec> Resource for Object<S> {
    const KIND: &'static str = S::KIND;
    const PLURAL: &'static str = S::PLURAL;
    const IMMUTABLE: &'static [&'static str] = S::IMMUTABLE;
    const DISJOINT: bool = S::DISJOINT;

    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut Metadata {
        &mut self.metadata
    }

    fn apply_defaults(&mut self) {
        self.spec.apply_defaults(&self.metadata.name);
    }

    fn validate(&self) -> Result<(), ValidationError> {
        self.metadata.validate()?;
        self.spec.validate(&self.metadata.name)
    }

    fn overlap(&self, other: &Self) -> Option<ValidationError> {
        self.spec.overlap(&other.spec, &other.metadata.name)
    }

    fn validate_update(&self, old: &Self) -> Result<(), ValidationError> {
        if S::IMMUTABLE.is_empty() {
            return Ok(());
        }
        let name = &self.metadata.name;
        let (new, old) = (spec_fields(&self.spec, name), spec_fields(&old.spec, name));
        for field in S::IMMUTABLE {
            let (now, was) = (new.get(*field), old.get(*field));
            if now != was {
                let shown =
                    |v: Option<&serde_json::Value>| v.map_or("unset".into(), |v| v.to_string());
                return Err(ValidationError {
                    path: format!("spec.{field}"),
                    value: shown(now),
                    problem: format!("cannot change (was {})", shown(was)),
                });
            }
        }
        Ok(())
    }
}

/// A spec's top-level fields as JSON, for comparing immutable ones.
fn spec_fields<S: Spec>(spec: &S, name: &str) -> serde_json::Map<String, serde_json::Value> {
    let mut spec = spec.clone();
    spec.apply_defaults(name);
    match serde_json::to_value(spec) {
        Ok(serde_json::Value::Object(fields)) => fields,
        _ => serde_json::Map::new(),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EnvelopeOut<'a, S> {
    api_version: &'static str,
    kind: &'static str,
    metadata: &'a Metadata,
    spec: &'a S,
}

impl<S: Spec> Serialize for Object<S> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        EnvelopeOut {
            api_version: API_VERSION,
            kind: S::KIND,
            metadata: &self.metadata,
            spec: &self.spec,
        }
        .serialize(serializer)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EnvelopeIn<S> {
    api_version: String,
    kind: String,
    metadata: Metadata,
    spec: S,
}

impl<'de, S: Spec> Deserialize<'de> for Object<S> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let envelope = EnvelopeIn::<S>::deserialize(deserializer)?;
        check_header(S::KIND, &envelope.api_version, &envelope.kind).map_err(de::Error::custom)?;
        Ok(Self {
            metadata: envelope.metadata,
            spec: envelope.spec,
        })
    }
}

/// Checks `apiVersion` and `kind` of a resource of kind `R`.
pub fn check_header_of<R: Resource>(api_version: &str, kind: &str) -> Result<(), ValidationError> {
    check_header(R::KIND, api_version, kind)
}

/// Checks `apiVersion` and `kind`; Calico's group gets an error saying what to change.
fn check_header(expected_kind: &str, api_version: &str, kind: &str) -> Result<(), ValidationError> {
    if api_version == CALICO_API_VERSION {
        return Err(ValidationError::new(
            "apiVersion",
            api_version,
            format!(
                "is Calico's API group: change it to {API_VERSION:?} \
                 (tabby uses Calico's field names)"
            ),
        ));
    }
    if api_version != API_VERSION {
        return Err(ValidationError::new(
            "apiVersion",
            api_version,
            format!("is not {API_VERSION:?}"),
        ));
    }
    if kind != expected_kind {
        return Err(ValidationError::new(
            "kind",
            kind,
            format!("is not {expected_kind:?}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
