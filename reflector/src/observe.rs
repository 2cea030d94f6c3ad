//! `/metrics` and `/readyz` for the reflector.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use proto::http::Probe;
use proto::metrics::{Exposition, MetricType};
use tokio::sync::watch;

use crate::book::{Book, Counters};

#[derive(Debug)]
pub struct Observer {
    pub book: watch::Receiver<Book>,
    pub counters: Arc<Counters>,
}

#[async_trait::async_trait]
impl Probe for Observer {
    async fn metrics(&self) -> String {
        let book = self.book.borrow().clone();
        let status = book.status().await.unwrap_or_default();
        let mut page = Exposition::default();
        let up = |established: bool| {
            status
                .iter()
                .filter(|p| p.established == established)
                .count()
        };
        page.family(
            "tabby_reflector_peers",
            MetricType::Gauge,
            "BGP sessions by state.",
        )
        .sample(
            "tabby_reflector_peers",
            &[("state", "established")],
            up(true) as f64,
        )
        .sample(
            "tabby_reflector_peers",
            &[("state", "down")],
            up(false) as f64,
        );
        let per_peer = [
            (
                "tabby_reflector_peer_up",
                "1 while the session is Established.",
            ),
            (
                "tabby_reflector_prefixes_received",
                "Prefixes the peer announced that are in the RIB.",
            ),
            (
                "tabby_reflector_prefixes_advertised",
                "Prefixes sent to the peer.",
            ),
        ];
        for (name, help) in per_peer {
            page.family(name, MetricType::Gauge, help);
            for peer in &status {
                let value = match name {
                    "tabby_reflector_peer_up" => f64::from(u8::from(peer.established)),
                    // Its routes in the RIB now, as the help says; the speaker's
                    // `prefixes_received` counts announcements over every session.
                    "tabby_reflector_prefixes_received" => peer.prefixes_accepted as f64,
                    _ => peer.prefixes_advertised as f64,
                };
                page.sample(name, &[("peer", &peer.address.to_string())], value);
            }
        }
        let c = &self.counters;
        let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed) as f64;
        page.family(
            "tabby_reflector_config_reloads_total",
            MetricType::Counter,
            "Configuration reloads, applied or rejected.",
        )
        .sample(
            "tabby_reflector_config_reloads_total",
            &[("result", "applied")],
            load(&c.reloads_ok),
        )
        .sample(
            "tabby_reflector_config_reloads_total",
            &[("result", "rejected")],
            load(&c.reloads_failed),
        );
        page.family(
            "tabby_reflector_session_transitions_total",
            MetricType::Counter,
            "Sessions that came up or went down.",
        )
        .sample(
            "tabby_reflector_session_transitions_total",
            &[("to", "established")],
            load(&c.sessions_up),
        )
        .sample(
            "tabby_reflector_session_transitions_total",
            &[("to", "down")],
            load(&c.sessions_down),
        );
        page.family(
            "tabby_reflector_routes_refused_total",
            MetricType::Counter,
            "Paths the ownership rule refused (kept, never reflected).",
        )
        .sample(
            "tabby_reflector_routes_refused_total",
            &[],
            load(&c.routes_refused),
        );
        page.finish()
    }

    async fn ready(&self) -> Result<(), String> {
        let book = self.book.borrow().clone();
        book.status()
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
            restarting: false,
        }
    }

    #[tokio::test]
    async fn prefixes_received_is_the_peers_routes_in_the_rib_not_its_announcements() {
        let (requests, mut asked) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Request::Status(reply)) = asked.recv().await {
                let _ = reply.send(vec![status()]);
            }
        });
        let book = Book {
            requests,
            local_as: 64512,
            router_id: Ipv4Addr::new(10, 0, 0, 1),
            peers: BTreeMap::new(),
            ranges: Vec::new(),
        };
        let (_keep, book) = watch::channel(book);
        let observer = Observer {
            book,
            counters: Arc::default(),
        };
        let page = observer.metrics().await;
        for line in [
            "tabby_reflector_prefixes_received{peer=\"10.0.0.2\"} 2",
            "tabby_reflector_prefixes_advertised{peer=\"10.0.0.2\"} 3",
            "tabby_reflector_peer_up{peer=\"10.0.0.2\"} 1",
        ] {
            assert!(page.lines().any(|l| l == line), "{line} in:\n{page}");
        }
    }
}
