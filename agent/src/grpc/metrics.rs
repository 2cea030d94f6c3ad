//! `/metrics`, `/healthz` and `/readyz` for the agent. The figures are read from
//! its status snapshot at each scrape, and the sessions asked of the loop right
//! before it. [`registry`] is the one place the agent's metrics are registered;
//! `docs/metrics.md` lists them (a test below holds the two equal).

use std::fmt;
use std::sync::{Arc, Mutex};

use telemetry::http::Probe;
use telemetry::metrics::{Collector, DescriptorEncoder, Registry, Scrape};

use crate::daemon::query::Peer;
use crate::daemon::{Handle, Status};
use crate::dataplane::RouteTarget;
use crate::peering::PeerKind;

/// The agent's registry: what every binary shows and [`AgentMetrics`].
pub fn registry(metrics: &Arc<AgentMetrics>) -> Registry {
    let mut registry = telemetry::metrics::registry("tabby-agent");
    registry.register_collector(Box::new(Arc::clone(metrics)));
    registry
}

/// The agent's figures and probe.
#[derive(Debug)]
pub struct AgentMetrics {
    handle: Handle,
    /// The sessions as the loop told them at the last refresh.
    peers: Mutex<Vec<Peer>>,
}

impl AgentMetrics {
    pub fn new(handle: Handle) -> Self {
        Self {
            handle,
            peers: Mutex::default(),
        }
    }

    fn peers(&self) -> std::sync::MutexGuard<'_, Vec<Peer>> {
        self.peers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait::async_trait]
impl Probe for AgentMetrics {
    async fn refresh(&self) {
        let peers = self.handle.peers().await.peers;
        *self.peers() = peers;
    }

    async fn ready(&self) -> Result<(), String> {
        match super::not_ready(&self.handle.status.borrow()) {
            None => Ok(()),
            Some(why) => Err(why.to_string()),
        }
    }
}

impl Collector for AgentMetrics {
    fn encode(&self, encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let page = &mut Scrape::new(encoder);
        write(&self.handle.status.borrow(), page)?;
        write_sessions(&self.peers(), &self.handle.status.borrow(), page)
    }
}

/// Per session, labelled by the peer's address and what it is.
fn write_sessions(peers: &[Peer], status: &Status, page: &mut Scrape<'_>) -> fmt::Result {
    let addresses: Vec<String> = peers.iter().map(|p| p.address.to_string()).collect();
    let per_peer = |value: &dyn Fn(&Peer) -> u64| -> Vec<([(&str, &str); 2], u64)> {
        peers
            .iter()
            .zip(&addresses)
            .map(|(peer, address)| {
                let labels = [("peer", address.as_str()), ("type", peer.kind.label())];
                (labels, value(peer))
            })
            .collect()
    };
    let speaker =
        |p: &Peer, value: fn(&bgp::speaker::PeerStatus) -> u64| p.status.as_ref().map_or(0, value);
    page.gauges(
        "tabby_agent_bgp_peer_up",
        "1 while the BGP session is Established.",
        per_peer(&|p| speaker(p, |s| u64::from(s.established))),
    )?;
    page.gauges(
        "tabby_agent_bgp_peer_uptime_seconds",
        "How long the session has been Established (0 while it is not).",
        per_peer(&|p| speaker(p, |s| s.uptime.map_or(0, |u| u.as_secs()))),
    )?;
    page.counters(
        "tabby_agent_bgp_peer_prefixes_received_total",
        "Prefixes the peer announced, over every session with it.",
        per_peer(&|p| speaker(p, |s| s.prefixes_received)),
    )?;
    page.gauges(
        "tabby_agent_bgp_peer_prefixes_accepted",
        "The peer's paths in the RIB now (after import checks and policy).",
        per_peer(&|p| speaker(p, |s| s.prefixes_accepted as u64)),
    )?;
    page.gauges(
        "tabby_agent_bgp_peer_prefixes_advertised",
        "Prefixes advertised to the peer now.",
        per_peer(&|p| speaker(p, |s| s.prefixes_advertised as u64)),
    )?;
    page.counters(
        "tabby_agent_bgp_peer_flaps_total",
        "Times the peer's Established session ended.",
        per_peer(&|p| status.counters.flaps.get(&p.address).copied().unwrap_or(0)),
    )
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
            peers.push(([("type", kind.label()), ("state", state)], count));
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
    page.gauges(
        "tabby_agent_routes",
        "Routes the desired kernel state holds, by kind.",
        RouteTarget::KINDS.map(|kind| {
            let count = status.routes_by_kind.get(kind).copied().unwrap_or(0);
            ([("kind", kind)], count)
        }),
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
    page.histogram(
        "tabby_agent_reconcile_duration_seconds",
        "How long each dataplane reconciliation took.",
        &status.counters.reconcile_seconds,
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
    page.counter(
        "tabby_agent_datastore_resyncs_total",
        "Times a datastore watch was lost and its kind listed again.",
        status.counters.resyncs,
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

    use bgp::session::State;
    use bgp::speaker::PeerStatus;

    use super::*;
    use crate::daemon::query::{Peers, fixed};
    use crate::daemon::status::{PassSummary, PeerState};

    const DOC: &str = include_str!("../../../docs/metrics.md");

    /// An agent with one mesh peer up (two prefixes from it, three to it, one
    /// flap before) and one global peer the speaker does not know yet.
    fn agent() -> Handle {
        let mesh: std::net::IpAddr = "192.0.2.11".parse().unwrap();
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
                address: mesh,
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
            routes_by_kind: [("workload", 4), ("gateway", 1)].into(),
            ..Status::default()
        };
        status.counters.rejections.insert("not_owner", 2);
        status.counters.flaps.insert(mesh, 1);
        status.counters.reconcile_seconds.observe(0.005);
        let speaker = PeerStatus {
            address: mesh,
            remote_as: Some(64512),
            state: State::Established,
            established: true,
            internal: true,
            since: Instant::now(),
            uptime: Some(Duration::from_secs(90)),
            info: None,
            hostname: None,
            messages_received: 0,
            messages_sent: 0,
            updates_received: 0,
            updates_sent: 0,
            prefixes_received: 5,
            prefixes_accepted: 2,
            prefixes_advertised: 3,
            export_backlog: 4,
            export_queued: 1,
            restarting: false,
        };
        let peer = |address: &str, kind, status| Peer {
            address: address.parse().unwrap(),
            kind,
            source: "x".into(),
            rr_client: false,
            status,
            bfd: None,
        };
        let peers = Peers {
            local_as: 64512,
            router_id: None,
            peers: vec![
                peer("192.0.2.11", PeerKind::Mesh, Some(speaker)),
                peer("198.51.100.1", PeerKind::Global, None),
            ],
        };
        fixed(status, peers)
    }

    async fn scrape() -> String {
        let metrics = Arc::new(AgentMetrics::new(agent()));
        let registry = registry(&metrics);
        metrics.refresh().await;
        telemetry::metrics::encode(&registry)
    }

    #[tokio::test]
    async fn observability_the_page_shows_each_session_by_peer_and_type_and_totals_by_reason_and_kind()
     {
        let page = scrape().await;
        for line in [
            "tabby_agent_ready 1",
            "tabby_agent_bgp_peers{type=\"mesh\",state=\"established\"} 1",
            "tabby_agent_bgp_peers{type=\"global\",state=\"established\"} 0",
            "tabby_agent_bgp_peer_up{peer=\"192.0.2.11\",type=\"mesh\"} 1",
            "tabby_agent_bgp_peer_up{peer=\"198.51.100.1\",type=\"global\"} 0",
            "tabby_agent_bgp_peer_uptime_seconds{peer=\"192.0.2.11\",type=\"mesh\"} 90",
            "tabby_agent_bgp_peer_prefixes_received_total{peer=\"192.0.2.11\",type=\"mesh\"} 5",
            "tabby_agent_bgp_peer_prefixes_accepted{peer=\"192.0.2.11\",type=\"mesh\"} 2",
            "tabby_agent_bgp_peer_prefixes_advertised{peer=\"192.0.2.11\",type=\"mesh\"} 3",
            "tabby_agent_bgp_peer_flaps_total{peer=\"192.0.2.11\",type=\"mesh\"} 1",
            "tabby_agent_bgp_peer_flaps_total{peer=\"198.51.100.1\",type=\"global\"} 0",
            "tabby_agent_routes{kind=\"workload\"} 4",
            "tabby_agent_routes{kind=\"multipath\"} 0",
            "tabby_agent_bgp_routes_rejected_total{reason=\"not_owner\"} 2",
            "tabby_agent_reconciliations_total 3",
            "tabby_agent_reconcile_duration_seconds_count 1",
            "tabby_agent_reconcile_duration_seconds_bucket{le=\"0.005\"} 1",
            "tabby_agent_reconcile_last_seconds 0.005",
            "tabby_agent_datastore_resyncs_total 0",
            "tabby_agent_bfd_sessions{state=\"up\"} 1",
            "tabby_agent_bfd_flaps_total{peer=\"192.0.2.11\"} 2",
        ] {
            assert!(
                page.lines().any(|l| l == line),
                "{line} missing from\n{page}"
            );
        }
        let version = env!("CARGO_PKG_VERSION");
        let build = format!("tabby_build_info{{binary=\"tabby-agent\",version=\"{version}\"}} 1");
        assert!(page.lines().any(|l| l == build), "{build} missing");
    }

    #[tokio::test]
    async fn observability_docs_metrics_md_lists_exactly_the_agents_registry() {
        telemetry::metrics::catalogue::assert_documented(DOC, "tabby-agent", &scrape().await);
    }
}
