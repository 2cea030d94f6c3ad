//! The reconciler as a long-running task: follows the latest desired state,
//! resyncs periodically to repair what changed behind tabby's back, and reports
//! every pass to its owner (for logs and metrics).

use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use super::model::DesiredState;
use super::netlink::NetlinkError;
use super::reconcile::{Reconciler, Report};

/// The first retry after a pass the kernel refused part of; it doubles up to the
/// resync interval. A pod's route is refused until tabby-cni has made its veth,
/// and the pod is unreachable until it is in: that wait must not be a resync.
const FIRST_RETRY: Duration = Duration::from_millis(100);

/// One reconciliation pass.
#[derive(Debug)]
pub struct Pass {
    pub result: Result<Report, NetlinkError>,
    /// From the first read to the last answer.
    pub took: Duration,
    /// The state it reconciled to kept gateway routes as they were.
    pub preserving: bool,
}

impl Reconciler {
    /// Keeps the kernel at the latest desired state until the sender is dropped:
    /// reconciles on every new state, every `resync`, and when a held workload
    /// deletion falls due. Each pass goes to `observe`; a pass with failures is
    /// retried after [`FIRST_RETRY`], backing off to `resync`.
    pub async fn run(
        mut self,
        mut desired: watch::Receiver<DesiredState>,
        resync: Duration,
        mut observe: impl FnMut(Pass) + Send,
    ) {
        let mut timer = tokio::time::interval(resync);
        timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut backoff = FIRST_RETRY;
        let mut retry = None;
        loop {
            let due = self.grace.next_due();
            tokio::select! {
                changed = desired.changed() => if changed.is_err() { return },
                _ = timer.tick() => {}
                () = sleep_until(due), if due.is_some() => {}
                () = sleep_until(retry), if retry.is_some() => {}
            }
            // Cloned so the sender is never blocked while netlink work is under way.
            let state = desired.borrow_and_update().clone();
            let start = Instant::now();
            let result = self.reconcile(&state).await;
            let failed = result.as_ref().map_or(true, |r| !r.failures.is_empty());
            retry = failed.then(|| Instant::now() + backoff);
            backoff = if failed {
                (backoff * 2).min(resync)
            } else {
                FIRST_RETRY
            };
            observe(Pass {
                result,
                took: start.elapsed(),
                preserving: state.preserve_gateways,
            });
        }
    }

    /// An observer that logs each pass.
    pub fn log(pass: Pass) {
        match pass.result {
            Ok(report) => {
                for failure in &report.failures {
                    tracing::warn!(%failure, "kernel refused a change");
                }
                for route in &report.conflicts {
                    tracing::warn!(%route, "another protocol holds this destination; not programmed");
                }
                if report.changes() > 0 {
                    tracing::info!(
                        applied = report.applied,
                        failed = report.failures.len(),
                        took_ms = pass.took.as_millis(),
                        "dataplane reconciled"
                    );
                }
            }
            Err(error) => {
                tracing::warn!(%error, "dataplane reconciliation failed; retrying at the next resync")
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
