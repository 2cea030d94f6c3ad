//! Calico's `metadata`: Kubernetes ObjectMeta. Name, labels and annotations carry
//! over; what the API server sets on read (uid, resourceVersion, timestamps, ...) is
//! accepted, because operators paste `calicoctl get -o yaml` output, and dropped,
//! because it means nothing in tabby's datastore.

use std::collections::BTreeMap;

use api::resources::Metadata;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::Notes;

/// Annotations that are another tool's bookkeeping, not the operator's data.
const BOOKKEEPING_ANNOTATIONS: [&str; 2] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    "projectcalico.org/metadata",
];

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct CalicoMetadata {
    #[serde(default)]
    name: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    // Server-set fields, read and dropped.
    #[serde(default, rename = "resourceVersion")]
    _resource_version: Option<IgnoredAny>,
    #[serde(default, rename = "uid")]
    _uid: Option<IgnoredAny>,
    #[serde(default, rename = "creationTimestamp")]
    _creation_timestamp: Option<IgnoredAny>,
    #[serde(default, rename = "generation")]
    _generation: Option<IgnoredAny>,
    #[serde(default, rename = "managedFields")]
    _managed_fields: Option<IgnoredAny>,
    #[serde(default, rename = "selfLink")]
    _self_link: Option<IgnoredAny>,
    #[serde(default, rename = "namespace")]
    _namespace: Option<IgnoredAny>,
}

impl CalicoMetadata {
    pub(super) fn convert(self, notes: &mut Notes) -> Metadata {
        let mut annotations = self.annotations;
        for key in BOOKKEEPING_ANNOTATIONS {
            if annotations.remove(key).is_some() {
                notes.add(format!(
                    "metadata.annotations[{key:?}] dropped (bookkeeping)"
                ));
            }
        }
        Metadata {
            name: self.name,
            resource_version: None,
            labels: self.labels,
            annotations,
            ..Metadata::default()
        }
    }
}
