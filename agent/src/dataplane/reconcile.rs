//! The reconciler: read back what tabby owns, diff it against the desired state,
//! apply the difference in pipelined batches, and report each failed change.

use std::fmt;
use std::io;
use std::time::Duration;

use netlink_packet_route::RouteNetlinkMessage;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use super::diff::{LinkChange, Observed, ObservedVxlan, Plan, RouteChange, diff};
use super::model::{DesiredState, Route, VXLAN_DEVICE};
use super::netlink::link::{self, Links, MissingDevice};
use super::netlink::routes::{self, Seen};
use super::netlink::socket::{Refusal, Socket};
use super::netlink::{NetlinkError, neigh};

/// One change the kernel refused (or that could not be built).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The change, printed like an `ip` command.
    pub change: String,
    /// The positive errno.
    pub errno: i32,
    /// The kernel's own words, when it gave any.
    pub reason: Option<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}",
            self.change,
            io::Error::from_raw_os_error(self.errno)
        )?;
        match &self.reason {
            Some(reason) => write!(f, " ({reason})"),
            None => Ok(()),
        }
    }
}

/// What one reconciliation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Changes the kernel accepted.
    pub applied: usize,
    pub failures: Vec<Failure>,
    /// Desired routes left out because another protocol holds the destination.
    pub conflicts: Vec<Route>,
}

impl Report {
    /// Changes attempted: zero when the kernel already matched.
    pub fn changes(&self) -> usize {
        self.applied + self.failures.len()
    }
}

/// The kernel as last read: what tabby owns, and how to name devices.
#[derive(Debug, Clone)]
pub struct Kernel {
    pub observed: Observed,
    pub links: Links,
    /// The index of `vxlan.tabby`, when it exists.
    pub vxlan_index: Option<u32>,
}

/// Drives one network namespace's dataplane to a desired state.
#[derive(Debug)]
pub struct Reconciler {
    socket: Socket,
}

impl Reconciler {
    /// A reconciler for the calling thread's network namespace; needs a tokio runtime.
    pub fn new() -> Result<Self, NetlinkError> {
        Ok(Self {
            socket: Socket::open()?,
        })
    }

    /// Reads back links, main-table routes, and the entries on `vxlan.tabby`.
    pub async fn read(&mut self) -> Result<Kernel, NetlinkError> {
        let (links, vxlan) = self.read_links().await?;
        let mut observed = Observed::default();
        for message in self.socket.dump(routes::dump_request()).await? {
            let RouteNetlinkMessage::NewRoute(route) = message else {
                continue;
            };
            match routes::read(&route, &links) {
                Some(Seen::Owned(dst, target)) => {
                    observed.routes.insert(dst, target);
                }
                Some(Seen::Foreign(dst)) => {
                    observed.foreign.insert(dst);
                }
                None => {}
            }
        }
        let vxlan_index = vxlan.as_ref().map(|(index, _)| *index);
        if let Some((index, device)) = vxlan {
            observed.vxlan = Some(device);
            for message in self.socket.dump(neigh::dump_neighbours(index)).await? {
                let RouteNetlinkMessage::NewNeighbour(entry) = message else {
                    continue;
                };
                observed.neighbours.extend(neigh::read(&entry, index));
            }
            for message in self.socket.dump(neigh::dump_fdb(index)).await? {
                let RouteNetlinkMessage::NewNeighbour(entry) = message else {
                    continue;
                };
                // An FDB entry's destination is the remote's underlay address.
                observed
                    .fdb
                    .extend(neigh::read(&entry, index).map(|(underlay, mac)| (mac, underlay)));
            }
        }
        Ok(Kernel {
            observed,
            links,
            vxlan_index,
        })
    }

    async fn read_links(&mut self) -> Result<(Links, Option<(u32, ObservedVxlan)>), NetlinkError> {
        let links: Vec<_> = (self.socket.dump(link::dump_request()).await?)
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(link) => Some(link),
                _ => None,
            })
            .collect();
        Ok(Links::read(&links))
    }

    /// Keeps the kernel at the latest desired state until the sender is dropped:
    /// reconciles on every new state, and every `resync` to repair changes made
    /// behind tabby's back. A failed pass is logged and retried on the next one.
    pub async fn run(mut self, mut desired: watch::Receiver<DesiredState>, resync: Duration) {
        let mut timer = tokio::time::interval(resync);
        timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                changed = desired.changed() => if changed.is_err() { return },
                _ = timer.tick() => {}
            }
            // Cloned so the sender is never blocked while netlink work is under way.
            let state = desired.borrow_and_update().clone();
            match self.reconcile(&state).await {
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

    /// Reads the kernel back, diffs, and applies the difference. A kernel that
    /// already matches gets no requests at all.
    pub async fn reconcile(&mut self, desired: &DesiredState) -> Result<Report, NetlinkError> {
        let kernel = self.read().await?;
        let plan = diff(desired, &kernel.observed);
        self.apply(plan, kernel).await
    }

    /// Applies `plan`, computed against `kernel`.
    pub async fn apply(&mut self, plan: Plan, mut kernel: Kernel) -> Result<Report, NetlinkError> {
        let mut report = Report {
            conflicts: plan.conflicts,
            ..Report::default()
        };
        if let Some(change) = &plan.link {
            // (request, whether it deletes)
            let requests = match (change, kernel.vxlan_index) {
                (LinkChange::Create(device), _) | (LinkChange::Recreate(device), None) => {
                    vec![(link::create_vxlan(device), false)]
                }
                (LinkChange::Recreate(device), Some(index)) => {
                    vec![
                        (link::delete(index), true),
                        (link::create_vxlan(device), false),
                    ]
                }
                (LinkChange::Update(device), Some(index)) => {
                    vec![(link::update_vxlan(index, device), false)]
                }
                (LinkChange::Delete, Some(index)) => vec![(link::delete(index), true)],
                (LinkChange::Update(_) | LinkChange::Delete, None) => Vec::new(),
            };
            let (requests, deletes): (Vec<_>, Vec<_>) = requests.into_iter().unzip();
            let answers = self.socket.batch(&requests).await?;
            for (answer, delete) in answers.into_iter().zip(deletes) {
                record(&mut report, change, delete, answer);
            }
            // A created or recreated device has a new index.
            let (links, vxlan) = self.read_links().await?;
            kernel.links = links;
            kernel.vxlan_index = vxlan.map(|(index, _)| index);
        }

        if !plan.neighbours.is_empty() {
            let Some(index) = kernel.vxlan_index else {
                for change in &plan.neighbours {
                    report.failures.push(missing(
                        change.to_string(),
                        MissingDevice(VXLAN_DEVICE.into()),
                    ));
                }
                return self.apply_routes(&plan.routes, &kernel.links, report).await;
            };
            let requests: Vec<_> = plan
                .neighbours
                .iter()
                .map(|change| neigh::request(change, index))
                .collect();
            let answers = self.socket.batch(&requests).await?;
            for (change, answer) in plan.neighbours.iter().zip(answers) {
                record(&mut report, change, change.is_delete(), answer);
            }
        }
        self.apply_routes(&plan.routes, &kernel.links, report).await
    }

    async fn apply_routes(
        &mut self,
        changes: &[RouteChange],
        links: &Links,
        mut report: Report,
    ) -> Result<Report, NetlinkError> {
        let mut requests = Vec::with_capacity(changes.len());
        let mut sent = Vec::with_capacity(changes.len());
        for change in changes {
            let built = match change {
                RouteChange::Replace(route) => routes::replace(route, links),
                RouteChange::Delete(dst) => Ok(routes::delete(*dst)),
            };
            match built {
                Ok(request) => {
                    requests.push(request);
                    sent.push(change);
                }
                Err(device) => report.failures.push(missing(change.to_string(), device)),
            }
        }
        let answers = self.socket.batch(&requests).await?;
        for (change, answer) in sent.into_iter().zip(answers) {
            let delete = matches!(change, RouteChange::Delete(_));
            record(&mut report, change, delete, answer);
        }
        Ok(report)
    }
}

/// Counts an answer: a delete of something already gone (ENOENT, or ESRCH for
/// routes, ENODEV for links) is done, and so is a create of something that exists
/// (EEXIST): either way the kernel holds what was asked, and the next resync
/// compares it anyway.
fn record(report: &mut Report, change: &impl fmt::Display, delete: bool, answer: Option<Refusal>) {
    match answer {
        None => report.applied += 1,
        Some(Refusal { errno, .. })
            if (delete && matches!(errno, libc::ENOENT | libc::ESRCH | libc::ENODEV))
                || (!delete && errno == libc::EEXIST) =>
        {
            report.applied += 1
        }
        Some(Refusal { errno, message }) => report.failures.push(Failure {
            change: change.to_string(),
            errno,
            reason: message,
        }),
    }
}

fn missing(change: String, device: MissingDevice) -> Failure {
    Failure {
        change,
        errno: libc::ENODEV,
        reason: Some(format!("no device {}", device.0)),
    }
}
