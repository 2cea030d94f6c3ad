//! Calico's `projectcalico.org/v3` resources (and their `crd.projectcalico.org/v1`
//! storage form) converted to tabby's. tabby names its fields as Calico does, so most
//! fields carry over unchanged; what differs is mapped here, and what tabby cannot do
//! is refused with the field, the value, and what to do instead, never dropped
//! silently. Fields that change nothing about routing (log levels, API bookkeeping)
//! are dropped with a note.
//!
//! Each Calico kind is read into its own struct listing Calico's fields
//! (`deny_unknown_fields`, so a typo still fails with the line and column), then
//! converted, given tabby's defaults and validated like any tabby resource.

mod bgpconfig;
mod bgpfilter;
mod bgppeer;
mod ipam;
mod ippool;
mod meta;

use api::resources::{Object, Resource, Spec, ValidationError};
use api::selector::Selector;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Deserializer};

use crate::input::decode::{Decoded, Failure};
use crate::kinds::CliResource;

/// Calico's API group, and the CRD group its Kubernetes datastore stores objects in.
pub const GROUPS: [&str; 2] = ["projectcalico.org/v3", "crd.projectcalico.org/v1"];

/// Calico kinds with no tabby counterpart, and why.
const UNCONVERTIBLE: [(&str, &str); 6] = [
    (
        "Node",
        "tabby's agent writes each node's Node itself from the host's addresses",
    ),
    (
        "IPAMBlock",
        "IPAM state is not migrated: tabby's IPAM allocates afresh from the converted pools",
    ),
    (
        "BlockAffinity",
        "IPAM state is not migrated: tabby's IPAM allocates afresh from the converted pools",
    ),
    (
        "IPAMHandle",
        "IPAM state is not migrated: tabby's IPAM allocates afresh from the converted pools",
    ),
    (
        "FelixConfiguration",
        "tabby's agent is configured with flags and TABBY_* environment variables",
    ),
    (
        "KubeControllersConfiguration",
        "tabby's IPAM controller is configured with flags",
    ),
];

/// Converts one Calico document of kind `kind`.
pub fn decode<'de, D: Deserializer<'de>>(kind: &str, document: D) -> Result<Decoded, Failure> {
    match kind {
        "IPPool" => convert::<ippool::CalicoIPPoolSpec, _>(document),
        "BGPPeer" => convert::<bgppeer::CalicoBGPPeerSpec, _>(document),
        "BGPConfiguration" => convert::<bgpconfig::CalicoBGPConfigurationSpec, _>(document),
        "BGPFilter" => convert::<bgpfilter::CalicoBGPFilterSpec, _>(document),
        "IPReservation" => convert::<ipam::CalicoIPReservationSpec, _>(document),
        // The API kind, and the CRD kind it is stored as.
        "IPAMConfiguration" | "IPAMConfig" => convert::<ipam::CalicoIPAMConfigSpec, _>(document),
        _ => Err(Failure::Invalid(unconvertible_kind(kind))),
    }
}

fn unconvertible_kind(kind: &str) -> String {
    match UNCONVERTIBLE.iter().find(|(k, _)| *k == kind) {
        Some((_, why)) => format!("Calico kind {kind:?} is not converted: {why}; remove it"),
        None => format!(
            "Calico kind {kind:?} has no tabby equivalent (policy is out of tabby's scope); \
             converted kinds are IPPool, BGPPeer, BGPConfiguration, BGPFilter, \
             IPReservation and IPAMConfiguration: remove it"
        ),
    }
}

/// A Calico spec and how it becomes tabby's.
trait CalicoSpec: DeserializeOwned + Default {
    type Target: Spec;

    fn convert(self, name: &str, notes: &mut Notes) -> Result<Self::Target, ValidationError>;
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[serde(bound = "S: CalicoSpec")]
struct Envelope<S> {
    // Checked from the document's header before the envelope is read.
    #[serde(rename = "apiVersion")]
    _api_version: IgnoredAny,
    #[serde(rename = "kind")]
    _kind: IgnoredAny,
    #[serde(default)]
    metadata: meta::CalicoMetadata,
    #[serde(default)]
    spec: S,
}

fn convert<'de, S, D>(document: D) -> Result<Decoded, Failure>
where
    S: CalicoSpec,
    Object<S::Target>: CliResource,
    D: Deserializer<'de>,
{
    let envelope = Envelope::<S>::deserialize(document).map_err(Failure::parse)?;
    let mut notes = Notes::default();
    let metadata = envelope.metadata.convert(&mut notes);
    let spec = envelope
        .spec
        .convert(&metadata.name, &mut notes)
        .map_err(Failure::invalid)?;
    let mut resource = Object { metadata, spec };
    resource.apply_defaults();
    resource.validate().map_err(Failure::invalid)?;
    Ok(Decoded {
        resource: resource.into_any(),
        notes: notes.0,
    })
}

/// What a conversion dropped or rewrote, to tell the operator.
#[derive(Debug, Default)]
struct Notes(Vec<String>);

impl Notes {
    fn add(&mut self, note: impl Into<String>) {
        self.0.push(note.into());
    }
}

/// An error for a Calico setting tabby cannot honour.
fn refuse(path: &str, value: impl std::fmt::Debug, why: &str) -> ValidationError {
    ValidationError::new(path, value, format!("cannot be converted: {why}"))
}

/// Go's zero values stand for "unset" in Calico's API.
fn non_empty(text: Option<String>) -> Option<String> {
    text.filter(|t| !t.is_empty())
}

/// A Calico selector in tabby's grammar; empty means unset.
fn selector(path: &str, text: Option<String>) -> Result<Option<Selector>, ValidationError> {
    let Some(text) = non_empty(text) else {
        return Ok(None);
    };
    text.parse().map(Some).map_err(|e| {
        refuse(
            path,
            &text,
            &format!(
                "{e} (tabby's selectors have all(), ==, !=, in, not in, has(), !, && \
                 and ||): rewrite it with those"
            ),
        )
    })
}

#[cfg(test)]
mod tests;
