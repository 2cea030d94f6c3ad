//! One document, by its `apiVersion` and `kind`, into a validated resource: tabby's
//! own kinds directly, Calico's through [`crate::calico`].

use std::fmt::Display;

use api::resources::API_VERSION;
use serde::Deserializer;

use crate::calico;
use crate::kinds::{AnyResource, CliResource, ResourceKind};
use crate::with_kind;

#[derive(Debug)]
pub struct Decoded {
    /// `None` for a Calico kind tabby takes as its daemons' flags: the notes say which.
    pub resource: Option<AnyResource>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The document does not have the kind's shape: a field that is unknown, missing
    /// or of the wrong type, as the deserializer reports it.
    Parse(String),
    /// It has the shape but not valid content; the message carries its field path.
    Invalid(String),
    /// A Calico document with settings tabby cannot honour: every one of them (and
    /// the invalid value that stopped the conversion, if one did), with its path.
    Refused(Vec<String>),
}

impl Failure {
    pub fn parse(error: impl Display) -> Self {
        Failure::Parse(error.to_string())
    }

    pub fn invalid(error: impl Display) -> Self {
        Failure::Invalid(error.to_string())
    }
}

pub fn decode<'de, D>(api_version: &str, kind: &str, document: D) -> Result<Decoded, Failure>
where
    D: Deserializer<'de>,
{
    if api_version == API_VERSION {
        let Some(kind) = ResourceKind::from_kind_field(kind) else {
            return Err(Failure::Invalid(unknown_kind(kind)));
        };
        let resource = with_kind!(kind, R => native::<R, D>(document)?.into_any());
        return Ok(Decoded {
            resource: Some(resource),
            notes: Vec::new(),
        });
    }
    if calico::GROUPS.contains(&api_version) {
        return calico::decode(kind, document);
    }
    Err(Failure::Invalid(format!(
        "apiVersion: {api_version:?} is not {API_VERSION:?} (Calico's {:?} is converted too)",
        calico::GROUPS[0]
    )))
}

/// A tabby resource from a value (JSON or YAML) written over `stored`, as `patch`
/// rebuilds one; parse errors carry the field path.
pub fn decode_value<'de, R: CliResource, V: Deserializer<'de>>(
    value: V,
    stored: &R,
) -> Result<R, Failure> {
    let mut track = serde_path_to_error::Track::new();
    let tracked = serde_path_to_error::Deserializer::new(value, &mut track);
    let resource =
        R::deserialize(tracked).map_err(|e| Failure::Parse(format!("{}: {e}", track.path())))?;
    checked(resource.written_over(Some(stored)))
}

/// Deserialises, fills in defaults and validates.
fn native<'de, R: CliResource, D: Deserializer<'de>>(document: D) -> Result<R, Failure> {
    checked(R::deserialize(document).map_err(Failure::parse)?)
}

fn checked<R: CliResource>(mut resource: R) -> Result<R, Failure> {
    resource.apply_defaults();
    resource.validate().map_err(Failure::invalid)?;
    Ok(resource)
}

/// Tabby kinds the CLI does not write, with what to use instead.
const NOT_WRITTEN_HERE: [(&str, &str); 4] = [
    (
        "WorkloadEndpoint",
        "the CNI plugin writes one per pod interface; `get workloadendpoints` shows them",
    ),
    (
        "IPAMBlock",
        "it is IPAM's own state: use the `ipam` commands",
    ),
    (
        "BlockAffinity",
        "it is IPAM's own state: use the `ipam` commands",
    ),
    (
        "IPAMHandle",
        "it is IPAM's own state: use the `ipam` commands",
    ),
];

fn unknown_kind(kind: &str) -> String {
    if let Some((_, why)) = NOT_WRITTEN_HERE.iter().find(|(k, _)| *k == kind) {
        return format!("kind: {kind:?} cannot be written with calicoctl-rs: {why}");
    }
    let names = ResourceKind::kind_names();
    let closest = names
        .iter()
        .map(|name| {
            (
                strsim::levenshtein(&kind.to_lowercase(), &name.to_lowercase()),
                *name,
            )
        })
        .filter(|(distance, _)| *distance <= 2)
        .min();
    match closest {
        Some((_, name)) => format!("kind: {kind:?} is not a tabby kind: did you mean {name}?"),
        None => format!(
            "kind: {kind:?} is not a tabby kind: use one of {}",
            names.join(", ")
        ),
    }
}
