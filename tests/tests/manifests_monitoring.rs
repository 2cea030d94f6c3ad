//! `manifests/monitoring/`, checked without a cluster: the ServiceMonitors find
//! each component's metrics port through its Service, every metric an alert or a
//! dashboard panel uses is one `docs/metrics.md` lists (and the binaries' tests
//! hold that list equal to their registries), with the labels matched on, and the
//! alerts the operator needs are there. Strict parsing of every document is
//! `manifests_every_document_parses_strictly_into_its_kubernetes_type`.

use std::collections::{BTreeMap, BTreeSet};

use harness::manifests::monitoring::{Dashboard, PrometheusRule, ServiceMonitor, selectors};
use harness::manifests::strict::parse;
use harness::manifests::{self, Document, find};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{PodTemplateSpec, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use telemetry::metrics::catalogue::{self, Family};

const DOC: &str = include_str!("../../docs/metrics.md");

fn documents() -> Vec<Document> {
    manifests::documents().expect("manifests/ reads")
}

fn of_kind<K: serde::de::DeserializeOwned + serde::Serialize>(
    documents: &[Document],
    kind: &str,
) -> Vec<K> {
    documents
        .iter()
        .filter(|d| d.kind() == kind)
        .map(|d| parse(&d.value).unwrap_or_else(|e| panic!("{}: {e}", d.place())))
        .collect()
}

/// Every documented family by name, whichever binary serves it.
fn documented() -> BTreeMap<String, Family> {
    catalogue::documented(DOC)
        .unwrap()
        .into_values()
        .flatten()
        .map(|f| (f.name.clone(), f))
        .collect()
}

/// The pod templates of the workloads, by their `app.kubernetes.io/name`.
fn templates(documents: &[Document]) -> Vec<PodTemplateSpec> {
    let daemonsets = of_kind::<DaemonSet>(documents, "DaemonSet")
        .into_iter()
        .map(|d| d.spec.unwrap().template);
    let deployments = of_kind::<Deployment>(documents, "Deployment")
        .into_iter()
        .map(|d| d.spec.unwrap().template);
    daemonsets.chain(deployments).collect()
}

fn matches(selector: &BTreeMap<String, String>, labels: Option<&BTreeMap<String, String>>) -> bool {
    let labels = labels.cloned().unwrap_or_default();
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[test]
fn observability_each_service_monitor_reaches_a_components_metrics_port_through_its_service() {
    let documents = documents();
    let monitors: Vec<ServiceMonitor> = of_kind(&documents, "ServiceMonitor");
    let services: Vec<Service> = of_kind(&documents, "Service");
    let templates = templates(&documents);
    let mut reached = BTreeSet::new();
    for monitor in &monitors {
        let name = monitor.metadata.name.clone().unwrap();
        let wanted = monitor
            .spec
            .selector
            .match_labels
            .clone()
            .unwrap_or_default();
        let chosen: Vec<&Service> = services
            .iter()
            .filter(|s| matches(&wanted, s.metadata.labels.as_ref()))
            .collect();
        assert_eq!(
            chosen.len(),
            1,
            "ServiceMonitor {name} selects {} Services",
            chosen.len()
        );
        let service = chosen[0];
        let spec = service.spec.as_ref().unwrap();
        for endpoint in &monitor.spec.endpoints {
            let port = spec
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(endpoint.port.as_str()))
                .unwrap_or_else(|| panic!("{name}: its Service has no port {}", endpoint.port));
            let Some(IntOrString::String(target)) = &port.target_port else {
                panic!("{name}: the Service's port names no container port");
            };
            let pods: Vec<&PodTemplateSpec> = templates
                .iter()
                .filter(|t| {
                    let labels = t.metadata.as_ref().and_then(|m| m.labels.as_ref());
                    matches(spec.selector.as_ref().unwrap(), labels)
                })
                .collect();
            assert_eq!(
                pods.len(),
                1,
                "{name}: its Service selects {} workloads",
                pods.len()
            );
            let container_port = pods[0]
                .spec
                .as_ref()
                .unwrap()
                .containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| p.name.as_deref() == Some(target.as_str()))
                .unwrap_or_else(|| panic!("{name}: no container port named {target}"));
            assert_eq!(container_port.container_port, port.port, "{name}");
            reached.insert(container_port.container_port);
        }
    }
    // The agent's, the reflector's and the controller's default ports.
    assert_eq!(reached, BTreeSet::from([9094, 9190, 9191]));
}

/// Every expression of the alerts and of the dashboard's panels, with where it is.
fn expressions(documents: &[Document]) -> Vec<(String, String)> {
    let mut all = Vec::new();
    for rule in of_kind::<PrometheusRule>(documents, "PrometheusRule") {
        for group in rule.spec.groups {
            for alert in group.rules {
                all.push((format!("alert {}", alert.alert), alert.expr));
            }
        }
    }
    for dashboard in dashboards(documents) {
        for panel in dashboard.panels {
            for target in panel.targets {
                all.push((format!("panel {:?}", panel.title), target.expr));
            }
        }
    }
    all
}

fn dashboards(documents: &[Document]) -> Vec<Dashboard> {
    let config = find(documents, "ConfigMap", "tabby-grafana-dashboard").unwrap();
    let json = config.value["data"]["tabby.json"].as_str().unwrap();
    let mut reader = serde_json::Deserializer::from_str(json);
    vec![
        serde_path_to_error::deserialize(&mut reader).unwrap_or_else(|e| {
            panic!(
                "{}: data.tabby.json {}: {}",
                config.place(),
                e.path(),
                e.inner()
            )
        }),
    ]
}

#[test]
fn observability_every_metric_an_alert_or_a_panel_uses_is_documented_with_the_labels_matched() {
    let documents = documents();
    let families = documented();
    let mut problems = Vec::new();
    let mut used = 0;
    for (place, expr) in expressions(&documents) {
        for selector in selectors(&expr) {
            used += 1;
            let family = families.get(&selector.metric).or_else(|| {
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| selector.metric.strip_suffix(s))?;
                families.get(base).filter(|f| f.kind == "histogram")
            });
            match family {
                None => problems.push(format!("{place}: {} is in no registry", selector.metric)),
                Some(family) => {
                    let unknown: Vec<_> = selector.labels.difference(&family.labels).collect();
                    if !unknown.is_empty() {
                        problems.push(format!(
                            "{place}: {} has no label {unknown:?}",
                            selector.metric
                        ));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(
        used > 20,
        "only {used} metrics used: the expressions were not read"
    );
}

#[test]
fn observability_the_alerts_cover_peers_pools_reconciliation_convergence_and_leaks() {
    let documents = documents();
    let alerts: BTreeMap<String, (String, String)> =
        of_kind::<PrometheusRule>(&documents, "PrometheusRule")
            .into_iter()
            .flat_map(|r| r.spec.groups)
            .flat_map(|g| g.rules)
            .map(|r| (r.alert, (r.expr, r.for_)))
            .collect();
    for (alert, metric, for_) in [
        ("TabbyBGPPeerDown", "tabby_agent_bgp_peer_up", "2m"),
        ("TabbyReflectorPeerDown", "tabby_reflector_peer_up", "2m"),
        (
            "TabbyIPPoolNearlyFull",
            "tabby_ipam_pool_utilization_ratio > 0.9",
            "5m",
        ),
        (
            "TabbyReconcileFailing",
            "tabby_agent_netlink_failed_reconciliations_total",
            "10m",
        ),
        ("TabbyConvergenceSlow", "histogram_quantile(0.99", "15m"),
        ("TabbyIPAMLeaks", "tabby_ipam_gc_candidates", "1h"),
    ] {
        let (expr, set_for) = alerts
            .get(alert)
            .unwrap_or_else(|| panic!("no alert {alert}"));
        assert!(expr.contains(metric), "{alert}: {expr}");
        assert_eq!(set_for, for_, "{alert}");
    }
    let dashboard = &dashboards(&documents)[0];
    let ids: BTreeSet<u32> = dashboard.panels.iter().map(|p| p.id).collect();
    assert_eq!(ids.len(), dashboard.panels.len(), "panel ids repeat");
}
