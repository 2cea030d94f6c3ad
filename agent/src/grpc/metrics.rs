//! `/metrics`, `/healthz` and `/readyz` for the agent, from its status snapshot:
//! the figures are read from it at each scrape.

use std::fmt;

use telemetry::http::Probe;
use telemetry::metrics::{Collector, DescriptorEncoder, Scrape};
use tokio::sync::watch;

use crate::daemon::{Handle, Status};
use crate::peering::PeerKind;

#[derive(Debug)]
pub struct AgentProbe {
    pub handle: Handle,
}

#[async_trait::async_trait]
impl Probe for AgentProbe {
    async fn ready(&self) -> Result<(), String> {
        match super::not_ready(&self.handle.status.borrow()) {
            None => Ok(()),
            Some(why) => Err(why.to_string()),
        }
    }
}

/// The agent's figures, read from its status at each scrape.
#[derive(Debug)]
pub struct AgentMetrics {
    pub status: watch::Receiver<Status>,
}

impl Collector for AgentMetrics {
    fn encode(&self, encoder: DescriptorEncoder<'_>) -> fmt::Result {
        write(&self.status.borrow(), &mut Scrape::new(encoder))
    }
}

/// The figures of `status`.
fn write(status: &Status, page: &mut Scrape<'_>) -> fmt::Result {
    page.gauge(
        "tabby_agent_ready",
        "1 when the datastore is listed, BGP routes re-learned and the kernel reconciled.",
        status.ready(),
    )?;
    let mut peers = Vec::new();
    for kind in [PeerKind::Mesh, PeerKind::Global, PeerKind::NodeSpecific] {
        for (state, established) in [("established", true), ("down", false)] {
            let count = status
                .peers
                .iter()
                .filter(|p| p.kind == kind && p.established == established)
                .count();
            peers.push(([("type", kind.as_str()), ("state", state)], count));
        }
    }
    page.gauges(
        "tabby_agent_bgp_peers",
        "BGP sessions by kind and state.",
        peers,
    )?;
    let bfd = || {
        status
            .peers
            .iter()
            .filter_map(|p| Some((p.address, p.bfd?)))
    };
    let states = bfd::peers::count_by_state(bfd().map(|(_, b)| b.state))
        .map(|(name, count)| ([("state", name)], count));
    page.gauges(
        "tabby_agent_bfd_sessions",
        "BFD sessions beside BGP sessions, by state.",
        states,
    )?;
    let flaps: Vec<(String, u64)> = bfd().map(|(a, b)| (a.to_string(), b.flaps)).collect();
    page.counters(
        "tabby_agent_bfd_flaps_total",
        "Times a peer's BFD session went from Up to Down, since it was added.",
        flaps
            .iter()
            .map(|(peer, n)| ([("peer", peer.as_str())], *n)),
    )?;
    page.gauge(
        "tabby_agent_bgp_prefixes",
        "Prefixes the speaker holds best paths for.",
        status.bgp_prefixes,
    )?;
    page.gauge(
        "tabby_agent_bgp_exported_prefixes",
        "Prefixes this node originates.",
        status.exported,
    )?;
    page.gauge(
        "tabby_agent_desired_routes",
        "Routes the desired kernel state holds.",
        status.desired_routes,
    )?;
    page.gauge(
        "tabby_agent_bgp_routes_rejected",
        "Learned routes refused now (outside the pools, or not from the owner).",
        status.rejected.len() + status.rejected_at_import.len(),
    )?;
    let rejections = ["outside_pools", "not_in_ipam", "not_owner"].map(|reason| {
        let count = status.counters.rejections.get(reason).copied().unwrap_or(0);
        ([("reason", reason)], count)
    });
    page.counters(
        "tabby_agent_bgp_routes_rejected_total",
        "Learned routes refused, by reason, counted when refused.",
        rejections,
    )?;
    page.counter(
        "tabby_agent_reconciliations_total",
        "Dataplane reconciliation passes.",
        status.passes,
    )?;
    page.counter(
        "tabby_agent_reconcile_seconds_total",
        "Time spent reconciling the dataplane.",
        status.counters.reconcile_seconds,
    )?;
    page.gauge(
        "tabby_agent_reconcile_last_seconds",
        "How long the last reconciliation took.",
        status
            .last_pass
            .as_ref()
            .map_or(0.0, |p| p.took.as_secs_f64()),
    )?;
    page.counter(
        "tabby_agent_netlink_refused_changes_total",
        "Changes the kernel refused.",
        status.counters.refused_changes,
    )?;
    page.counter(
        "tabby_agent_netlink_failed_reconciliations_total",
        "Reconciliations whose netlink conversation failed as a whole.",
        status.counters.failed_passes,
    )?;
    page.gauge(
        "tabby_agent_configuration_problems",
        "Configuration problems keeping part of the desired state from being built.",
        status.problems.len(),
    )
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
                bfd: Some(bfd::peers::PeerState {
                    state: bfd::State::Up,
                    flaps: 2,
                }),
            }],
            ..Status::default()
        };
        status.counters.rejections.insert("not_owner", 2);
        let (_keep, status) = watch::channel(status);
        let mut registry = telemetry::metrics::Registry::default();
        registry.register_collector(Box::new(AgentMetrics { status }));
        let page = telemetry::metrics::encode(&registry);
        for line in [
            "tabby_agent_ready 1",
            "tabby_agent_bgp_peers{type=\"node-to-node mesh\",state=\"established\"} 1",
            "tabby_agent_bgp_peers{type=\"global\",state=\"established\"} 0",
            "tabby_agent_bgp_routes_rejected_total{reason=\"not_owner\"} 2",
            "tabby_agent_reconciliations_total 3",
            "tabby_agent_reconcile_last_seconds 0.005",
            "tabby_agent_bfd_sessions{state=\"up\"} 1",
            "tabby_agent_bfd_sessions{state=\"down\"} 0",
            "tabby_agent_bfd_flaps_total{peer=\"192.0.2.11\"} 2",
        ] {
            assert!(
                page.lines().any(|l| l == line),
                "{line} missing from\n{page}"
            );
        }
    }
}
