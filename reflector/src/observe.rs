//! `/metrics` and `/readyz` for the reflector: the sessions are asked of the
//! speaker before each scrape, the counters are the daemon's. [`registry`] is
//! the one place the reflector's metrics are registered; `docs/metrics.md`
//! lists them (a test below holds the two equal).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bgp::speaker::PeerStatus;
use telemetry::http::Probe;
use telemetry::metrics::{Collector, DescriptorEncoder, Registry, Scrape};
use tokio::sync::watch;

use crate::view::{Counters, SpeakerView};

/// The reflector's registry: what every binary shows and the [`Observer`].
pub fn registry(observer: &Arc<Observer>) -> Registry {
    let mut registry = telemetry::metrics::registry("tabby-reflector");
    registry.register_collector(Box::new(Arc::clone(observer)));
    registry
}

#[derive(Debug)]
pub struct Observer {
    view: watch::Receiver<SpeakerView>,
    counters: Arc<Counters>,
    /// The sessions as the speaker told them at the last refresh.
    sessions: Mutex<Vec<PeerStatus>>,
}

impl Observer {
    pub fn new(view: watch::Receiver<SpeakerView>, counters: Arc<Counters>) -> Self {
        Self {
            view,
            counters,
            sessions: Mutex::default(),
        }
    }

    fn write(&self, page: &mut Scrape<'_>) -> fmt::Result {
        let sessions = self
            .sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let up = |established: bool| {
            sessions
                .iter()
                .filter(|p| p.established == established)
                .count()
        };
        page.gauges(
            "tabby_reflector_peers",
            "BGP sessions by state.",
            [
                ([("state", "established")], up(true)),
                ([("state", "down")], up(false)),
            ],
        )?;
        let addresses: Vec<String> = sessions.iter().map(|p| p.address.to_string()).collect();
        let per_peer = |value: fn(&PeerStatus) -> usize| {
            sessions
                .iter()
                .zip(&addresses)
                .map(move |(peer, address)| ([("peer", address.as_str())], value(peer)))
        };
        page.gauges(
            "tabby_reflector_peer_up",
            "1 while the session is Established.",
            per_peer(|p| usize::from(p.established)),
        )?;
        // Its routes in the RIB now, as the help says; the speaker's
        // `prefixes_received` counts announcements over every session.
        page.gauges(
            "tabby_reflector_prefixes_received",
            "Prefixes the peer announced that are in the RIB.",
            per_peer(|p| p.prefixes_accepted),
        )?;
        page.gauges(
            "tabby_reflector_prefixes_advertised",
            "Prefixes sent to the peer.",
            per_peer(|p| p.prefixes_advertised),
        )?;
        page.gauges(
            "tabby_reflector_export_backlog",
            "Prefixes changed and not yet encoded for the peer (its Adj-RIB-Out's backlog).",
            per_peer(|p| p.export_backlog),
        )?;
        page.gauges(
            "tabby_reflector_export_queued",
            "Chunks of encoded UPDATEs queued for the peer's session, not yet written.",
            per_peer(|p| p.export_queued),
        )?;
        let bfd = self.view.borrow().bfd.borrow().clone();
        page.gauges(
            "tabby_reflector_bfd_sessions",
            "BFD sessions beside BGP sessions, by state.",
            bfd::peers::count_by_state(bfd.values().map(|b| b.state))
                .map(|(name, count)| ([("state", name)], count)),
        )?;
        let flaps: Vec<(String, u64)> = bfd.iter().map(|(a, b)| (a.to_string(), b.flaps)).collect();
        page.counters(
            "tabby_reflector_bfd_flaps_total",
            "Times a peer's BFD session went from Up to Down, since it was added.",
            flaps
                .iter()
                .map(|(peer, n)| ([("peer", peer.as_str())], *n)),
        )?;
        let c = &self.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        page.counters(
            "tabby_reflector_config_reloads_total",
            "Configuration reloads, applied or rejected.",
            [
                ([("result", "applied")], load(&c.reloads_ok)),
                ([("result", "rejected")], load(&c.reloads_failed)),
            ],
        )?;
        page.counters(
            "tabby_reflector_session_transitions_total",
            "Sessions that came up or went down.",
            [
                ([("to", "established")], load(&c.sessions_up)),
                ([("to", "down")], load(&c.sessions_down)),
            ],
        )?;
        let no_labels: [(&str, &str); 0] = [];
        page.counters(
            "tabby_reflector_routes_refused_total",
            "Paths the ownership rule refused (kept, never reflected).",
            [(no_labels, load(&c.routes_refused))],
        )
    }
}

impl Collector for Observer {
    fn encode(&self, encoder: DescriptorEncoder<'_>) -> fmt::Result {
        self.write(&mut Scrape::new(encoder))
    }
}

#[async_trait::async_trait]
impl Probe for Observer {
    async fn refresh(&self) {
        let view = self.view.borrow().clone();
        let sessions = view.status().await.unwrap_or_default();
        *self
            .sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = sessions;
    }

    async fn ready(&self) -> Result<(), String> {
        let view = self.view.borrow().clone();
        view.status()
            .await
            .map(drop)
            .ok_or_else(|| "the BGP speaker is not running".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::Ipv4Addr;
    use std::time::Instant;

    use bgp::session::State;
    use bgp::speaker::{PeerStatus, Request};
    use tokio::sync::mpsc;

    use super::*;

    /// A peer that announced 5 prefixes over its sessions, 2 of which are in the RIB.
    fn status() -> PeerStatus {
        PeerStatus {
            address: "10.0.0.2".parse().unwrap(),
            remote_as: Some(64512),
            state: State::Established,
            established: true,
            internal: true,
            since: Instant::now(),
            uptime: None,
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
        }
    }

    /// The page of a reflector with that one peer.
    async fn scrape() -> String {
        let (requests, mut asked) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Request::Status(reply)) = asked.recv().await {
                let _ = reply.send(vec![status()]);
            }
        });
        let view = SpeakerView {
            requests,
            local_as: 64512,
            router_id: Ipv4Addr::new(10, 0, 0, 1),
            peers: BTreeMap::new(),
            ranges: Vec::new(),
            bfd: watch::channel(BTreeMap::from([(
                "10.0.0.2".parse().unwrap(),
                bfd::peers::PeerState {
                    state: bfd::State::Up,
                    flaps: 2,
                },
            )]))
            .1,
        };
        let (_keep, view) = watch::channel(view);
        let observer = Arc::new(Observer::new(view, Arc::default()));
        let registry = registry(&observer);
        observer.refresh().await;
        telemetry::metrics::encode(&registry)
    }

    #[tokio::test]
    async fn prefixes_received_is_the_peers_routes_in_the_rib_not_its_announcements() {
        let page = scrape().await;
        for line in [
            "tabby_reflector_prefixes_received{peer=\"10.0.0.2\"} 2",
            "tabby_reflector_prefixes_advertised{peer=\"10.0.0.2\"} 3",
            "tabby_reflector_export_backlog{peer=\"10.0.0.2\"} 4",
            "tabby_reflector_export_queued{peer=\"10.0.0.2\"} 1",
            "tabby_reflector_peer_up{peer=\"10.0.0.2\"} 1",
            "tabby_reflector_bfd_sessions{state=\"up\"} 1",
            "tabby_reflector_bfd_sessions{state=\"down\"} 0",
            "tabby_reflector_bfd_flaps_total{peer=\"10.0.0.2\"} 2",
        ] {
            assert!(page.lines().any(|l| l == line), "{line} in:\n{page}");
        }
    }

    #[tokio::test]
    async fn observability_docs_metrics_md_lists_exactly_the_reflectors_registry() {
        telemetry::metrics::catalogue::assert_documented(
            include_str!("../../docs/metrics.md"),
            "tabby-reflector",
            &scrape().await,
        );
    }
}
