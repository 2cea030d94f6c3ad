//! `/metrics`, `/healthz` and `/readyz` for the agent, from its status snapshot.

use proto::http::Probe;
use proto::metrics::{Exposition, MetricType};

use crate::daemon::{Handle, Status};
use crate::peering::PeerKind;

#[derive(Debug)]
pub struct AgentProbe {
    pub handle: Handle,
}

#[async_trait::async_trait]
impl Probe for AgentProbe {
    async fn metrics(&self) -> String {
        render(&self.handle.status.borrow())
    }

    async fn ready(&self) -> Result<(), String> {
        match super::not_ready(&self.handle.status.borrow()) {
            None => Ok(()),
            Some(why) => Err(why),
        }
    }
}

/// The metrics page for `status`.
pub fn render(status: &Status) -> String {
    use MetricType::{Counter, Gauge};
    let mut page = Exposition::default();
    let gauge = |page: &mut Exposition, name: &str, help: &str, value: f64| {
        page.family(name, Gauge, help).sample(name, &[], value);
    };
    gauge(
        &mut page,
        "tabby_agent_ready",
        "1 when the datastore is listed, BGP routes re-learned and the kernel reconciled.",
        f64::from(u8::from(status.ready())),
    );
    let name = "tabby_agent_bgp_peers";
    page.family(name, Gauge, "BGP sessions by kind and state.");
    for kind in [PeerKind::Mesh, PeerKind::Global, PeerKind::NodeSpecific] {
        for (state, established) in [("established", true), ("down", false)] {
            let count = status
                .peers
                .iter()
                .filter(|p| p.kind == kind && p.established == established)
                .count();
            page.sample(
                name,
                &[("type", kind.as_str()), ("state", state)],
                count as f64,
            );
        }
    }
    gauge(
        &mut page,
        "tabby_agent_bgp_prefixes",
        "Prefixes the speaker holds best paths for.",
        status.bgp_prefixes as f64,
    );
    gauge(
        &mut page,
        "tabby_agent_bgp_exported_prefixes",
        "Prefixes this node originates.",
        status.exported as f64,
    );
    gauge(
        &mut page,
        "tabby_agent_desired_routes",
        "Routes the desired kernel state holds.",
        status.desired_routes as f64,
    );
    gauge(
        &mut page,
        "tabby_agent_bgp_routes_rejected",
        "Learned routes refused now (outside the pools, or not from the owner).",
        (status.rejected.len() + status.rejected_at_import.len()) as f64,
    );
    let name = "tabby_agent_bgp_routes_rejected_total";
    page.family(
        name,
        Counter,
        "Learned routes refused, by reason, counted when refused.",
    );
    for reason in ["outside_pools", "not_in_ipam", "not_owner"] {
        let count = status.counters.rejections.get(reason).copied().unwrap_or(0);
        page.sample(name, &[("reason", reason)], count as f64);
    }
    let counter = |page: &mut Exposition, name: &str, help: &str, value: f64| {
        page.family(name, Counter, help).sample(name, &[], value);
    };
    counter(
        &mut page,
        "tabby_agent_reconciliations_total",
        "Dataplane reconciliation passes.",
        status.passes as f64,
    );
    counter(
        &mut page,
        "tabby_agent_reconcile_seconds_total",
        "Time spent reconciling the dataplane.",
        status.counters.reconcile_seconds,
    );
    gauge(
        &mut page,
        "tabby_agent_reconcile_last_seconds",
        "How long the last reconciliation took.",
        status
            .last_pass
            .as_ref()
            .map_or(0.0, |p| p.took.as_secs_f64()),
    );
    counter(
        &mut page,
        "tabby_agent_netlink_refused_changes_total",
        "Changes the kernel refused.",
        status.counters.refused_changes as f64,
    );
    counter(
        &mut page,
        "tabby_agent_netlink_failed_reconciliations_total",
        "Reconciliations whose netlink conversation failed as a whole.",
        status.counters.failed_passes as f64,
    );
    gauge(
        &mut page,
        "tabby_agent_configuration_problems",
        "Configuration problems keeping part of the desired state from being built.",
        status.problems.len() as f64,
    );
    page.finish()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::daemon::status::{PassSummary, PeerState};

    #[test]
    fn the_page_counts_peers_by_kind_and_state_and_rejections_by_reason() {
        let mut status = Status {
            listed: true,
            bgp_synced: true,
            reconciled: true,
            passes: 3,
            last_pass: Some(PassSummary {
                ok: true,
                applied: 2,
                refused: vec![],
                took: Duration::from_millis(5),
            }),
            peers: vec![PeerState {
                address: "192.0.2.11".parse().unwrap(),
                kind: PeerKind::Mesh,
                source: "n2".into(),
                established: true,
                since: Instant::now(),
                last_error: None,
            }],
            ..Status::default()
        };
        status.counters.rejections.insert("not_owner", 2);
        let page = render(&status);
        for line in [
            "tabby_agent_ready 1",
            "tabby_agent_bgp_peers{type=\"node-to-node mesh\",state=\"established\"} 1",
            "tabby_agent_bgp_peers{type=\"global\",state=\"established\"} 0",
            "tabby_agent_bgp_routes_rejected_total{reason=\"not_owner\"} 2",
            "tabby_agent_reconciliations_total 3",
            "tabby_agent_reconcile_last_seconds 0.005",
        ] {
            assert!(
                page.lines().any(|l| l == line),
                "{line} missing from\n{page}"
            );
        }
    }
}
