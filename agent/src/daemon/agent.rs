//! The agent's one owning loop.
//!
//! ```text
//!  watch tasks (one per kind) ──Update──┐
//!  speaker ──────────────Notice─────────┼─▶ Agent: view, best paths ──converge──┐
//!  timers (resync, BGP sync) ───────────┘                                      │
//!      ┌──────────────────────────────────────────────────────────────────────┘
//!      ├─ desired::compute ─▶ watch<DesiredState> ─▶ reconciler task (netlink)
//!      ├─ peering::plan + export ─▶ wiring steps ─▶ speaker requests
//!      ├─ NAT pools changed ─▶ nft (blocking task)
//!      └─ pod MTU changed ─▶ the MTU file tabby-cni reads
//! ```
//!
//! Nothing is computed until every kind has been listed once: an agent that
//! converged on a half-read datastore would delete what is right.

use std::collections::BTreeSet;
use std::time::Instant;

use bgp::rib::Change;
use bgp::speaker::Notice;
use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;

use super::Options;
use super::novelty::Novelty;
use super::speaker::Bgp;
use super::status::{PassSummary, Status};
use super::sync::BgpSync;
use super::watch::{KINDS, Update};
use crate::dataplane::{DesiredState, Pass, Reconciler};
use crate::desired::{self, Cluster, NodeSettings, Paths};
use crate::nat::{self, NatPool};
use crate::peering;

pub(super) struct Agent {
    options: Options,
    settings: NodeSettings,
    /// The kernel held tabby's routes at start: this is a restart.
    restarted: bool,
    view: Cluster,
    /// Kinds not listed yet.
    unlisted: BTreeSet<&'static str>,
    best: Paths,
    bgp: Bgp,
    sync: BgpSync,
    /// Started once the first desired state exists.
    reconciler: Option<Reconciler>,
    desired: Option<watch::Sender<DesiredState>>,
    nat_applied: Option<Vec<NatPool>>,
    mtu_written: Option<u32>,
    rejected: Novelty,
    problems: Novelty,
    status: watch::Sender<Status>,
    /// Each reconciliation pass, from the reconciler task: (outcome, preserving).
    passes: mpsc::UnboundedReceiver<(PassSummary, bool)>,
    pass_sender: mpsc::UnboundedSender<(PassSummary, bool)>,
}

impl Agent {
    pub fn new(
        options: Options,
        settings: NodeSettings,
        reconciler: Reconciler,
        restarted: bool,
        status: watch::Sender<Status>,
    ) -> Self {
        let (pass_sender, passes) = mpsc::unbounded_channel();
        Self {
            status,
            passes,
            pass_sender,
            sync: BgpSync::new(restarted, options.bgp_sync_timeout, Instant::now()),
            options,
            settings,
            restarted,
            view: Cluster::default(),
            unlisted: KINDS.into_iter().collect(),
            best: Paths::new(),
            bgp: Bgp::default(),
            reconciler: Some(reconciler),
            desired: None,
            nat_applied: None,
            mtu_written: None,
            rejected: Novelty::default(),
            problems: Novelty::default(),
        }
    }

    /// Runs until `shutdown` completes or the watches end.
    pub async fn run(
        mut self,
        mut updates: mpsc::UnboundedReceiver<Update>,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut resync = tokio::time::interval(self.options.resync);
        resync.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let recheck = self.sync.next_check();
            tokio::select! {
                () = &mut shutdown => break,
                update = updates.recv() => match update {
                    Some(update) => self.update(update),
                    None => break,
                },
                notice = self.bgp.next_notice() => {
                    if let Some(notice) = notice {
                        self.notice(notice);
                    }
                }
                Some((pass, preserving)) = self.passes.recv() => self.pass(pass, preserving),
                () = sleep_until(recheck), if recheck.is_some() => {}
                _ = resync.tick() => {
                    // Repair what changed behind tabby's back; routes are the
                    // reconciler's own resync.
                    self.nat_applied = None;
                    self.mtu_written = None;
                }
            }
            // Everything already queued goes into the same pass.
            while let Ok(update) = updates.try_recv() {
                self.update(update);
            }
            while let Some(notice) = self.bgp.try_notice() {
                self.notice(notice);
            }
            if self.unlisted.is_empty() {
                self.converge();
            }
        }
        // Exit without a Cease: peers keep this node's routes (graceful restart),
        // and the kernel keeps everything, for the next agent to find.
        self.bgp.detach();
    }

    fn pass(&mut self, pass: PassSummary, preserving: bool) {
        self.status.send_modify(|status| {
            status.passes += 1;
            status.reconciled |= pass.ok && !preserving;
            status.last_pass = Some(pass);
        });
    }

    fn update(&mut self, update: Update) {
        if let Some(kind) = update.apply(&mut self.view)
            && self.unlisted.remove(kind)
            && self.unlisted.is_empty()
        {
            tracing::info!("datastore listed; converging");
        }
    }

    fn notice(&mut self, notice: Notice) {
        match notice {
            Notice::Best(Change::Best { prefix, paths }) => {
                self.best.insert(prefix, paths);
                self.sync.changed(Instant::now());
            }
            Notice::Best(Change::Withdrawn { prefix }) => {
                self.best.remove(&prefix);
                self.sync.changed(Instant::now());
            }
            session => {
                match &session {
                    Notice::PeerUp { address, remote_as } => {
                        tracing::info!(peer = %address, remote_as, "BGP session established")
                    }
                    Notice::PeerDown { address, reason } => {
                        tracing::warn!(peer = %address, %reason, "BGP session down")
                    }
                    Notice::Best(_) => {}
                }
                self.bgp.session_notice(&session);
            }
        }
    }

    /// Computes everything from the current view and hands each part to its owner.
    fn converge(&mut self) {
        let now = Instant::now();
        let me = self.settings.name.clone();
        let desired = desired::compute(&self.view, &self.settings, &self.best);
        let mut problems = desired.problems.clone();
        match peering::plan::plan(&self.view, &me, self.restarted, &read_password) {
            Ok(plan) => {
                problems.extend(plan.problems.iter().cloned());
                if self
                    .bgp
                    .apply(&plan, desired.export.keys().copied())
                    .started
                {
                    // A new speaker learns everything again.
                    if !self.best.is_empty() {
                        self.best.clear();
                        self.sync.restart(now);
                    }
                }
            }
            Err(problem) => problems.push(format!("no BGP: {problem}")),
        }
        if self.sync.check(now, self.bgp.all_up()) {
            tracing::info!(
                routes = self.best.len(),
                "BGP routes re-learned; reconciling every route"
            );
        }
        self.report(&desired, &problems);
        let peers = self.bgp.peers();
        self.status.send_modify(|status| {
            status.listed = true;
            status.bgp_synced = self.sync.synced();
            status.desired_routes = desired.dataplane.routes.len();
            status.bgp_prefixes = self.best.len();
            status.exported = desired.export.len();
            status.rejected = desired.rejected.iter().map(ToString::to_string).collect();
            status.problems = problems;
            status.peers = peers;
        });

        let mut state = desired.dataplane;
        state.preserve_gateways = !self.sync.synced();
        self.program(state);
        if self.nat_applied.as_ref() != Some(&desired.nat) {
            self.nat_applied = Some(desired.nat.clone());
            apply_nat(desired.nat);
        }
        if self.mtu_written != Some(desired.pod_mtu) {
            self.mtu_written = Some(desired.pod_mtu);
            if let Some(path) = &self.options.mtu_file {
                write_mtu(path, desired.pod_mtu);
            }
        }
    }

    /// Hands `state` to the reconciler, starting it with the first one.
    fn program(&mut self, state: DesiredState) {
        match &self.desired {
            Some(sender) => {
                sender.send_if_modified(|current| {
                    let changed = *current != state;
                    if changed {
                        *current = state;
                    }
                    changed
                });
            }
            None => {
                let Some(reconciler) = self.reconciler.take() else {
                    return;
                };
                let (sender, receiver) = watch::channel(state);
                let observe = observer(self.pass_sender.clone());
                tokio::spawn(reconciler.run(receiver, self.options.resync, observe));
                self.desired = Some(sender);
            }
        }
    }

    fn report(&mut self, desired: &desired::Desired, problems: &[String]) {
        let (refused, accepted) = self
            .rejected
            .update(desired.rejected.iter().map(ToString::to_string));
        for rejection in refused {
            tracing::warn!(%rejection, "BGP route refused");
        }
        for rejection in accepted {
            tracing::info!(%rejection, "BGP route no longer refused");
        }
        let (appeared, resolved) = self.problems.update(problems.iter().cloned());
        for problem in appeared {
            tracing::warn!(%problem, "configuration problem");
        }
        for problem in resolved {
            tracing::info!(%problem, "configuration problem resolved");
        }
    }
}

/// Logs each reconciliation's refused changes once, when they start, and tells
/// the loop about the pass.
fn observer(passes: mpsc::UnboundedSender<(PassSummary, bool)>) -> impl FnMut(Pass) + Send {
    let mut failures = Novelty::default();
    move |pass: Pass| {
        let summary = PassSummary {
            ok: pass.result.is_ok(),
            applied: pass.result.as_ref().map_or(0, |r| r.applied),
            failed: pass.result.as_ref().map_or(0, |r| r.failures.len()),
            took: pass.took,
        };
        let _ = passes.send((summary, pass.preserving));
        log_pass(&mut failures, &pass);
    }
}

fn log_pass(failures: &mut Novelty, pass: &Pass) {
    match &pass.result {
        Ok(report) => {
            let (new, _) = failures.update(report.failures.iter().map(ToString::to_string));
            for failure in new {
                tracing::warn!(%failure, "kernel refused a change");
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
        Err(error) => tracing::warn!(%error, "dataplane reconciliation failed; retrying"),
    }
}

/// Reads a BGP password the datastore references.
fn read_password(password: &api::resources::BgpPassword) -> Result<Vec<u8>, String> {
    match (&password.file, &password.secret_key_ref) {
        (Some(path), _) => std::fs::read(path)
            .map(|mut key| {
                while key.last().is_some_and(u8::is_ascii_whitespace) {
                    key.pop();
                }
                key
            })
            .map_err(|e| format!("reading {path}: {e}")),
        (None, Some(secret)) => Err(format!(
            "secretKeyRef {}/{} needs the kubernetes datastore; use file instead",
            secret.name, secret.key
        )),
        (None, None) => Err("neither file nor secretKeyRef is set".into()),
    }
}

fn apply_nat(pools: Vec<NatPool>) {
    tokio::task::spawn_blocking(move || match nat::apply(&nat::render(&pools)) {
        Ok(()) => tracing::debug!(pools = pools.len(), "NAT outgoing applied"),
        Err(error) => {
            tracing::warn!(%error, "NAT outgoing not applied; retrying at the next resync")
        }
    });
}

/// Writes the pods' MTU for tabby-cni, atomically (a reader never sees half a file).
fn write_mtu(path: &std::path::Path, mtu: u32) {
    let temporary = path.with_extension("tmp");
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&temporary, format!("{mtu}\n")))
        .and_then(|()| std::fs::rename(&temporary, path));
    match written {
        Ok(()) => tracing::info!(mtu, path = %path.display(), "pod MTU written"),
        Err(error) => tracing::warn!(%error, path = %path.display(), "cannot write the pod MTU"),
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
