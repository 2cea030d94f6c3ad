//! The reconciler: read back what tabby owns, diff it against the desired state,
//! apply the difference in pipelined batches, and report each failed change.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use netlink_packet_route::RouteNetlinkMessage;

use ipnet::IpNet;

use super::diff::{
    AddressChange, IpipChange, KernelChanges, LinkChange, Observed, RouteChange, diff,
};
use super::grace::Grace;
use super::model::{DesiredState, IPIP_DEVICE, Route, VXLAN_DEVICE};
use super::netlink::link::{self, Links, MissingDevice, Tunnels};
use super::netlink::routes::{self, Seen};
use super::netlink::socket::{Refusal, Request, Socket};
use super::netlink::{NetlinkError, address, neigh};

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
    /// The index of `tunl0`, when it exists.
    pub ipip_index: Option<u32>,
}

/// Drives one network namespace's dataplane to a desired state.
#[derive(Debug)]
pub struct Reconciler {
    socket: Socket,
    pub(super) grace: Grace,
}

impl Reconciler {
    /// A reconciler for the calling thread's network namespace; needs a tokio runtime.
    pub fn new() -> Result<Self, NetlinkError> {
        Ok(Self {
            socket: Socket::open()?,
            grace: Grace::new(Duration::ZERO),
        })
    }

    /// Deletes a workload route only once it has been unwanted for `grace`: the CNI
    /// plugin programs a new pod's route before the agent may have seen the pod.
    pub fn with_workload_grace(mut self, grace: Duration) -> Self {
        self.grace = Grace::new(grace);
        self
    }

    /// Reads back links, main-table routes, the entries on `vxlan.tabby` and the
    /// addresses on the tunnel devices.
    pub async fn read(&mut self) -> Result<Kernel, NetlinkError> {
        let (links, tunnels) = self.read_links().await?;
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
        let vxlan_index = tunnels.vxlan.as_ref().map(|(index, _)| *index);
        let ipip_index = tunnels.ipip.as_ref().map(|(index, _)| *index);
        observed.ipip = tunnels.ipip.map(|(_, device)| device);
        if let Some((index, device)) = tunnels.vxlan {
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
        let tunnel_devices = [(VXLAN_DEVICE, vxlan_index), (IPIP_DEVICE, ipip_index)];
        if tunnel_devices.iter().any(|(_, index)| index.is_some()) {
            let dump = self.socket.dump(address::dump_request()).await?;
            for (device, index) in tunnel_devices {
                let Some(index) = index else { continue };
                let addresses: std::collections::BTreeSet<IpNet> = address::on_device(&dump, index)
                    .into_iter()
                    .filter(|(ip, _)| !is_link_local(*ip))
                    .filter_map(|(ip, len)| IpNet::new(ip, len).ok())
                    .collect();
                if !addresses.is_empty() {
                    observed.addresses.insert(device.to_owned(), addresses);
                }
            }
        }
        Ok(Kernel {
            observed,
            links,
            vxlan_index,
            ipip_index,
        })
    }

    async fn read_links(&mut self) -> Result<(Links, Tunnels), NetlinkError> {
        let links: Vec<_> = (self.socket.dump(link::dump_request()).await?)
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(link) => Some(link),
                _ => None,
            })
            .collect();
        Ok(Links::read(&links))
    }

    /// Reads the kernel back, diffs, and applies the difference. A kernel that
    /// already matches gets no requests at all.
    pub async fn reconcile(&mut self, desired: &DesiredState) -> Result<Report, NetlinkError> {
        let kernel = self.read().await?;
        let mut plan = diff(desired, &kernel.observed);
        self.grace.hold(&mut plan, &kernel.observed, Instant::now());
        self.apply(plan, kernel).await
    }

    /// Applies `plan`, computed against `kernel`: devices first (addresses,
    /// neighbours and onlink routes need them), then addresses, entries, routes.
    pub async fn apply(
        &mut self,
        plan: KernelChanges,
        mut kernel: Kernel,
    ) -> Result<Report, NetlinkError> {
        let mut report = Report {
            conflicts: plan.conflicts,
            ..Report::default()
        };
        if plan.link.is_some() || plan.ipip.is_some() {
            self.apply_links(plan.link.as_ref(), plan.ipip, &mut kernel, &mut report)
                .await?;
        }
        let mut requests = Vec::new();
        let mut sent: Vec<(String, bool)> = Vec::new();
        for change in &plan.addresses {
            let device = match change {
                AddressChange::Add { device, .. } | AddressChange::Delete { device, .. } => device,
            };
            let Ok(index) = kernel.links.index(device) else {
                report
                    .failures
                    .push(missing(change.to_string(), MissingDevice(device.clone())));
                continue;
            };
            let (request, delete) = match change {
                AddressChange::Add { address: ip, .. } => {
                    (address::replace_host_address(index, *ip), false)
                }
                AddressChange::Delete { address: net, .. } => (address::delete(index, *net), true),
            };
            requests.push(request);
            sent.push((change.to_string(), delete));
        }
        match kernel.vxlan_index {
            Some(index) => {
                for change in &plan.neighbours {
                    requests.push(neigh::request(change, index));
                    sent.push((change.to_string(), change.is_delete()));
                }
            }
            None => {
                for change in &plan.neighbours {
                    report.failures.push(missing(
                        change.to_string(),
                        MissingDevice(VXLAN_DEVICE.into()),
                    ));
                }
            }
        }
        if !requests.is_empty() {
            let answers = self.socket.batch(&requests).await?;
            for ((change, delete), answer) in sent.iter().zip(answers) {
                record(&mut report, change, *delete, answer);
            }
        }
        self.apply_routes(&plan.routes, &kernel.links, report).await
    }

    /// The device changes, then a fresh read of the links: created devices have new
    /// indices.
    async fn apply_links(
        &mut self,
        vxlan: Option<&LinkChange>,
        ipip: Option<IpipChange>,
        kernel: &mut Kernel,
        report: &mut Report,
    ) -> Result<(), NetlinkError> {
        // (request, whether it deletes, the change it belongs to)
        let mut requests: Vec<(Request, bool, String)> = Vec::new();
        if let Some(change) = vxlan {
            let name = change.to_string();
            match (change, kernel.vxlan_index) {
                (LinkChange::Create(device), _) | (LinkChange::Recreate(device), None) => {
                    requests.push((link::create_vxlan(device), false, name));
                }
                (LinkChange::Recreate(device), Some(index)) => {
                    requests.push((link::delete(index), true, name.clone()));
                    requests.push((link::create_vxlan(device), false, name));
                }
                (LinkChange::Update(device), Some(index)) => {
                    requests.push((link::update_vxlan(index, device), false, name));
                }
                (LinkChange::Delete, Some(index)) => {
                    requests.push((link::delete(index), true, name))
                }
                (LinkChange::Update(_) | LinkChange::Delete, None) => {}
            }
        }
        if let Some(IpipChange::Create(_)) = ipip {
            requests.push((
                link::create_ipip(),
                false,
                ipip.map(|c| c.to_string()).unwrap_or_default(),
            ));
        }
        self.send_links(requests, report).await?;
        let (links, tunnels) = self.read_links().await?;
        kernel.links = links;
        kernel.vxlan_index = tunnels.vxlan.map(|(index, _)| index);
        kernel.ipip_index = tunnels.ipip.map(|(index, _)| index);
        if let Some(IpipChange::Create(device) | IpipChange::Update(device)) = ipip {
            let name = format!("set {IPIP_DEVICE} mtu {} up", device.mtu);
            match kernel.ipip_index {
                Some(index) => {
                    self.send_links(
                        vec![(link::update_ipip(index, &device), false, name)],
                        report,
                    )
                    .await?
                }
                None => report
                    .failures
                    .push(missing(name, MissingDevice(IPIP_DEVICE.into()))),
            }
        }
        Ok(())
    }

    async fn send_links(
        &mut self,
        requests: Vec<(Request, bool, String)>,
        report: &mut Report,
    ) -> Result<(), NetlinkError> {
        if requests.is_empty() {
            return Ok(());
        }
        let batch: Vec<Request> = requests.iter().map(|(r, _, _)| r.clone()).collect();
        let answers = self.socket.batch(&batch).await?;
        for ((_, delete, change), answer) in requests.iter().zip(answers) {
            record(report, change, *delete, answer);
        }
        Ok(())
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

/// fe80::/10: the kernel gives every device one and owns it.
fn is_link_local(ip: std::net::IpAddr) -> bool {
    matches!(ip, std::net::IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
}

fn missing(change: String, device: MissingDevice) -> Failure {
    Failure {
        change,
        errno: libc::ENODEV,
        reason: Some(format!("no device {}", device.0)),
    }
}
