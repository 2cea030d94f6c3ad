//! Routes for what lives on this node: a host route per local workload through its
//! `cali*` veth, and a blackhole per block the node owns, so that addresses of the
//! block not (or no longer) in use go nowhere instead of following a default route.

use ipnet::IpNet;

use super::cluster::{Allocation, View};
use crate::dataplane::{DesiredState, Route};
use crate::veth::{container_veth_name, host_veth_name};

/// Adds the local routes of node `me`.
pub(super) fn routes(ipam: &View<'_>, me: &str, dataplane: &mut DesiredState) {
    for (block, _) in ipam.owned_blocks().filter(|(_, owner)| *owner == me) {
        dataplane.insert_route(Route::blackhole(block));
    }
    for allocation in ipam.allocations() {
        if allocation.node != Some(me) || allocation.kind.is_some() {
            continue;
        }
        let Some(device) = workload_device(allocation) else {
            continue;
        };
        // The name is built to the model's rules, so this cannot fail.
        if let Ok(route) = Route::workload(IpNet::from(allocation.address), &device) {
            dataplane.insert_route(route);
        }
    }
}

/// The host end of the workload's veth, named as `tabby-cni` names it: after the pod
/// when IPAM recorded one, else after the container id (recorded, or the part of
/// the handle `<network>.<container id>` after the network's name).
pub fn workload_device(allocation: &Allocation<'_>) -> Option<String> {
    match (allocation.namespace, allocation.pod) {
        (Some(namespace), Some(pod)) => Some(host_veth_name(namespace, pod)),
        _ => {
            let container = match allocation.container {
                Some(container) => container,
                None => allocation.handle?.split_once('.')?.1,
            };
            (!container.is_empty()).then(|| container_veth_name(container))
        }
    }
}

#[cfg(test)]
mod tests {
    use api::resources::AffinityState;

    use super::*;
    use crate::dataplane::RouteTarget;
    use crate::desired::Cluster;
    use crate::desired::testing::*;

    fn local(cluster: &Cluster) -> DesiredState {
        let mut dataplane = DesiredState::default();
        routes(&cluster.ipam(), "a", &mut dataplane);
        dataplane
    }

    #[test]
    fn each_local_pod_gets_a_host_route_through_its_veth() {
        let mut cluster = Cluster::default();
        add_block(
            &mut cluster,
            "10.0.0.0/26",
            Some("a"),
            AffinityState::Confirmed,
        );
        add_block(
            &mut cluster,
            "fd00::/122",
            Some("a"),
            AffinityState::Confirmed,
        );
        allocate(
            &mut cluster,
            "10.0.0.5",
            "a",
            Some(("default", "nginx-5d7f9")),
        );
        allocate(
            &mut cluster,
            "fd00::5",
            "a",
            Some(("default", "nginx-5d7f9")),
        );
        allocate(
            &mut cluster,
            "10.0.0.6",
            "b",
            Some(("default", "elsewhere")),
        );
        let dataplane = local(&cluster);
        let device = RouteTarget::Workload {
            device: "cali8ce18e28dcb".into(),
        };
        assert_eq!(dataplane.routes.get(&net("10.0.0.5/32")), Some(&device));
        assert_eq!(dataplane.routes.get(&net("fd00::5/128")), Some(&device));
        assert_eq!(dataplane.routes.get(&net("10.0.0.6/32")), None);
    }

    #[test]
    fn a_pod_without_pod_attributes_is_found_by_its_container_id() {
        let mut cluster = Cluster::default();
        add_block(
            &mut cluster,
            "10.0.0.0/26",
            Some("a"),
            AffinityState::Confirmed,
        );
        allocate(&mut cluster, "10.0.0.7", "a", None);
        let dataplane = local(&cluster);
        assert_eq!(
            dataplane.routes.get(&net("10.0.0.7/32")),
            Some(&RouteTarget::Workload {
                device: container_veth_name("10.0.0.7")
            })
        );
    }

    #[test]
    fn owned_blocks_are_blackholed_but_not_pending_or_foreign_ones() {
        let mut cluster = Cluster::default();
        add_block(
            &mut cluster,
            "10.0.0.0/26",
            Some("a"),
            AffinityState::Confirmed,
        );
        add_block(
            &mut cluster,
            "10.0.0.64/26",
            Some("a"),
            AffinityState::Pending,
        );
        add_block(
            &mut cluster,
            "10.0.0.128/26",
            Some("b"),
            AffinityState::Confirmed,
        );
        let dataplane = local(&cluster);
        assert_eq!(
            dataplane.routes.keys().copied().collect::<Vec<_>>(),
            [net("10.0.0.0/26")]
        );
        assert_eq!(
            dataplane.routes[&net("10.0.0.0/26")],
            RouteTarget::Blackhole
        );
    }

    #[test]
    fn a_pod_borrowing_from_another_nodes_block_is_routed_here_without_a_blackhole() {
        let mut cluster = Cluster::default();
        add_block(
            &mut cluster,
            "10.0.0.128/26",
            Some("b"),
            AffinityState::Confirmed,
        );
        allocate(&mut cluster, "10.0.0.130", "a", Some(("default", "web")));
        let dataplane = local(&cluster);
        assert_eq!(
            dataplane.routes.keys().copied().collect::<Vec<_>>(),
            [net("10.0.0.130/32")]
        );
    }

    #[test]
    fn tunnel_addresses_are_not_workloads() {
        let mut cluster = Cluster::default();
        add_block(
            &mut cluster,
            "10.0.0.0/26",
            Some("a"),
            AffinityState::Confirmed,
        );
        allocate_tunnel(&mut cluster, "10.0.0.1", "a", "ipipTunnelAddress");
        assert_eq!(local(&cluster).routes.len(), 1, "the blackhole only");
    }
}
