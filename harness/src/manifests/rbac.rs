//! The calls a Role's or ClusterRole's rules grant, one per (group, resource, verb),
//! with the object names a rule limits them to; and what the bindings of
//! `manifests/` grant each service account.

use std::collections::BTreeSet;

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, Subject,
};

use super::strict::parse;
use super::{Document, find};
use crate::kube_api::calls::Call;
pub use crate::kube_api::calls::{Grant, Granted};

/// Every grant of `rules`. Wildcards and non-resource URLs are errors: least
/// privilege spells out what it grants.
pub fn grants(rules: &[PolicyRule]) -> Result<BTreeSet<Grant>, String> {
    let mut grants = BTreeSet::new();
    for (i, rule) in rules.iter().enumerate() {
        if rule.non_resource_urls.is_some() {
            return Err(format!("rules[{i}]: nonResourceURLs"));
        }
        let names: BTreeSet<String> = rule.resource_names.iter().flatten().cloned().collect();
        let groups = rule.api_groups.as_deref().unwrap_or_default();
        let resources = rule.resources.as_deref().unwrap_or_default();
        for text in groups.iter().chain(resources).chain(&rule.verbs) {
            if text.contains('*') {
                return Err(format!("rules[{i}]: the wildcard {text:?}"));
            }
        }
        for group in groups {
            for resource in resources {
                for verb in &rule.verbs {
                    let verb = verb.parse().map_err(|e| format!("rules[{i}].verbs: {e}"))?;
                    grants.insert(Grant {
                        call: Call::new(group, resource, verb),
                        names: names.clone(),
                    });
                }
            }
        }
    }
    Ok(grants)
}

/// What the ServiceAccount `namespace/account` is granted by every binding to it
/// among `documents`: cluster-wide under `""`, and per namespace.
pub fn granted(documents: &[Document], namespace: &str, account: &str) -> Result<Granted, String> {
    let bound = |subjects: &Option<Vec<Subject>>| {
        subjects.iter().flatten().any(|s| {
            s.kind == "ServiceAccount"
                && s.name == account
                && s.namespace.as_deref() == Some(namespace)
        })
    };
    let typed = |kind: &str, name: &str| -> Result<Vec<PolicyRule>, String> {
        let document = find(documents, kind, name).map_err(|e| e.to_string())?;
        let rules = match kind {
            "ClusterRole" => parse::<ClusterRole>(&document.value).map(|r| r.rules),
            _ => parse::<Role>(&document.value).map(|r| r.rules),
        };
        rules
            .map(Option::unwrap_or_default)
            .map_err(|e| format!("{}: {e}", document.place()))
    };
    let mut by_namespace = Granted::new();
    for document in documents {
        let place = document.place();
        let (scope, role_ref) = match document.kind() {
            "ClusterRoleBinding" => {
                let binding: ClusterRoleBinding =
                    parse(&document.value).map_err(|e| format!("{place}: {e}"))?;
                if !bound(&binding.subjects) {
                    continue;
                }
                (String::new(), binding.role_ref)
            }
            "RoleBinding" => {
                let binding: RoleBinding =
                    parse(&document.value).map_err(|e| format!("{place}: {e}"))?;
                if !bound(&binding.subjects) {
                    continue;
                }
                let scope = binding.metadata.namespace.unwrap_or_default();
                (scope, binding.role_ref)
            }
            _ => continue,
        };
        let rules = typed(&role_ref.kind, &role_ref.name)?;
        let grants =
            grants(&rules).map_err(|e| format!("{} {}: {e}", role_ref.kind, role_ref.name))?;
        by_namespace.entry(scope).or_default().extend(grants);
    }
    Ok(by_namespace)
}

/// Every ServiceAccount a binding among `documents` names, as `(namespace, name)`.
pub fn service_accounts(documents: &[Document]) -> Result<BTreeSet<(String, String)>, String> {
    let mut accounts = BTreeSet::new();
    for document in documents {
        let subjects = match document.kind() {
            "ClusterRoleBinding" => {
                parse::<ClusterRoleBinding>(&document.value).map(|b| b.subjects)
            }
            "RoleBinding" => parse::<RoleBinding>(&document.value).map(|b| b.subjects),
            _ => continue,
        }
        .map_err(|e| format!("{}: {e}", document.place()))?;
        accounts.extend(
            subjects
                .into_iter()
                .flatten()
                .filter(|s| s.kind == "ServiceAccount")
                .map(|s| (s.namespace.unwrap_or_default(), s.name)),
        );
    }
    Ok(accounts)
}
