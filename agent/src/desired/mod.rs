//! `desired = f(state)`: from the datastore, this node's settings and the BGP
//! speaker's best paths to what the kernel should hold, what BGP should announce,
//! and which learned routes were refused. Pure: no I/O, no clock.
//!
//! ```text
//!  Cluster (pools, blocks, affinities, nodes, BGP config, Services) ──▶ View (owners, allocations)
//!     │                                                         │
//!     ├─ local:   /32 per local workload on cali*, blackhole per owned block
//!     ├─ remote:  best paths ─ ownership ─▶ via node | tunl0 onlink | ECMP
//!     │           VXLAN pools from the datastore ─▶ via VTEP dev vxlan.tabby + neigh/FDB
//!     ├─ devices: tunl0, vxlan.tabby, tunnel addresses, MTUs
//!     ├─ services: service ranges, /32s of Local Services with a ready endpoint here
//!     ├─ export:  owned blocks, borrowed /32s, service prefixes (with communities)
//!     └─ nat:     the pools, for NAT outgoing
//! ```

pub mod cluster;
mod devices;
mod export;
mod local;
mod remote;
pub mod services;
#[cfg(test)]
pub(crate) mod testing;

use std::collections::BTreeMap;
use std::net::IpAddr;

use api::resources::Community;
use bgp::rib::Path;
pub use ipam::ownership::{Judge, Owners, PeerRole, Refusal, Rejection};
use ipnet::IpNet;

pub use cluster::{Cluster, View};
pub use services::ServiceAdvertisement;

use crate::dataplane::DesiredState;
use crate::nat::NatPool;

/// The speaker's best paths: per prefix, the best and the paths equal to it.
pub type Paths = BTreeMap<IpNet, Vec<Path>>;

/// This node's own settings (flags and what the agent measured at start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSettings {
    /// The node's name, as in its `Node` resource.
    pub name: String,
    /// MTU of the interface carrying the node's BGP address.
    pub underlay_mtu: u32,
    /// Configured MTU for tunnel devices and pods; derived from the underlay when unset.
    pub mtu: Option<u32>,
    /// Hold routes to pool addresses to IPAM ownership (`ipam::ownership`).
    pub check_ownership: bool,
    /// How the BGP router id is picked.
    pub router_id: crate::peering::RouterId,
}

/// Everything the agent wants, computed from one consistent view.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Desired {
    pub dataplane: DesiredState,
    /// Prefixes to originate over BGP, with the communities to attach.
    pub export: BTreeMap<IpNet, Vec<Community>>,
    /// The Service prefixes among them, and the Service addresses held back, with why.
    pub services: ServiceAdvertisement,
    pub nat: Vec<NatPool>,
    /// The MTU pods' veths should have.
    pub pod_mtu: u32,
    /// Learned routes not programmed, and why.
    pub rejected: Vec<Rejection>,
    /// Configuration that keeps part of the desired state from being built (a
    /// VXLAN pool while this node has no VTEP, ...), for the log and status.
    pub problems: Vec<String>,
    /// Who owns what and what each peer is, for the speaker's import hook.
    pub judge: Judge,
}

/// Computes the desired state of node `settings.name`, whose BGP peers are
/// `roles`.
pub fn compute(
    cluster: &Cluster,
    settings: &NodeSettings,
    best: &Paths,
    roles: BTreeMap<IpAddr, PeerRole>,
) -> Desired {
    let ipam = cluster.ipam();
    let mut desired = Desired::default();
    let tunnels = devices::tunnels(cluster, settings, &mut desired);
    let owners = Owners::new(
        cluster.pools.values(),
        &ipam,
        cluster.nodes.values(),
        settings.check_ownership,
    );
    let judge = Judge { owners, roles };
    remote::learned(cluster, &judge, settings, &tunnels, best, &mut desired);
    desired.judge = judge;
    remote::vxlan(cluster, &ipam, settings, &tunnels, &mut desired);
    // Last: a local route wins over anything learned for the same destination.
    local::routes(&ipam, &settings.name, &mut desired.dataplane);
    let config = cluster.bgp_configuration(&settings.name);
    desired.services = services::advertisement(cluster, &config, &settings.name);
    desired
        .problems
        .extend(desired.services.problems.iter().cloned());
    desired.export = export::prefixes(cluster, &ipam, &settings.name, &desired.services);
    desired.nat = cluster
        .pools
        .values()
        .map(|pool| NatPool {
            cidr: pool.spec.cidr.0,
            nat_outgoing: pool.spec.nat_outgoing,
        })
        .collect();
    desired
}

#[cfg(test)]
mod tests;
