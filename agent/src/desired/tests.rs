//! The whole function: a small cluster, this node `a`, and the kernel and BGP
//! state that should follow.

use api::resources::{AffinityState, EncapsulationMode};

use super::testing::*;
use super::*;
use crate::dataplane::{IPIP_DEVICE, Mac, NextHop, RouteTarget, VXLAN_DEVICE, Vtep};

/// [`super::compute`] with the peers of `best` as [`roles`] gives them.
fn compute(cluster: &Cluster, settings: &NodeSettings, best: &Paths) -> Desired {
    super::compute(cluster, settings, best, roles(best))
}

/// Nodes a (192.0.2.10) and b (192.0.2.11) on one subnet, c (198.51.100.12) behind
/// a router; pool 10.244.0.0/16; a, b and c own one block each.
fn cluster(ipip: EncapsulationMode) -> Cluster {
    let mut cluster = Cluster::default();
    add_pool(&mut cluster, "p", "10.244.0.0/16", ipip);
    add_node(&mut cluster, "a", "192.0.2.10/24");
    add_node(&mut cluster, "b", "192.0.2.11/24");
    add_node(&mut cluster, "c", "198.51.100.12/24");
    add_block(
        &mut cluster,
        "10.244.0.0/26",
        Some("a"),
        AffinityState::Confirmed,
    );
    add_block(
        &mut cluster,
        "10.244.1.0/26",
        Some("b"),
        AffinityState::Confirmed,
    );
    add_block(
        &mut cluster,
        "10.244.2.0/26",
        Some("c"),
        AffinityState::Confirmed,
    );
    allocate(&mut cluster, "10.244.0.5", "a", Some(("default", "web")));
    cluster
}

/// What the mesh announces: b's and c's blocks from themselves.
fn mesh() -> Paths {
    best(&[
        (
            "10.244.1.0/26",
            vec![learned("192.0.2.11", "192.0.2.11", true)],
        ),
        (
            "10.244.2.0/26",
            vec![learned("198.51.100.12", "198.51.100.12", true)],
        ),
    ])
}

fn target(desired: &Desired, prefix: &str) -> Option<RouteTarget> {
    desired.dataplane.routes.get(&net(prefix)).cloned()
}

fn via(gateway: &str) -> RouteTarget {
    RouteTarget::Gateway(NextHop::via(ip(gateway)))
}

fn tunl0(gateway: &str) -> RouteTarget {
    RouteTarget::Gateway(NextHop::onlink(ip(gateway), IPIP_DEVICE))
}

#[test]
fn no_encapsulation_routes_blocks_via_their_owners_address() {
    let desired = compute(&cluster(EncapsulationMode::Never), &settings(), &mesh());
    assert_eq!(target(&desired, "10.244.1.0/26"), Some(via("192.0.2.11")));
    assert_eq!(
        target(&desired, "10.244.2.0/26"),
        Some(via("198.51.100.12"))
    );
    assert_eq!(
        target(&desired, "10.244.0.0/26"),
        Some(RouteTarget::Blackhole)
    );
    assert!(matches!(
        target(&desired, "10.244.0.5/32"),
        Some(RouteTarget::Workload { .. })
    ));
    assert_eq!(desired.dataplane.routes.len(), 4);
    assert!(desired.rejected.is_empty() && desired.problems.is_empty());
}

#[test]
fn ipip_always_encapsulates_everything_over_tunl0() {
    let desired = compute(&cluster(EncapsulationMode::Always), &settings(), &mesh());
    assert_eq!(target(&desired, "10.244.1.0/26"), Some(tunl0("192.0.2.11")));
    assert_eq!(
        target(&desired, "10.244.2.0/26"),
        Some(tunl0("198.51.100.12"))
    );
}

#[test]
fn crosssubnet_encapsulates_only_towards_other_subnets() {
    let desired = compute(
        &cluster(EncapsulationMode::CrossSubnet),
        &settings(),
        &mesh(),
    );
    assert_eq!(target(&desired, "10.244.1.0/26"), Some(via("192.0.2.11")));
    assert_eq!(
        target(&desired, "10.244.2.0/26"),
        Some(tunl0("198.51.100.12"))
    );
}

#[test]
fn equal_best_paths_make_an_ecmp_route() {
    let mut cluster = cluster(EncapsulationMode::Never);
    cluster.pools.clear();
    let paths = best(&[(
        "0.0.0.0/0",
        vec![
            learned("192.0.2.1", "192.0.2.1", false),
            learned("192.0.2.2", "192.0.2.2", false),
        ],
    )]);
    let desired = compute(&cluster, &settings(), &paths);
    assert_eq!(
        target(&desired, "0.0.0.0/0"),
        Some(RouteTarget::Multipath(vec![
            NextHop::via(ip("192.0.2.1")),
            NextHop::via(ip("192.0.2.2"))
        ]))
    );
}

#[test]
fn a_node_announcing_a_block_it_does_not_own_is_rejected_and_the_owner_still_routed() {
    let mut paths = mesh();
    paths.get_mut(&net("10.244.1.0/26")).unwrap().push(learned(
        "198.51.100.12",
        "198.51.100.12",
        true,
    ));
    let desired = compute(&cluster(EncapsulationMode::Never), &settings(), &paths);
    assert_eq!(target(&desired, "10.244.1.0/26"), Some(via("192.0.2.11")));
    assert_eq!(desired.rejected.len(), 1);
    let rejection = &desired.rejected[0];
    assert_eq!(rejection.prefix, net("10.244.1.0/26"));
    assert_eq!(rejection.refusal.reason(), "not_owner");
}

#[test]
fn a_hijack_of_this_nodes_own_block_never_displaces_its_blackhole() {
    let paths = best(&[(
        "10.244.0.0/26",
        vec![learned("192.0.2.11", "192.0.2.11", true)],
    )]);
    let mut settings = settings();
    settings.check_ownership = false;
    let desired = compute(&cluster(EncapsulationMode::Never), &settings, &paths);
    assert_eq!(
        target(&desired, "10.244.0.0/26"),
        Some(RouteTarget::Blackhole)
    );
}

#[test]
fn a_removed_node_takes_its_routes_with_it() {
    let mut cluster = cluster(EncapsulationMode::Never);
    cluster.nodes.remove("c");
    cluster
        .blocks
        .retain(|_, b| b.spec.affinity.as_deref() != Some("host:c"));
    cluster.affinities.retain(|_, a| a.spec.node != "c");
    // The speaker has not withdrawn yet: the route is refused all the same.
    let desired = compute(&cluster, &settings(), &mesh());
    assert_eq!(target(&desired, "10.244.2.0/26"), None);
    assert_eq!(desired.rejected[0].refusal.reason(), "not_in_ipam");
}

#[test]
fn this_nodes_own_paths_are_not_programmed_as_learned_routes() {
    let paths = best(&[(
        "10.244.0.0/26",
        vec![learned("192.0.2.200", "192.0.2.10", true)],
    )]);
    let desired = compute(&cluster(EncapsulationMode::Never), &settings(), &paths);
    assert_eq!(
        target(&desired, "10.244.0.0/26"),
        Some(RouteTarget::Blackhole)
    );
    assert!(desired.rejected.is_empty());
}

/// A VXLAN pool: every node has its VTEP.
fn vxlan_cluster(mode: EncapsulationMode) -> Cluster {
    let mut cluster = cluster(EncapsulationMode::Never);
    pool_mut(&mut cluster, "p").vxlan_mode = mode;
    vxlan_tunnel(&mut cluster, "a", "10.244.0.1", 0xa);
    vxlan_tunnel(&mut cluster, "b", "10.244.1.1", 0xb);
    vxlan_tunnel(&mut cluster, "c", "10.244.2.1", 0xc);
    // b's pod borrowed an address from c's block.
    allocate(
        &mut cluster,
        "10.244.2.9",
        "b",
        Some(("default", "borrower")),
    );
    cluster
}

fn over_vxlan(vtep: &str) -> RouteTarget {
    RouteTarget::Gateway(NextHop::onlink(ip(vtep), VXLAN_DEVICE))
}

#[test]
fn vxlan_routes_come_from_the_datastore_with_a_vtep_per_node() {
    // BGP's routes for a VXLAN pool are ignored: the datastore is the source.
    let desired = compute(
        &vxlan_cluster(EncapsulationMode::Always),
        &settings(),
        &mesh(),
    );
    assert_eq!(
        target(&desired, "10.244.1.0/26"),
        Some(over_vxlan("10.244.1.1"))
    );
    assert_eq!(
        target(&desired, "10.244.2.0/26"),
        Some(over_vxlan("10.244.2.1"))
    );
    assert_eq!(
        target(&desired, "10.244.2.9/32"),
        Some(over_vxlan("10.244.1.1"))
    );
    assert_eq!(
        desired.dataplane.vteps,
        [
            Vtep {
                tunnel_address: ip("10.244.1.1"),
                mac: Mac([0x66, 0, 0, 0, 0, 0xb]),
                underlay: ip("192.0.2.11"),
            },
            Vtep {
                tunnel_address: ip("10.244.2.1"),
                mac: Mac([0x66, 0, 0, 0, 0, 0xc]),
                underlay: ip("198.51.100.12"),
            },
        ]
    );
    assert!(desired.dataplane.vxlan.is_some());
    assert_eq!(desired.pod_mtu, 1450);
}

#[test]
fn vxlan_crosssubnet_goes_direct_on_this_subnet() {
    let desired = compute(
        &vxlan_cluster(EncapsulationMode::CrossSubnet),
        &settings(),
        &Paths::new(),
    );
    assert_eq!(target(&desired, "10.244.1.0/26"), Some(via("192.0.2.11")));
    assert_eq!(
        target(&desired, "10.244.2.0/26"),
        Some(over_vxlan("10.244.2.1"))
    );
}

#[test]
fn a_vxlan_block_of_a_node_without_a_vtep_is_a_problem_not_a_route() {
    let mut cluster = vxlan_cluster(EncapsulationMode::Always);
    node_mut(&mut cluster, "c").ipv4_vxlan_tunnel_addr = None;
    node_mut(&mut cluster, "c").vxlan_tunnel_mac_addr = None;
    let desired = compute(&cluster, &settings(), &Paths::new());
    assert_eq!(target(&desired, "10.244.2.0/26"), None);
    assert!(
        desired.problems.iter().any(|p| p.contains("\"c\"")),
        "{:?}",
        desired.problems
    );
}

#[test]
fn every_pool_is_listed_for_nat_with_its_setting() {
    let mut cluster = cluster(EncapsulationMode::Never);
    pool_mut(&mut cluster, "p").nat_outgoing = true;
    add_pool(&mut cluster, "q", "10.96.0.0/12", EncapsulationMode::Never);
    let desired = compute(&cluster, &settings(), &Paths::new());
    let nat: Vec<(String, bool)> = desired
        .nat
        .iter()
        .map(|p| (p.cidr.to_string(), p.nat_outgoing))
        .collect();
    assert_eq!(
        nat,
        [
            ("10.244.0.0/16".into(), true),
            ("10.96.0.0/12".into(), false)
        ]
    );
}

#[test]
fn the_same_inputs_give_the_same_state() {
    let cluster = vxlan_cluster(EncapsulationMode::Always);
    assert_eq!(
        compute(&cluster, &settings(), &mesh()),
        compute(&cluster, &settings(), &mesh())
    );
}
