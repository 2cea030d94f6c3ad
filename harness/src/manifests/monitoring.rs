//! `manifests/monitoring/`, read strictly: the Prometheus operator's
//! `ServiceMonitor` and `PrometheusRule` (monitoring.coreos.com/v1, the fields
//! tabby uses, named as the operator's CRDs name them) and the Grafana dashboard
//! model (the fields of Grafana's dashboard JSON tabby uses), each refusing any
//! other field; and the metrics a PromQL expression names, so a test can hold
//! them to `docs/metrics.md`.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::{Deserialize, Serialize};

pub const API_VERSION: &str = "monitoring.coreos.com/v1";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceMonitor {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: ServiceMonitorSpec,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceMonitorSpec {
    pub selector: LabelSelector,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<NamespaceSelector>,
    pub endpoints: Vec<Endpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_label: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespaceSelector {
    pub match_names: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Endpoint {
    /// The Service's port name.
    pub port: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrometheusRule {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: PrometheusRuleSpec,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusRuleSpec {
    pub groups: Vec<RuleGroup>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleGroup {
    pub name: String,
    pub rules: Vec<Rule>,
}

/// An alerting rule (tabby ships no recording rules).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub alert: String,
    pub expr: String,
    #[serde(rename = "for")]
    pub for_: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// A Grafana dashboard (its JSON model).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Dashboard {
    pub title: String,
    pub uid: String,
    pub tags: Vec<String>,
    pub schema_version: u32,
    pub refresh: String,
    pub time: TimeRange,
    pub templating: Templating,
    pub panels: Vec<Panel>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TimeRange {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Templating {
    pub list: Vec<Variable>,
}

/// The dashboard's data source, chosen by whoever imports it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    pub name: String,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub query: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Panel {
    pub id: u32,
    pub title: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub description: String,
    pub grid_pos: GridPos,
    pub datasource: Datasource,
    pub field_config: FieldConfig,
    pub targets: Vec<Target>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GridPos {
    pub h: u32,
    pub w: u32,
    pub x: u32,
    pub y: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Datasource {
    #[serde(rename = "type")]
    pub kind: String,
    pub uid: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FieldConfig {
    pub defaults: FieldDefaults,
    pub overrides: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDefaults {
    pub unit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Target {
    pub expr: String,
    pub legend_format: String,
    pub ref_id: String,
}

/// A selector in an expression: a metric tabby serves (its name starts with
/// `tabby_` or `process_`) and the labels it is matched on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Selector {
    pub metric: String,
    pub labels: BTreeSet<String>,
}

/// Every tabby metric `expr` selects, with the labels of its matchers. Label
/// names and functions never start with those prefixes, so a scan for them is
/// exact for the expressions tabby ships.
pub fn selectors(expr: &str) -> Vec<Selector> {
    let mut found = Vec::new();
    let bytes = expr.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'"' {
            in_string = !in_string;
        }
        let starts = !in_string && word(c) && (i == 0 || !word(bytes[i - 1]));
        if !starts {
            i += 1;
            continue;
        }
        let end = (i..bytes.len())
            .find(|&j| !word(bytes[j]))
            .unwrap_or(bytes.len());
        let name = &expr[i..end];
        i = end;
        if !(name.starts_with("tabby_") || name.starts_with("process_")) {
            continue;
        }
        let mut labels = BTreeSet::new();
        if expr[end..].starts_with('{')
            && let Some(close) = expr[end..].find('}')
        {
            for matcher in expr[end + 1..end + close].split(',') {
                let label = matcher.split(['=', '!', '~']).next().unwrap_or("").trim();
                if !label.is_empty() {
                    labels.insert(label.to_owned());
                }
            }
            i = end + close;
        }
        found.push(Selector {
            metric: name.to_owned(),
            labels,
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observability_selectors_name_each_metric_with_its_matchers_and_skip_strings() {
        let expr = "histogram_quantile(0.99, sum by (le) (rate(tabby_agent_reconcile_duration_seconds_bucket[5m]))) \
                    > 1 and on() tabby_agent_bgp_peer_up{type=\"mesh\", peer!~\"tabby_x\"} == 0";
        assert_eq!(
            selectors(expr),
            vec![
                Selector {
                    metric: "tabby_agent_reconcile_duration_seconds_bucket".into(),
                    labels: BTreeSet::new(),
                },
                Selector {
                    metric: "tabby_agent_bgp_peer_up".into(),
                    labels: ["peer".to_owned(), "type".to_owned()].into(),
                },
            ]
        );
    }
}
