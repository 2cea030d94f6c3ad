//! The pure diff: desired state and what the kernel holds in, minimal changes out.
//!
//! Only what tabby owns is ever changed: main-table routes carrying
//! [`TABBY_PROTOCOL`](super::model::TABBY_PROTOCOL), the device `vxlan.tabby`, and
//! the permanent neighbour and FDB entries on it. The reader (the netlink layer)
//! normalises the kernel's answers into [`Observed`], so the comparison here is
//! semantic: default tables, scopes and metrics never show up as differences.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use super::model::{
    DesiredState, IPIP_DEVICE, IpipDevice, Mac, Route, RouteTarget, VXLAN_DEVICE, VxlanDevice,
};

/// What the reconciler read back from the kernel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// Main-table routes carrying tabby's protocol. `None` marks a route whose shape
    /// tabby never programs (say, changed to `unreachable` behind its back).
    pub routes: BTreeMap<IpNet, Option<RouteTarget>>,
    /// Destinations of main-table routes of other protocols: never touched.
    pub foreign: BTreeSet<IpNet>,
    /// The device named `vxlan.tabby`, if there is one.
    pub vxlan: Option<ObservedVxlan>,
    /// Permanent neighbour entries on `vxlan.tabby`.
    pub neighbours: BTreeMap<IpAddr, Mac>,
    /// Permanent FDB entries on `vxlan.tabby`; a MAC may have several remotes.
    pub fdb: BTreeSet<(Mac, IpAddr)>,
    /// The device named `tunl0`, if there is one.
    pub ipip: Option<ObservedIpip>,
    /// Addresses (with prefix length) on `tunl0` and `vxlan.tabby`, by device;
    /// IPv6 link-local addresses, which the kernel adds itself, are left out.
    pub addresses: BTreeMap<String, BTreeSet<IpNet>>,
}

/// The device named `tunl0` as the kernel reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObservedIpip {
    pub mtu: u32,
    pub up: bool,
}

/// The device named `vxlan.tabby` as the kernel reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedVxlan {
    /// Its settings; `None` when it is not a VXLAN device at all.
    pub device: Option<VxlanDevice>,
    pub learning: bool,
    pub up: bool,
}

/// A change to the VXLAN device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkChange {
    Create(VxlanDevice),
    /// VNI, port, local address or learning differ: these are fixed at creation.
    Recreate(VxlanDevice),
    /// MTU, MAC or administrative state differ: changed in place.
    Update(VxlanDevice),
    Delete,
}

/// A change to `tunl0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpipChange {
    /// `ip link add tunl0 type ipip`: loads the module, whose fallback device then
    /// exists (the request itself usually answers EEXIST); then as `Update`.
    Create(IpipDevice),
    /// MTU or administrative state differ.
    Update(IpipDevice),
}

/// A change to an address on a tunnel device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddressChange {
    /// A host address (/32 or /128).
    Add {
        device: String,
        address: IpAddr,
    },
    Delete {
        device: String,
        address: IpNet,
    },
}

/// A change to a neighbour or FDB entry on `vxlan.tabby`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NeighbourChange {
    ReplaceNeighbour { address: IpAddr, mac: Mac },
    DeleteNeighbour { address: IpAddr, mac: Mac },
    ReplaceFdb { mac: Mac, underlay: IpAddr },
    DeleteFdb { mac: Mac, underlay: IpAddr },
}

impl NeighbourChange {
    pub fn is_delete(&self) -> bool {
        matches!(self, Self::DeleteNeighbour { .. } | Self::DeleteFdb { .. })
    }
}

/// A change to a route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteChange {
    /// Create, or update in place (NLM_F_REPLACE): never delete and re-add.
    Replace(Route),
    Delete(IpNet),
}

/// The changes that take the kernel to the desired state, in the order to apply
/// them: the device first (neighbours and onlink routes need it), routes last.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelChanges {
    pub link: Option<LinkChange>,
    pub ipip: Option<IpipChange>,
    pub addresses: Vec<AddressChange>,
    pub neighbours: Vec<NeighbourChange>,
    pub routes: Vec<RouteChange>,
    /// Desired routes not programmed because another protocol's route holds the
    /// destination: tabby does not overwrite what it did not create.
    pub conflicts: Vec<Route>,
}

impl KernelChanges {
    /// The number of kernel changes (conflicts are not changes).
    pub fn len(&self) -> usize {
        usize::from(self.link.is_some())
            + usize::from(self.ipip.is_some())
            + self.addresses.len()
            + self.neighbours.len()
            + self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The minimal changes from `observed` to `desired`.
pub fn diff(desired: &DesiredState, observed: &Observed) -> KernelChanges {
    let link = diff_link(desired.vxlan.as_ref(), observed.vxlan.as_ref());
    // A new device starts empty, and the kernel flushes routes through a device it
    // deletes: routes through `vxlan.tabby` are then programmed again (and refused,
    // visibly, when no device is wanted).
    let fresh_device = matches!(
        link,
        Some(LinkChange::Create(_) | LinkChange::Recreate(_) | LinkChange::Delete)
    );
    let neighbours = match &desired.vxlan {
        Some(_) if fresh_device => diff_neighbours(desired, &Observed::default()),
        Some(_) => diff_neighbours(desired, observed),
        // Deleting the device deletes its entries.
        None => Vec::new(),
    };
    let ipip = desired.ipip.and_then(|want| match observed.ipip {
        None => Some(IpipChange::Create(want)),
        Some(have) if have.mtu != want.mtu || !have.up => Some(IpipChange::Update(want)),
        Some(_) => None,
    });
    let mut addresses = Vec::new();
    if desired.vxlan.is_some() {
        let observed = if fresh_device {
            &BTreeMap::new()
        } else {
            &observed.addresses
        };
        diff_addresses(VXLAN_DEVICE, desired, observed, &mut addresses);
    }
    if desired.ipip.is_some() {
        diff_addresses(IPIP_DEVICE, desired, &observed.addresses, &mut addresses);
    }
    let (routes, conflicts) = diff_routes(desired, observed, fresh_device);
    KernelChanges {
        link,
        ipip,
        addresses,
        neighbours,
        routes,
        conflicts,
    }
}

/// The tunnel address wanted on `device`, and no other.
fn diff_addresses(
    device: &str,
    desired: &DesiredState,
    observed: &BTreeMap<String, BTreeSet<IpNet>>,
    changes: &mut Vec<AddressChange>,
) {
    let want = desired
        .tunnel_addresses
        .get(device)
        .map(|&address| IpNet::from(address));
    let empty = BTreeSet::new();
    let have = observed.get(device).unwrap_or(&empty);
    if let Some(want) = want.filter(|want| !have.contains(want)) {
        changes.push(AddressChange::Add {
            device: device.to_owned(),
            address: want.addr(),
        });
    }
    for &address in have.iter().filter(|&&a| Some(a) != want) {
        changes.push(AddressChange::Delete {
            device: device.to_owned(),
            address,
        });
    }
}

fn diff_link(
    desired: Option<&VxlanDevice>,
    observed: Option<&ObservedVxlan>,
) -> Option<LinkChange> {
    match (desired, observed) {
        (None, None) => None,
        (None, Some(_)) => Some(LinkChange::Delete),
        (Some(want), None) => Some(LinkChange::Create(want.clone())),
        (Some(want), Some(got)) => {
            let Some(have) = got.device.as_ref().filter(|_| !got.learning) else {
                return Some(LinkChange::Recreate(want.clone()));
            };
            if (want.vni, want.port, want.local) != (have.vni, have.port, have.local) {
                Some(LinkChange::Recreate(want.clone()))
            } else if want.mtu != have.mtu || want.mac != have.mac || !got.up {
                Some(LinkChange::Update(want.clone()))
            } else {
                None
            }
        }
    }
}

fn diff_neighbours(desired: &DesiredState, observed: &Observed) -> Vec<NeighbourChange> {
    let mut changes = Vec::new();
    let want_neighbours = desired.neighbours();
    for (&address, &mac) in &want_neighbours {
        if observed.neighbours.get(&address) != Some(&mac) {
            changes.push(NeighbourChange::ReplaceNeighbour { address, mac });
        }
    }
    for (&address, &mac) in &observed.neighbours {
        if !want_neighbours.contains_key(&address) {
            changes.push(NeighbourChange::DeleteNeighbour { address, mac });
        }
    }
    let want_fdb = desired.fdb();
    for (&mac, &underlay) in &want_fdb {
        if !observed.fdb.contains(&(mac, underlay)) {
            changes.push(NeighbourChange::ReplaceFdb { mac, underlay });
        }
    }
    for &(mac, underlay) in &observed.fdb {
        if want_fdb.get(&mac) != Some(&underlay) {
            changes.push(NeighbourChange::DeleteFdb { mac, underlay });
        }
    }
    changes
}

fn diff_routes(
    desired: &DesiredState,
    observed: &Observed,
    fresh_device: bool,
) -> (Vec<RouteChange>, Vec<Route>) {
    let mut changes = Vec::new();
    let mut conflicts = Vec::new();
    // While preserving, a gateway route in the kernel stays unless a local route
    // (from the datastore, which is in sync) wants its destination, or the device
    // it goes through is being replaced (which flushes it).
    let preserved = |dst: &IpNet, want: Option<&RouteTarget>| {
        desired.preserve_gateways
            && want.is_none_or(RouteTarget::is_gateway)
            && matches!(observed.routes.get(dst), Some(Some(have))
                if have.is_gateway() && !(fresh_device && have.uses_device(VXLAN_DEVICE)))
    };
    for (&dst, target) in &desired.routes {
        let route = || Route {
            dst,
            target: target.clone(),
        };
        match observed.routes.get(&dst) {
            Some(Some(actual))
                if target.is_satisfied_by(actual)
                    && !(fresh_device && target.uses_device(VXLAN_DEVICE)) => {}
            _ if preserved(&dst, Some(target)) => {}
            Some(_) => changes.push(RouteChange::Replace(route())),
            None if observed.foreign.contains(&dst) => conflicts.push(route()),
            None => changes.push(RouteChange::Replace(route())),
        }
    }
    for dst in observed.routes.keys() {
        if !desired.routes.contains_key(dst) && !preserved(dst, None) {
            changes.push(RouteChange::Delete(*dst));
        }
    }
    (changes, conflicts)
}

impl fmt::Display for LinkChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Create(d) => write!(f, "create {VXLAN_DEVICE} vni {} local {}", d.vni, d.local),
            Self::Recreate(d) => {
                write!(f, "recreate {VXLAN_DEVICE} vni {} local {}", d.vni, d.local)
            }
            Self::Update(d) => write!(
                f,
                "update {VXLAN_DEVICE} mtu {} address {} up",
                d.mtu, d.mac
            ),
            Self::Delete => write!(f, "delete {VXLAN_DEVICE}"),
        }
    }
}

impl fmt::Display for IpipChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Create(d) => write!(f, "create {IPIP_DEVICE} type ipip mtu {} up", d.mtu),
            Self::Update(d) => write!(f, "update {IPIP_DEVICE} mtu {} up", d.mtu),
        }
    }
}

impl fmt::Display for AddressChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Add { device, address } => {
                write!(f, "add address {} dev {device}", IpNet::from(*address))
            }
            Self::Delete { device, address } => write!(f, "delete address {address} dev {device}"),
        }
    }
}

impl fmt::Display for NeighbourChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ReplaceNeighbour { address, mac } => {
                write!(f, "replace neigh {address} lladdr {mac}")
            }
            Self::DeleteNeighbour { address, mac } => {
                write!(f, "delete neigh {address} lladdr {mac}")
            }
            Self::ReplaceFdb { mac, underlay } => write!(f, "replace fdb {mac} dst {underlay}"),
            Self::DeleteFdb { mac, underlay } => write!(f, "delete fdb {mac} dst {underlay}"),
        }
    }
}

impl fmt::Display for RouteChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Replace(route) => write!(f, "replace route {route}"),
            Self::Delete(dst) => write!(f, "delete route {dst}"),
        }
    }
}

#[cfg(test)]
mod tests;
