//! `tabby-ipam-controller`'s loop and metrics: a garbage-collection pass every
//! interval, its report logged, its figures on `/metrics`.
//!
//! ```text
//! tabby_ipam_gc_candidates{kind}        what looks reclaimable now (gauge)
//! tabby_ipam_gc_reclaimed_total{kind}   what was reclaimed (counter)
//! tabby_ipam_gc_spared_total{kind}      due, but alive when checked right before (counter)
//! tabby_ipam_gc_passes_total{result}    passes, "ok" or "failed" (counter)
//! tabby_ipam_gc_last_pass_timestamp_seconds
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use telemetry::http::Probe;
use telemetry::metrics::{self, DescriptorEncoder, Scrape};

use ipam::gc::{Collector, Report, Target, describe};

/// Every kind of candidate, so each gauge is present from the first scrape.
const KINDS: [&str; 9] = [
    "pod_address",
    "tunnel_address",
    "node_address",
    "node_block",
    "pending_affinity",
    "unconfirmed_affinity",
    "empty_block",
    "handle",
    "node",
];

/// The controller's figures, updated after every pass.
#[derive(Debug, Default)]
pub struct Metrics {
    state: Mutex<Figures>,
}

#[derive(Debug, Default)]
struct Figures {
    candidates: BTreeMap<&'static str, u64>,
    reclaimed: BTreeMap<&'static str, u64>,
    spared: BTreeMap<&'static str, u64>,
    passes_ok: u64,
    passes_failed: u64,
    last_pass: Option<SystemTime>,
    last_failure: Option<String>,
}

impl Metrics {
    pub fn record(&self, report: &Report) {
        let mut figures = self.lock();
        figures.candidates.clear();
        for candidate in &report.candidates {
            *figures
                .candidates
                .entry(candidate.target.kind())
                .or_default() += 1;
        }
        for target in &report.reclaimed {
            *figures.reclaimed.entry(target.kind()).or_default() += 1;
        }
        for target in &report.spared {
            *figures.spared.entry(target.kind()).or_default() += 1;
        }
        figures.passes_ok += 1;
        figures.last_pass = Some(SystemTime::now());
        figures.last_failure = None;
    }

    pub fn record_failure(&self, error: String) {
        let mut figures = self.lock();
        figures.passes_failed += 1;
        figures.last_failure = Some(error);
    }

    fn write(&self, page: &mut Scrape<'_>) -> fmt::Result {
        let figures = self.lock();
        let per_kind = |values: &BTreeMap<&str, u64>| {
            KINDS.map(|kind| ([("kind", kind)], values.get(kind).copied().unwrap_or(0)))
        };
        page.gauges(
            "tabby_ipam_gc_candidates",
            "IPAM objects that look reclaimable, by kind.",
            per_kind(&figures.candidates),
        )?;
        page.counters(
            "tabby_ipam_gc_reclaimed_total",
            "IPAM objects reclaimed, by kind.",
            per_kind(&figures.reclaimed),
        )?;
        page.counters(
            "tabby_ipam_gc_spared_total",
            "Candidates found alive by the check right before reclaiming, by kind.",
            per_kind(&figures.spared),
        )?;
        page.counters(
            "tabby_ipam_gc_passes_total",
            "Garbage-collection passes, by result.",
            [
                ([("result", "ok")], figures.passes_ok),
                ([("result", "failed")], figures.passes_failed),
            ],
        )?;
        let last = figures
            .last_pass
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0.0, |d| d.as_secs_f64());
        page.gauge(
            "tabby_ipam_gc_last_pass_timestamp_seconds",
            "When the last successful pass ended (Unix time).",
            last,
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Figures> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl metrics::Collector for Metrics {
    fn encode(&self, encoder: DescriptorEncoder<'_>) -> fmt::Result {
        self.write(&mut Scrape::new(encoder))
    }
}

#[async_trait::async_trait]
impl Probe for Metrics {
    /// Ready once a pass succeeded, and as long as the last one did.
    async fn ready(&self) -> Result<(), String> {
        let figures = self.lock();
        match (&figures.last_failure, figures.last_pass) {
            (Some(failure), _) => Err(failure.clone()),
            (None, None) => Err("no pass has finished yet".into()),
            (None, Some(_)) => Ok(()),
        }
    }
}

/// Runs a pass every `interval`, forever.
pub async fn run(mut collector: Collector, interval: Duration, metrics: Arc<Metrics>) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match collector.run_once(Instant::now()).await {
            Ok(report) => {
                log(&report);
                metrics.record(&report);
            }
            Err(error) => {
                tracing::error!(%error, "IPAM garbage-collection pass failed; retrying next interval");
                metrics.record_failure(error.to_string());
            }
        }
    }
}

/// One line per reclaimed, spared or failed object, and a summary.
pub fn log(report: &Report) {
    let line = |target: &Target| describe(target);
    for target in &report.reclaimed {
        tracing::info!(target = %line(target), kind = target.kind(), "reclaimed");
    }
    for target in &report.spared {
        tracing::info!(target = %line(target), "spared: alive or changed when checked again");
    }
    for warning in &report.warnings {
        tracing::warn!("{warning}");
    }
    for error in &report.errors {
        tracing::warn!("{error}");
    }
    tracing::info!(
        candidates = report.candidates.len(),
        reclaimed = report.reclaimed.len(),
        spared = report.spared.len(),
        "IPAM garbage-collection pass"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipam::gc::Candidate;

    #[test]
    fn ipam_metrics_count_candidates_and_reclamations_by_kind() {
        let metrics = Metrics::default();
        let handle = Target::Handle { handle: "h".into() };
        metrics.record(&Report {
            candidates: vec![Candidate {
                target: handle.clone(),
                reason: "holds no address".into(),
                age_seconds: 0,
            }],
            reclaimed: vec![handle],
            ..Report::default()
        });
        let mut registry = telemetry::metrics::Registry::default();
        registry.register_collector(Box::new(metrics));
        let page = telemetry::metrics::encode(&registry);
        assert!(
            page.contains("tabby_ipam_gc_candidates{kind=\"handle\"} 1\n"),
            "{page}"
        );
        assert!(
            page.contains("tabby_ipam_gc_candidates{kind=\"pod_address\"} 0\n"),
            "{page}"
        );
        assert!(
            page.contains("tabby_ipam_gc_reclaimed_total{kind=\"handle\"} 1\n"),
            "{page}"
        );
        assert!(
            page.contains("tabby_ipam_gc_passes_total{result=\"ok\"} 1\n"),
            "{page}"
        );
    }
}
