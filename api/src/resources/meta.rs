//! `metadata`: the part every kind shares, following Kubernetes' ObjectMeta.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ValidationError;

/// A resource's stored version: the datastore's revision of its last write. Rendered
/// as a string, like Kubernetes' `resourceVersion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Revision(pub u64);

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::str::FromStr for Revision {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        text.parse()
            .map(Revision)
            .map_err(|_| format!("{text:?} is not a resource version"))
    }
}

impl Serialize for Revision {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Revision {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        super::parsed_str(deserializer, "a resource version")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    pub name: String,
    /// Set by the datastore on every read; an update must carry the one it read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<Revision>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Stored fields this version does not know, kept to be written back.
    #[serde(skip)]
    pub set_aside: SetAside,
}

/// Fields a stored object held that this version's schema does not know (a newer
/// tabby wrote them during a rolling upgrade): set aside when the datastore read the
/// object and written back unchanged when it is updated, so an older writer never
/// erases them. Never serialised, and never makes two objects differ: they are not
/// this version's to compare.
#[derive(Debug, Clone, Default)]
pub struct SetAside(pub(crate) Vec<SetAsideField>);

/// One field set aside: the path of the object holding it, its name and value.
#[derive(Debug, Clone)]
pub(crate) struct SetAsideField {
    pub parents: Vec<String>,
    pub name: String,
    pub value: serde_json::Value,
}

impl SetAside {
    /// The paths of the fields, as `spec.bgp.bfdProfile`.
    pub fn paths(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|field| {
                let mut path = field.parents.clone();
                path.push(field.name.clone());
                path.join(".")
            })
            .collect()
    }
}

impl PartialEq for SetAside {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Metadata {
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    pub(super) fn validate(&self) -> Result<(), ValidationError> {
        if !is_dns_subdomain(&self.name) {
            return Err(ValidationError::new(
                "metadata.name",
                &self.name,
                "is not a DNS subdomain (lower-case letters, digits, '-' and '.', \
                 at most 253 characters)",
            ));
        }
        for (key, value) in &self.labels {
            let path = format!("metadata.labels[{key:?}]");
            if !is_label_key(key) {
                return Err(ValidationError::new(path, key, "is not a label key"));
            }
            if !value.is_empty() && !is_label_name(value) {
                return Err(ValidationError::new(path, value, "is not a label value"));
            }
        }
        Ok(())
    }
}

/// RFC 1123 subdomain, as Kubernetes requires of object names.
pub(crate) fn is_dns_subdomain(name: &str) -> bool {
    let edge = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    name.len() <= 253
        && name.starts_with(edge)
        && name.ends_with(edge)
        && name.chars().all(|c| edge(c) || c == '-' || c == '.')
}

/// RFC 1123 label, as Kubernetes requires of namespace names.
pub(crate) fn is_dns_label(name: &str) -> bool {
    name.len() <= 63 && !name.contains('.') && is_dns_subdomain(name)
}

/// `[prefix/]name` with a DNS subdomain prefix.
fn is_label_key(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_label_name(name),
        None => is_label_name(key),
    }
}

/// At most 63 of `[A-Za-z0-9_.-]`, alphanumeric at both ends.
fn is_label_name(name: &str) -> bool {
    let edge = |c: char| c.is_ascii_alphanumeric();
    name.len() <= 63
        && name.starts_with(edge)
        && name.ends_with(edge)
        && name
            .chars()
            .all(|c| edge(c) || matches!(c, '-' | '_' | '.'))
}
