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
                    "tabby_reflector_prefixes_received" => peer.prefixes_received as f64,
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
