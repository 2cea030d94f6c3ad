//! `tabby-ipam-controller`'s loop and metrics: a garbage-collection pass every
//! interval, its report logged, its figures (the pools' use, what was found and
//! reclaimed) on `/metrics`. [`registry`] is the one place the controller's
//! metrics are registered; `docs/metrics.md` lists them (a test below holds the
//! two equal).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use telemetry::http::Probe;
use telemetry::metrics::{self, DescriptorEncoder, Scrape};

use ipam::gc::{Collector, Report, Target, describe};
use ipam::usage::PoolUsage;

/// The controller's registry: what every binary shows and its [`Metrics`].
pub fn registry(metrics: &Arc<Metrics>) -> metrics::Registry {
    let mut registry = metrics::registry("tabby-ipam-controller");
    registry.register_collector(Box::new(Arc::clone(metrics)));
    registry
}

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
    usage: Vec<PoolUsage>,
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
        figures.usage.clone_from(&report.usage);
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
        write_usage(&figures.usage, page)?;
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

/// Each pool's size and use, and per node its blocks and addresses.
fn write_usage(pools: &[PoolUsage], page: &mut Scrape<'_>) -> fmt::Result {
    page.gauges(
        "tabby_ipam_pool_size",
        "Addresses in the pool's CIDR.",
        pools.iter().map(|p| ([("pool", p.pool.as_str())], p.size)),
    )?;
    page.gauges(
        "tabby_ipam_pool_utilization_ratio",
        "Addresses allocated in the pool over its size.",
        pools
            .iter()
            .map(|p| ([("pool", p.pool.as_str())], p.utilization())),
    )?;
    let per_node = || {
        pools.iter().flat_map(|p| {
            p.nodes
                .iter()
                .map(|(node, usage)| ([("pool", p.pool.as_str()), ("node", node.as_str())], usage))
        })
    };
    page.gauges(
        "tabby_ipam_allocations_in_use",
        "Addresses allocated, by pool and by the node whose block holds them.",
        per_node().map(|(labels, usage)| (labels, usage.allocations)),
    )?;
    page.gauges(
        "tabby_ipam_blocks",
        "Blocks carved from the pool, by the node they are affine to.",
        per_node().map(|(labels, usage)| (labels, usage.blocks)),
    )
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
        let page = telemetry::metrics::encode(&registry(&Arc::new(metrics)));
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

    #[test]
    fn observability_pool_use_is_shown_per_pool_and_node_and_docs_metrics_md_lists_the_registry() {
        let metrics = Metrics::default();
        metrics.record(&Report {
            usage: vec![PoolUsage {
                pool: "default-ipv4".into(),
                size: 256,
                nodes: [(
                    "n1".to_owned(),
                    ipam::usage::NodeUsage {
                        blocks: 2,
                        allocations: 64,
                    },
                )]
                .into(),
            }],
            ..Report::default()
        });
        let page = telemetry::metrics::encode(&registry(&Arc::new(metrics)));
        for line in [
            "tabby_ipam_pool_size{pool=\"default-ipv4\"} 256",
            "tabby_ipam_pool_utilization_ratio{pool=\"default-ipv4\"} 0.25",
            "tabby_ipam_allocations_in_use{pool=\"default-ipv4\",node=\"n1\"} 64",
            "tabby_ipam_blocks{pool=\"default-ipv4\",node=\"n1\"} 2",
        ] {
            assert!(page.lines().any(|l| l == line), "{line} in:\n{page}");
        }
        telemetry::metrics::catalogue::assert_documented(
            include_str!("../../docs/metrics.md"),
            "tabby-ipam-controller",
            &page,
        );
    }
}
