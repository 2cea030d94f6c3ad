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

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use api::datastore::Backend;
use api::resources::{AllowedUse, BgpPassword, Cidr, EncapsulationMode};
use api::selector::Selector;
use bgp::rib::Change;
use bgp::speaker::{Hooks, JudgeHook, Notice};
use ipnet::IpNet;
use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;

use super::Options;
use super::ongoing::Ongoing;
use super::query::{Peer, Peers, Query, Reporting};
use super::speaker::Bgp;
use super::status::PassSummary;
use super::sync::BgpSync;
use super::watch::{KINDS, Update};
use crate::dataplane::{DesiredState, Pass, Reconciler, RouteTarget};
use crate::desired::{self, Cluster, Desired, Judge, NodeSettings, Paths, Rejection};
use crate::nat::{self, NatPool};
use crate::peering::passwords::{self, Passwords};
use crate::peering::{self, DesiredBgp};
use bfd::peers::Peers as BfdPeers;

/// What the status says of Service advertisement: each prefix advertised with
/// why, then each Service address held back with why.
fn service_lines(services: &desired::ServiceAdvertisement) -> Vec<String> {
    services
        .routes
        .iter()
        .map(|route| format!("{} advertised: {}", route.prefix, route.why))
        .chain(services.held_back.iter().cloned())
        .collect()
}

/// Import refusals queued for the loop; more are counted (see `JudgeHook`).
const REFUSALS_QUEUED: usize = 256;
/// How long a stop waits for its BFD sessions to tell their peers AdminDown.
const BFD_ADMIN_DOWN_WAIT: Duration = Duration::from_millis(500);

pub(super) struct Agent {
    options: Options,
    settings: NodeSettings,
    /// The kernel held tabby's routes at start: this is a restart.
    restarted: bool,
    view: Cluster,
    /// Kinds not listed yet.
    unlisted: BTreeSet<&'static str>,
    /// The view changed since it was last saved (see `last_view`), and the task
    /// saving it, one at a time.
    view_changed: bool,
    /// Why Services are not followed, when they are not.
    services_unread: Option<String>,
    saving: Option<tokio::task::JoinHandle<()>>,
    best: Paths,
    bgp: Bgp,
    /// BFD beside the BGP sessions that have it.
    bfd: BfdPeers,
    sync: BgpSync,
    /// Started once the first desired state exists.
    reconciler: Option<Reconciler>,
    desired: Option<watch::Sender<DesiredState>>,
    nat_applied: Option<Vec<NatPool>>,
    /// The pools' encapsulation when tunnel addresses were last ensured.
    tunnels_for: Option<Vec<TunnelPool>>,
    /// The task ensuring them: one at a time, so a slow datastore is not sent a
    /// new allocation on every resync while the last one still waits.
    tunnel_task: Option<tokio::task::JoinHandle<()>>,
    store: Arc<dyn Backend>,
    mtu_written: Option<u32>,
    rejected: Ongoing,
    problems: Ongoing,
    reporting: Reporting,
    /// The last plan and desired state, for the status API.
    plan: Option<DesiredBgp>,
    last: Option<Desired>,
    /// Something changed since the last convergence.
    dirty: bool,
    /// The ownership rule's view, which the speaker's import hook reads.
    judge: watch::Sender<Arc<Judge>>,
    /// What the hook refused, and how many refusals did not fit the queue.
    refused: mpsc::Receiver<Rejection>,
    refusal_overflow: Arc<AtomicU64>,
    overflow_reported: u64,
    /// Refused paths by prefix, peer and next hop (each logged once), kept for
    /// the status until the rule accepts them.
    import_refusals: BTreeMap<(IpNet, Option<IpAddr>, IpAddr), Rejection>,
    /// BGP passwords (files, Secrets), read off this loop.
    passwords: Passwords,
    password_results: mpsc::Receiver<(BgpPassword, passwords::Key)>,
    /// Read the passwords again at the next convergence (the resync).
    reread_passwords: bool,
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
        reporting: Reporting,
        store: Arc<dyn Backend>,
    ) -> Self {
        let (pass_sender, passes) = mpsc::unbounded_channel();
        let (judge, judge_view) = watch::channel(Arc::new(Judge::default()));
        let (refusals, refused) = mpsc::channel(REFUSALS_QUEUED);
        let refusal_overflow = Arc::new(AtomicU64::new(0));
        let hook = JudgeHook::new(
            judge_view,
            Judge::check,
            refusals,
            Arc::clone(&refusal_overflow),
        );
        let (passwords, password_results) =
            Passwords::new(options.bgp_password_dir.clone(), store.clone());
        Self {
            judge,
            refused,
            refusal_overflow,
            overflow_reported: 0,
            import_refusals: BTreeMap::new(),
            passwords,
            password_results,
            reread_passwords: false,
            reporting,
            plan: None,
            last: None,
            dirty: true,
            passes,
            pass_sender,
            sync: BgpSync::new(
                restarted,
                options.bgp_sync_timeout,
                bgp::speaker::config::DEFAULT_SELECTION_DEFERRAL,
                Instant::now(),
            ),
            options,
            settings,
            restarted,
            view: Cluster::default(),
            unlisted: KINDS.into_iter().collect(),
            view_changed: false,
            saving: None,
            best: Paths::new(),
            bgp: Bgp::new(Hooks {
                import: Some(Arc::new(hook)),
                export: None,
            }),
            bfd: BfdPeers::default(),
            reconciler: Some(reconciler),
            desired: None,
            nat_applied: None,
            tunnels_for: None,
            tunnel_task: None,
            store,
            mtu_written: None,
            rejected: Ongoing::default(),
            problems: Ongoing::default(),
            services_unread: None,
        }
    }

    /// Why Services cannot be read (`None` when they are followed): a problem in
    /// the status while the cluster configures service ranges.
    pub fn services_unread(mut self, why: Option<String>) -> Self {
        self.services_unread = why;
        self
    }

    /// Starts from `saved`, the last view saved (the datastore is unreachable): as
    /// if every kind were listed, until the watches list them for real.
    pub fn starting_from(mut self, saved: Option<Cluster>) -> Self {
        if let Some(saved) = saved {
            self.view = saved;
            self.unlisted.clear();
        }
        self
    }

    /// Runs until `shutdown` completes or the watches end.
    pub async fn run(
        mut self,
        mut updates: mpsc::Receiver<Update>,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut resync = tokio::time::interval(self.options.resync);
        resync.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let recheck = self.sync.next_check(Instant::now());
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
                change = self.bfd.next_change() => {
                    if let Some(change) = change {
                        self.bgp.forwarding(change);
                    }
                    // The status shows the new state.
                    self.dirty = true;
                }
                Some((pass, preserving)) = self.passes.recv() => self.pass(pass, preserving),
                Some(query) = self.reporting.queries.recv() => self.answer(query),
                Some(rejection) = self.refused.recv() => self.refused_at_import(rejection),
                Some((password, key)) = self.password_results.recv() => {
                    self.dirty |= self.passwords.read(password, key);
                }
                () = sleep_until(recheck), if recheck.is_some() => self.dirty = true,
                _ = resync.tick() => {
                    // Repair what changed behind tabby's back; routes are the
                    // reconciler's own resync.
                    self.nat_applied = None;
                    self.mtu_written = None;
                    self.tunnels_for = None;
                    self.reread_passwords = true;
                    self.dirty = true;
                }
            }
            // Everything already queued goes into the same pass.
            while let Ok(update) = updates.try_recv() {
                self.update(update);
            }
            while let Some(notice) = self.bgp.try_notice() {
                self.notice(notice);
            }
            if self.unlisted.is_empty() && std::mem::take(&mut self.dirty) {
                self.converge();
            }
        }
        // Exit without a Cease: peers keep this node's routes (graceful restart),
        // and the kernel keeps everything, for the next agent to find. BFD says
        // AdminDown first, so that peers do not take the stop for a failure.
        self.bfd.admin_down(BFD_ADMIN_DOWN_WAIT).await;
        self.bgp.detach();
    }

    fn pass(&mut self, pass: PassSummary, preserving: bool) {
        self.reporting.status.send_modify(|status| {
            status.passes += 1;
            status.reconciled |= pass.ok && !preserving;
            status.counters.refused_changes += pass.refused.len() as u64;
            status.counters.failed_passes += u64::from(!pass.ok);
            status
                .counters
                .reconcile_seconds
                .observe(pass.took.as_secs_f64());
            status.last_pass = Some(pass);
        });
    }

    fn refused_at_import(&mut self, rejection: Rejection) {
        let key = (rejection.prefix, rejection.peer, rejection.next_hop);
        if self.import_refusals.contains_key(&key) {
            return;
        }
        tracing::warn!(%rejection, "BGP route refused at import");
        let reason = rejection.refusal.reason();
        self.import_refusals.insert(key, rejection);
        let listed: Vec<String> = self
            .import_refusals
            .values()
            .map(ToString::to_string)
            .collect();
        self.reporting.status.send_modify(|status| {
            *status.counters.rejections.entry(reason).or_default() += 1;
            status.rejected_at_import = listed;
        });
    }

    /// Forgets the import refusals `judge` no longer upholds (the speaker selects
    /// those paths again once it revalidates), and reports refusals that did not
    /// fit the hook's queue.
    fn review_import_refusals(&mut self, judge: &Judge) {
        let before = self.import_refusals.len();
        self.import_refusals
            .retain(|(prefix, peer, next_hop), rejection| {
                let upheld = judge.check(*prefix, *next_hop, *peer).is_err();
                if !upheld {
                    tracing::info!(%rejection, "BGP route no longer refused at import");
                }
                upheld
            });
        if self.import_refusals.len() != before {
            let listed: Vec<String> = self
                .import_refusals
                .values()
                .map(ToString::to_string)
                .collect();
            self.reporting
                .status
                .send_modify(|status| status.rejected_at_import = listed);
        }
        let overflow = self.refusal_overflow.load(Ordering::Relaxed);
        if overflow > self.overflow_reported {
            tracing::warn!(
                unreported = overflow - self.overflow_reported,
                total = overflow,
                "BGP import refusals came faster than they could be logged; counted only"
            );
            self.overflow_reported = overflow;
        }
    }

    fn answer(&mut self, query: Query) {
        match query {
            Query::Routes { prefix, reply } => {
                // Every path of the RIB, from the speaker, on its own time.
                let routes = self.bgp.routes();
                tokio::spawn(async move {
                    let all = match routes {
                        Some(answer) => answer.await.unwrap_or_default(),
                        None => Vec::new(),
                    };
                    let wanted = all
                        .into_iter()
                        .filter(|(p, _)| prefix.is_none_or(|wanted| *p == wanted))
                        .collect();
                    let _ = reply.send(wanted);
                });
            }
            Query::Desired(reply) => {
                let _ = reply.send(self.last.clone());
            }
            Query::Node(reply) => {
                let _ = reply.send(self.view.nodes.get(&self.settings.name).cloned());
            }
            Query::Peers(reply) => {
                let Some(plan) = &self.plan else {
                    let _ = reply.send(Peers::default());
                    return;
                };
                let bfd = self.bfd.states();
                let mut answer = Peers {
                    local_as: plan.speaker.local_as,
                    router_id: Some(plan.speaker.router_id),
                    peers: plan
                        .peers
                        .values()
                        .map(|p| Peer {
                            address: p.config.address,
                            kind: p.kind,
                            source: p.source.clone(),
                            rr_client: p.config.rr_client,
                            status: None,
                            bfd: bfd.get(&p.config.address).copied(),
                        })
                        .collect(),
                };
                let speaker = self.bgp.status();
                // The speaker answers on its own time; the loop goes on.
                tokio::spawn(async move {
                    if let Some(statuses) = match speaker {
                        Some(answer) => answer.await.ok(),
                        None => None,
                    } {
                        for peer in &mut answer.peers {
                            peer.status =
                                statuses.iter().find(|s| s.address == peer.address).cloned();
                        }
                    }
                    let _ = reply.send(answer);
                });
            }
        }
    }

    fn update(&mut self, update: Update) {
        self.dirty = true;
        if matches!(update, Update::Lost { .. }) {
            self.reporting
                .status
                .send_modify(|status| status.counters.resyncs += 1);
        }
        // Services are listed from the Kubernetes API again after a restart.
        self.view_changed |= !matches!(
            update,
            Update::Lost { .. } | Update::Services(_) | Update::EndpointSlices(_)
        );
        if let Some(kind) = update.apply(&mut self.view)
            && self.unlisted.remove(kind)
            && self.unlisted.is_empty()
        {
            tracing::info!("datastore listed; converging");
        }
    }

    fn notice(&mut self, notice: Notice) {
        self.dirty = true;
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
                        tracing::warn!(peer = %address, %reason, "BGP session down");
                        self.reporting.status.send_modify(|status| {
                            *status.counters.flaps.entry(*address).or_default() += 1;
                        });
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
        self.passwords.want(
            password_references(&self.view),
            std::mem::take(&mut self.reread_passwords),
        );
        let plan = peering::plan::plan(
            &self.view,
            &me,
            self.settings.router_id,
            self.restarted,
            &|p| self.passwords.get(p),
        );
        let roles = plan.as_ref().map(DesiredBgp::roles).unwrap_or_default();
        let desired = desired::compute(&self.view, &self.settings, &self.best, roles);
        let mut problems = desired.problems.clone();
        if let Some(why) = &self.services_unread
            && !desired.services.routes.is_empty()
        {
            problems.push(why.clone());
        }
        self.review_import_refusals(&desired.judge);
        let judge = &desired.judge;
        let judged_anew = self.judge.send_if_modified(|current| {
            let changed = **current != *judge;
            if changed {
                *current = Arc::new(judge.clone());
            }
            changed
        });
        match plan {
            Ok(plan) => {
                problems.extend(plan.problems.iter().cloned());
                self.bfd.apply(
                    plan.peers
                        .iter()
                        .filter_map(|(address, p)| Some((*address, p.bfd.clone()?)))
                        .collect(),
                );
                if self.bgp.apply(&plan, &desired.export).started {
                    // BFD strict mode: the new speaker learns which paths are Up.
                    for address in self.bfd.up() {
                        self.bgp.forwarding(bfd::peers::Change::Up(address));
                    }
                    // A new speaker learns everything again.
                    if !self.best.is_empty() {
                        self.best.clear();
                        self.sync.restart(now);
                    }
                }
                self.plan = Some(plan);
            }
            Err(problem) => {
                problems.push(format!("no BGP: {problem}"));
                self.plan = None;
            }
        }
        if judged_anew {
            self.bgp.revalidate();
        }
        if self.sync.check(now, self.bgp.all_up()) {
            tracing::info!(
                routes = self.best.len(),
                "BGP routes re-learned; reconciling every route"
            );
        }
        let new_rejections = self.report(&desired, &problems);
        let peers = self.bgp.peers(&self.bfd.states());
        self.reporting.status.send_modify(|status| {
            for reason in new_rejections {
                *status.counters.rejections.entry(reason).or_default() += 1;
            }
            status.listed = true;
            status.bgp_synced = self.sync.synced();
            status.desired_routes = desired.dataplane.routes.len();
            let routes = desired.dataplane.routes.values();
            status.routes_by_kind = RouteTarget::KINDS
                .into_iter()
                .map(|kind| (kind, routes.clone().filter(|t| t.kind() == kind).count()))
                .collect();
            status.bgp_prefixes = self.best.len();
            status.exported = desired.export.len();
            status.services = service_lines(&desired.services);
            status.rejected = desired.rejected.iter().map(ToString::to_string).collect();
            status.problems = problems;
            status.peers = peers;
        });

        let mut state = desired.dataplane.clone();
        state.preserve_gateways = !self.sync.synced();
        self.program(state);
        let tunnel_pools = tunnel_pools(&self.view);
        let idle = self.tunnel_task.as_ref().is_none_or(|t| t.is_finished());
        if idle && self.tunnels_for.as_ref() != Some(&tunnel_pools) {
            self.tunnels_for = Some(tunnel_pools);
            self.tunnel_task = Some(ensure_tunnel_addresses(self.store.clone(), me.clone()));
        }
        if self.nat_applied.as_ref() != Some(&desired.nat) {
            self.nat_applied = Some(desired.nat.clone());
            apply_nat(desired.nat.clone());
        }
        if self.mtu_written != Some(desired.pod_mtu) {
            self.mtu_written = Some(desired.pod_mtu);
            if let Some(path) = &self.options.mtu_file {
                write_mtu(path, desired.pod_mtu);
            }
        }
        self.last = Some(desired);
        self.save_view();
    }

    /// Saves the view when it changed and no save is under way (the next
    /// convergence saves what changed meanwhile).
    fn save_view(&mut self) {
        let Some(path) = self.options.last_view_file.clone() else {
            return;
        };
        let idle = self.saving.as_ref().is_none_or(|t| t.is_finished());
        if idle && std::mem::take(&mut self.view_changed) {
            let view = self.view.clone();
            self.saving = Some(tokio::task::spawn_blocking(move || {
                super::last_view::save(&path, &view)
            }));
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

    /// Logs what changed; returns the reasons of refusals that just started.
    fn report(&mut self, desired: &Desired, problems: &[String]) -> Vec<&'static str> {
        let (refused, accepted) = self
            .rejected
            .update(desired.rejected.iter().map(ToString::to_string));
        let mut reasons = Vec::new();
        for rejection in refused {
            tracing::warn!(%rejection, "BGP route refused");
            if let Some(r) = desired.rejected.iter().find(|r| r.to_string() == rejection) {
                reasons.push(r.refusal.reason());
            }
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
        reasons
    }
}

/// Logs each reconciliation's refused changes once, when they start, and tells
/// the loop about the pass.
fn observer(passes: mpsc::UnboundedSender<(PassSummary, bool)>) -> impl FnMut(Pass) + Send {
    let mut failures = Ongoing::default();
    move |pass: Pass| {
        let summary = PassSummary {
            ok: pass.result.is_ok(),
            applied: pass.result.as_ref().map_or(0, |r| r.applied),
            refused: pass.result.as_ref().map_or(Vec::new(), |r| {
                r.failures.iter().map(ToString::to_string).collect()
            }),
            took: pass.took,
        };
        let _ = passes.send((summary, pass.preserving));
        log_pass(&mut failures, &pass);
    }
}

fn log_pass(failures: &mut Ongoing, pass: &Pass) {
    match &pass.result {
        Ok(report) => {
            let (new, _) = failures.update(report.failures.iter().map(ToString::to_string));
            for failure in new {
                tracing::warn!(%failure, "kernel refused a change");
            }
            // Refused changes are retried within moments: a pass that only meets
            // the same refusals again is no news (new ones were logged above).
            if report.applied > 0 {
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

/// Every BGP password the datastore references (the mesh's and the peers').
fn password_references(view: &Cluster) -> impl Iterator<Item = &BgpPassword> {
    let mesh = view
        .bgp_configurations
        .values()
        .filter_map(|c| c.spec.node_mesh_password.as_ref());
    let peers = view
        .bgp_peers
        .values()
        .filter_map(|p| p.spec.password.as_ref());
    mesh.chain(peers)
}

/// What of a pool decides whether this node needs tunnel addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TunnelPool {
    cidr: Cidr,
    ipip: EncapsulationMode,
    vxlan: EncapsulationMode,
    uses: Vec<AllowedUse>,
    disabled: bool,
    node_selector: Selector,
}

/// Every pool as the tunnel addresses depend on it.
fn tunnel_pools(view: &Cluster) -> Vec<TunnelPool> {
    view.pools
        .values()
        .map(|pool| {
            let spec = &pool.spec;
            TunnelPool {
                cidr: spec.cidr,
                ipip: spec.ipip_mode,
                vxlan: spec.vxlan_mode,
                uses: spec.allowed_uses.clone(),
                disabled: spec.disabled,
                node_selector: spec.node_selector.clone(),
            }
        })
        .collect()
}

/// Asks IPAM for this node's IPIP and VXLAN tunnel addresses (or to free them when
/// no pool wants them); IPAM records them on the Node, which the view then shows.
fn ensure_tunnel_addresses(store: Arc<dyn Backend>, node: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let allocator = ipam::Allocator::new(store, node);
        for tunnel in [ipam::Tunnel::Ipip, ipam::Tunnel::Vxlan] {
            match allocator
                .ensure_tunnel_address(tunnel, ipam::Family::V4)
                .await
            {
                Ok(Some(address)) => tracing::info!(?tunnel, %address, "tunnel address"),
                Ok(None) => tracing::debug!(?tunnel, "no pool wants this tunnel"),
                Err(error) => tracing::warn!(
                    ?tunnel,
                    %error,
                    "cannot get a tunnel address; retrying at the next resync"
                ),
            }
        }
    })
}

fn apply_nat(pools: Vec<NatPool>) {
    tokio::task::spawn_blocking(move || match nat::apply(&nat::render(&pools)) {
        Ok(()) => tracing::debug!(pools = pools.len(), "NAT outgoing applied"),
        Err(error) => {
            tracing::warn!(%error, "NAT outgoing not applied; retrying at the next resync")
        }
    });
}

/// Writes the pods' MTU for tabby-cni, unless the file already holds it.
fn write_mtu(path: &std::path::Path, mtu: u32) {
    let current = std::fs::read_to_string(path).ok();
    if current.is_some_and(|text| text.trim() == mtu.to_string()) {
        return;
    }
    match super::write_file(path, &mtu.to_string()) {
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
