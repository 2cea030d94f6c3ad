//! The calls a Role's or ClusterRole's rules grant, one per (group, resource, verb),
//! with the object names a rule limits them to.

use std::collections::BTreeSet;

use k8s_openapi::api::rbac::v1::PolicyRule;

use crate::kube_api::calls::Call;

/// A call a rule grants; `names` empty for every object of the resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    pub call: Call,
    pub names: BTreeSet<String>,
}

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
