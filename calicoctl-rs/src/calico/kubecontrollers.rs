//! Calico's KubeControllersConfiguration. Its node controller's IPAM garbage
//! collection is tabby-ipam-controller's job, which takes flags, not a resource: the
//! document converts into notes naming the flag and value for each setting. The other
//! controllers serve network policy, which tabby does not have.

use api::resources::GoDuration;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::{CalicoSettings, Conversion, non_empty};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct CalicoKubeControllersSpec {
    #[serde(default)]
    controllers: Controllers,
    log_severity_screen: Option<String>,
    health_checks: Option<String>,
    etcd_v3_compaction_period: Option<GoDuration>,
    prometheus_metrics_port: Option<u16>,
    debug_profile_port: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Controllers {
    node: Option<NodeController>,
    load_balancer: Option<IgnoredAny>,
    // Network policy's controllers.
    policy: Option<IgnoredAny>,
    workload_endpoint: Option<IgnoredAny>,
    service_account: Option<IgnoredAny>,
    namespace: Option<IgnoredAny>,
    policy_migration: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NodeController {
    reconciler_period: Option<GoDuration>,
    leak_grace_period: Option<GoDuration>,
    sync_labels: Option<String>,
    host_endpoint: Option<HostEndpoint>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct HostEndpoint {
    auto_create: Option<String>,
    create_default_host_endpoint: Option<String>,
    templates: Option<IgnoredAny>,
}

const CONTROLLER: &str = "tabby-ipam-controller";

impl CalicoSettings for CalicoKubeControllersSpec {
    fn convert(self, conversion: &mut Conversion) {
        if let Some(node) = self.controllers.node {
            node.convert(conversion);
        }
        if self.controllers.load_balancer.is_some() {
            conversion.note(
                "spec.controllers.loadBalancer dropped: tabby does not assign Service \
                 LoadBalancer addresses",
            );
        }
        let policy = [
            ("policy", self.controllers.policy.is_some()),
            (
                "workloadEndpoint",
                self.controllers.workload_endpoint.is_some(),
            ),
            ("serviceAccount", self.controllers.service_account.is_some()),
            ("namespace", self.controllers.namespace.is_some()),
            (
                "policyMigration",
                self.controllers.policy_migration.is_some(),
            ),
        ];
        for (controller, _) in policy.iter().filter(|(_, present)| *present) {
            conversion.note(format!(
                "spec.controllers.{controller} dropped: it serves network policy, which \
                 tabby does not have"
            ));
        }
        if let Some(level) = non_empty(self.log_severity_screen) {
            let filter = match level.to_ascii_lowercase().as_str() {
                "none" => "off",
                "debug" => "debug",
                "warning" => "warn",
                "error" | "fatal" | "panic" => "error",
                _ => "info",
            };
            conversion.note(format!(
                "spec.logSeverityScreen {level:?}: run {CONTROLLER} with TABBY_LOG={filter}"
            ));
        }
        if non_empty(self.health_checks).as_deref() == Some("Disabled") {
            conversion.note(format!(
                "spec.healthChecks \"Disabled\" dropped: {CONTROLLER} always serves /healthz \
                 and /readyz"
            ));
        }
        match self.prometheus_metrics_port {
            Some(0) => conversion.note(format!(
                "spec.prometheusMetricsPort 0 dropped: {CONTROLLER} always serves /metrics \
                 (--metrics-address, TABBY_METRICS_ADDRESS)"
            )),
            Some(port) => conversion.note(format!(
                "spec.prometheusMetricsPort {port}: run {CONTROLLER} with --metrics-address \
                 0.0.0.0:{port} (TABBY_METRICS_ADDRESS)"
            )),
            None => {}
        }
        if let Some(port) = self.debug_profile_port.filter(|p| *p != 0) {
            conversion.note(format!(
                "spec.debugProfilePort {port} dropped: {CONTROLLER} has no profiling endpoint"
            ));
        }
        if let Some(period) = self.etcd_v3_compaction_period {
            conversion.note(format!(
                "spec.etcdV3CompactionPeriod {period} dropped: tabby does not compact etcd; \
                 set etcd's own --auto-compaction-retention"
            ));
        }
    }
}

impl NodeController {
    fn convert(self, conversion: &mut Conversion) {
        const PATH: &str = "spec.controllers.node";
        match self.leak_grace_period {
            Some(period) if period.0.is_zero() => conversion.note(format!(
                "{PATH}.leakGracePeriod 0s (Calico then never reclaims leaked addresses): \
                 {CONTROLLER} has no switch for that; leave it out of the cluster to keep \
                 leaked addresses, or give it a --grace long enough to check them by hand"
            )),
            Some(period) => conversion.note(format!(
                "{PATH}.leakGracePeriod {period}: run {CONTROLLER} with --grace {period} \
                 (TABBY_IPAM_GC_GRACE)"
            )),
            None => {}
        }
        if let Some(period) = self.reconciler_period {
            conversion.note(format!(
                "{PATH}.reconcilerPeriod {period}: run {CONTROLLER} with --interval {period} \
                 (TABBY_IPAM_GC_INTERVAL)"
            ));
        }
        if non_empty(self.sync_labels).as_deref() == Some("Enabled") {
            conversion.note(format!(
                "{PATH}.syncLabels \"Enabled\" dropped: tabby does not copy Kubernetes node \
                 labels to its Nodes; set the labels BGPPeer and IPPool selectors use with \
                 calicoctl-rs label nodes or the agent's --node-labels"
            ));
        }
        if let Some(host_endpoint) = self.host_endpoint {
            let creates = non_empty(host_endpoint.auto_create).as_deref() == Some("Enabled")
                || non_empty(host_endpoint.create_default_host_endpoint).is_some()
                || host_endpoint.templates.is_some();
            if creates {
                conversion.note(format!(
                    "{PATH}.hostEndpoint dropped: host endpoints serve network policy, which \
                     tabby does not have"
                ));
            }
        }
    }
}
