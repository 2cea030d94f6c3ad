//! Calico's `projectcalico.org/v3` resources (and their `crd.projectcalico.org/v1`
//! storage form) converted to tabby's. tabby names its fields as Calico does, so most
//! fields carry over unchanged; what differs is mapped here. A field tabby does
//! something else for is converted with a note saying what tabby does instead; a
//! field whose loss would silently change what the cluster does is refused with the
//! field, the value and what to do instead. A refusal stops only its own document,
//! and every refusal of the document is reported, not just the first.
//!
//! Each Calico kind is read into its own struct listing Calico's fields
//! (`deny_unknown_fields`, so a typo still fails with the line and column), then
//! converted, given tabby's defaults and validated like any tabby resource. A kind
//! tabby configures with flags ([`kubecontrollers`]) converts into notes alone.

mod bgpconfig;
mod bgpfilter;
mod bgppeer;
mod ipam;
mod ippool;
mod kubecontrollers;
mod meta;
mod node;

use std::fmt::Debug;

use api::resources::{Cidr, Object, Resource, Spec, ValidationError};
use api::selector::Selector;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Deserializer};

use crate::input::decode::{Decoded, Failure};
use crate::kinds::CliResource;

/// Calico's API group, and the CRD group its Kubernetes datastore stores objects in.
pub const GROUPS: [&str; 2] = ["projectcalico.org/v3", "crd.projectcalico.org/v1"];

/// Calico kinds with no tabby counterpart, and why.
const UNCONVERTIBLE: [(&str, &str); 4] = [
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
        "Node" => convert::<node::CalicoNodeSpec, _>(document),
        "KubeControllersConfiguration" => {
            settings::<kubecontrollers::CalicoKubeControllersSpec, _>(document)
        }
        _ => Err(Failure::Invalid(unconvertible_kind(kind))),
    }
}

fn unconvertible_kind(kind: &str) -> String {
    match UNCONVERTIBLE.iter().find(|(k, _)| *k == kind) {
        Some((_, why)) => format!("Calico kind {kind:?} is not converted: {why}; remove it"),
        None => format!(
            "Calico kind {kind:?} has no tabby equivalent (policy is out of tabby's scope); \
             converted kinds are IPPool, BGPPeer, BGPConfiguration, BGPFilter, \
             IPReservation, IPAMConfiguration, Node and KubeControllersConfiguration: \
             remove it"
        ),
    }
}

/// A Calico spec and how it becomes tabby's.
trait CalicoSpec: DeserializeOwned + Default {
    type Target: Spec;

    /// The tabby spec; what it cannot honour goes to `conversion` as a refusal
    /// (conversion goes on, so every refusal is found), what tabby does otherwise
    /// as a note. An `Err` is a value that is invalid in Calico too.
    fn convert(
        self,
        name: &str,
        conversion: &mut Conversion,
    ) -> Result<Self::Target, ValidationError>;
}

/// A Calico spec that tabby takes as flags of its daemons: it converts into notes
/// saying which.
trait CalicoSettings: DeserializeOwned + Default {
    fn convert(self, conversion: &mut Conversion);
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[serde(bound = "S: DeserializeOwned + Default")]
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
    /// What Calico's components reported (a Node's pod CIDRs and WireGuard keys, a
    /// controller's running configuration): read and dropped.
    #[serde(default)]
    status: Option<IgnoredAny>,
}

impl<S> Envelope<S> {
    fn read<'de, D: Deserializer<'de>>(document: D) -> Result<Self, Failure>
    where
        S: DeserializeOwned + Default,
    {
        Self::deserialize(document).map_err(Failure::parse)
    }
}

fn convert<'de, S, D>(document: D) -> Result<Decoded, Failure>
where
    S: CalicoSpec,
    Object<S::Target>: CliResource,
    D: Deserializer<'de>,
{
    let envelope = Envelope::<S>::read(document)?;
    let mut conversion = Conversion::default();
    let metadata = envelope.metadata.convert(&mut conversion);
    conversion.status(envelope.status);
    let converted = envelope.spec.convert(&metadata.name, &mut conversion);
    let spec = match (converted, conversion.refusals.is_empty()) {
        (Ok(spec), true) => spec,
        (Ok(_), false) => return Err(conversion.refused(None)),
        (Err(invalid), _) => return Err(conversion.refused(Some(invalid))),
    };
    let mut resource = Object { metadata, spec };
    resource.apply_defaults();
    resource.validate().map_err(Failure::invalid)?;
    Ok(Decoded {
        resource: Some(resource.into_any()),
        notes: conversion.notes,
    })
}

fn settings<'de, S, D>(document: D) -> Result<Decoded, Failure>
where
    S: CalicoSettings,
    D: Deserializer<'de>,
{
    let envelope = Envelope::<S>::read(document)?;
    let mut conversion = Conversion::default();
    envelope.metadata.convert(&mut conversion);
    conversion.status(envelope.status);
    envelope.spec.convert(&mut conversion);
    if !conversion.refusals.is_empty() {
        return Err(conversion.refused(None));
    }
    Ok(Decoded {
        resource: None,
        notes: conversion.notes,
    })
}

/// What converting one document found: notes for the operator (what was dropped
/// or rewritten, what tabby does instead) and the settings it cannot honour.
#[derive(Debug, Default)]
struct Conversion {
    notes: Vec<String>,
    refusals: Vec<ValidationError>,
}

impl Conversion {
    fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// A Calico setting tabby cannot honour: the document is not converted.
    fn refuse(&mut self, path: &str, value: impl Debug, why: &str) {
        self.refusals.push(ValidationError::new(
            path,
            value,
            format!("cannot be converted: {why}"),
        ));
    }

    fn status(&mut self, status: Option<IgnoredAny>) {
        if status.is_some() {
            self.note("status dropped: it is what Calico's components reported, not settings");
        }
    }

    /// Every refusal, and the invalid value that stopped the conversion if any.
    fn refused(self, invalid: Option<ValidationError>) -> Failure {
        let problems = self.refusals.into_iter().chain(invalid);
        Failure::Refused(problems.map(|p| p.to_string()).collect())
    }
}

/// A prefix as Calico writes it, where a bare address stands for its host prefix
/// (written so, with a note ending in `advice`).
fn prefix(
    path: &str,
    text: &str,
    advice: &str,
    conversion: &mut Conversion,
) -> Result<Cidr, ValidationError> {
    // `FromStr` errors read `"<text>" is not a CIDR`; keep the part after the value.
    let invalid = |problem: String| {
        let problem = problem.split_once("\" ").map_or(&*problem, |(_, p)| p);
        ValidationError::new(path, text, problem)
    };
    let Ok(bare) = text.parse::<std::net::IpAddr>() else {
        return text.parse().map_err(invalid);
    };
    let cidr = format!("{bare}/{}", if bare.is_ipv4() { 32 } else { 128 });
    conversion.note(format!("{path} {text:?} written as {cidr:?}{advice}"));
    cidr.parse().map_err(invalid)
}

/// Go's zero values stand for "unset" in Calico's API.
fn non_empty(text: Option<String>) -> Option<String> {
    text.filter(|t| !t.is_empty())
}

/// A Calico selector in tabby's grammar; empty means unset.
fn selector(path: &str, text: Option<String>, conversion: &mut Conversion) -> Option<Selector> {
    let text = non_empty(text)?;
    match text.parse() {
        Ok(selector) => Some(selector),
        Err(e) => {
            conversion.refuse(
                path,
                &text,
                &format!(
                    "{e} (tabby's selectors have all(), ==, !=, in, not in, has(), !, && \
                     and ||): rewrite it with those"
                ),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests;
