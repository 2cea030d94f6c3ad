//! Parsing a document into its Kubernetes type with unknown fields as errors.
//!
//! k8s-openapi's types skip fields they do not know, so a typo (`hostNetwrok`) would
//! vanish silently and the object would be installed without it. Here a document is
//! parsed, serialized again, and every field it holds must come back with its value;
//! one that does not is named by its path. tabby's own kinds refuse unknown fields
//! themselves and are validated as the datastore validates them; the Prometheus
//! operator's kinds are [`monitoring`]'s.

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Document, monitoring};

/// `value` as a `K`, or every field `K` does not read back (or the parse error,
/// with its path).
pub fn parse<K: DeserializeOwned + Serialize>(value: &Value) -> Result<K, String> {
    let typed: K = serde_path_to_error::deserialize(value.clone())
        .map_err(|e| format!("{}: {}", e.path(), e.inner()))?;
    let again = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    let mut lost = Vec::new();
    compare(value, &again, "", &mut lost);
    match lost.is_empty() {
        true => Ok(typed),
        false => Err(lost.join("; ")),
    }
}

fn compare(original: &Value, again: &Value, path: &str, lost: &mut Vec<String>) {
    match (original, again) {
        (Value::Object(fields), Value::Object(read)) => {
            for (key, value) in fields {
                let at = format!("{path}.{key}");
                match read.get(key) {
                    Some(back) => compare(value, back, &at, lost),
                    None => lost.push(format!("{at}: unknown field")),
                }
            }
        }
        (Value::Array(items), Value::Array(read)) if items.len() == read.len() => {
            for (i, (item, back)) in items.iter().zip(read).enumerate() {
                compare(item, back, &format!("{path}[{i}]"), lost);
            }
        }
        (a, b) if a == b => {}
        // Schema bounds are f64 in k8s-openapi: 255 reads back as 255.0.
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => {}
        (a, b) => lost.push(format!("{path}: {a} reads back as {b}")),
    }
}

/// A kind's strict parse, by `apiVersion` and `kind`.
type Parser = (&'static str, &'static str, fn(&Value) -> Result<(), String>);

/// A Kubernetes type's strict parse.
fn kubernetes<K>() -> Parser
where
    K: k8s_openapi::Resource + DeserializeOwned + Serialize,
{
    (K::API_VERSION, K::KIND, |value| parse::<K>(value).map(drop))
}

/// A tabby kind: unknown fields refused by its own types, then validated.
fn tabby<R: api::resources::Resource>() -> Parser {
    (api::resources::API_VERSION, R::KIND, |value| {
        let resource: R = serde_path_to_error::deserialize(value.clone())
            .map_err(|e| format!("{}: {}", e.path(), e.inner()))?;
        let mut defaulted = resource.clone();
        defaulted.apply_defaults();
        defaulted.validate().map_err(|e| e.to_string())
    })
}

/// Parses `document` strictly into the type its `apiVersion` and `kind` name.
pub fn check(document: &Document) -> Result<(), String> {
    let types = [
        kubernetes::<Namespace>(),
        kubernetes::<ServiceAccount>(),
        kubernetes::<ConfigMap>(),
        kubernetes::<Service>(),
        kubernetes::<ClusterRole>(),
        kubernetes::<ClusterRoleBinding>(),
        kubernetes::<Role>(),
        kubernetes::<RoleBinding>(),
        kubernetes::<DaemonSet>(),
        kubernetes::<Deployment>(),
        kubernetes::<PodDisruptionBudget>(),
        kubernetes::<CustomResourceDefinition>(),
        kubernetes::<ValidatingAdmissionPolicy>(),
        kubernetes::<ValidatingAdmissionPolicyBinding>(),
        (monitoring::API_VERSION, "ServiceMonitor", |value| {
            parse::<monitoring::ServiceMonitor>(value).map(drop)
        }),
        (monitoring::API_VERSION, "PrometheusRule", |value| {
            parse::<monitoring::PrometheusRule>(value).map(drop)
        }),
        tabby::<api::resources::IPPool>(),
        tabby::<api::resources::BGPConfiguration>(),
    ];
    let (api_version, kind) = (document.api_version(), document.kind());
    let (_, _, parse) = types
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
        .ok_or_else(|| format!("{api_version} {kind} is no type these tests know"))?;
    parse(&document.value)
}
