//! The reconciler against a real kernel, each test in a fresh network namespace,
//! checked with independent tools (`ip -j`, `bridge -j`). Needs root.
//!
//! This kernel has neither IPIP nor dummy devices, so veth pairs stand in: `tunl0`
//! is a veth (the onlink route through it is what matters here; IPIP itself runs in
//! the VM harness), and workloads are veth ends named `cali*`.

#[path = "dataplane_support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use agent::dataplane::{
    DesiredState, IPIP_DEVICE, IpipDevice, Mac, NextHop, Pass, Reconciler, Route, VXLAN_DEVICE,
    Vtep, VxlanDevice,
};
use harness::routes::lines;
use ipnet::IpNet;
use serde_json::Value;
use support::Host;
use tokio::sync::watch;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}
fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A node: workloads `cali1`, `cali2`, the underlay `eth0` (192.0.2.10/24,
/// fd00:ff::a/64) and `tunl0`, all up.
fn node() -> Host {
    let host = Host::new(&harness::root::current_test_name());
    host.veth("cali1", "pod1");
    host.veth("cali2", "pod2");
    host.veth("tunl0", "tunl0p");
    host
}

/// What a freshly started reconciler does to the node's kernel for `desired`.
fn reconcile_once(ns: &Host, desired: &DesiredState) -> agent::dataplane::Report {
    ns.run(async || Reconciler::new().unwrap().reconcile(desired).await.unwrap())
}

/// One of every route kind tabby programs.
fn every_kind() -> DesiredState {
    let mut desired = DesiredState::default();
    for route in [
        Route::workload(net("10.0.0.1/32"), "cali1").unwrap(),
        Route::workload(net("10.0.0.2/32"), "cali2").unwrap(),
        Route::workload(net("fd00::1/128"), "cali1").unwrap(),
        Route::blackhole(net("10.0.0.0/26")),
        Route::blackhole(net("fd00::/122")),
        Route::via(net("10.0.1.0/26"), [NextHop::via(ip("192.0.2.2"))]).unwrap(),
        Route::via(
            net("10.0.2.0/26"),
            [NextHop::onlink(ip("198.51.100.2"), "tunl0")],
        )
        .unwrap(),
        Route::via(
            net("10.0.3.0/26"),
            [NextHop::via(ip("192.0.2.3")), NextHop::via(ip("192.0.2.4"))],
        )
        .unwrap(),
        Route::via(
            net("fd00:1::/122"),
            [
                NextHop::via(ip("fd00:ff::3")),
                NextHop::via(ip("fd00:ff::4")),
            ],
        )
        .unwrap(),
        // IPv4 through IPv6 next hops (RFC 8950), alone and ECMP.
        Route::via(net("10.0.4.0/26"), [NextHop::via(ip("fd00:ff::5"))]).unwrap(),
        Route::via(
            net("10.0.5.0/26"),
            [
                NextHop::via(ip("fd00:ff::6")),
                NextHop::via(ip("fd00:ff::7")),
            ],
        )
        .unwrap(),
    ] {
        desired.insert_route(route);
    }
    desired
}

/// `every_kind` as `ip route` prints it.
const EVERY_KIND: [&str; 11] = [
    "10.0.0.1/32 dev cali1 scope link",
    "10.0.0.2/32 dev cali2 scope link",
    "fd00::1/128 dev cali1",
    "blackhole 10.0.0.0/26",
    "blackhole fd00::/122",
    "10.0.1.0/26 via 192.0.2.2 dev eth0",
    "10.0.2.0/26 via 198.51.100.2 dev tunl0 onlink",
    "10.0.3.0/26 nexthop via 192.0.2.3 dev eth0 nexthop via 192.0.2.4 dev eth0",
    "fd00:1::/122 nexthop via fd00:ff::3 dev eth0 nexthop via fd00:ff::4 dev eth0",
    "10.0.4.0/26 via inet6 fd00:ff::5 dev eth0",
    "10.0.5.0/26 nexthop via inet6 fd00:ff::6 dev eth0 nexthop via inet6 fd00:ff::7 dev eth0",
];

/// Routes of `protocol` in the node's main table, one line each.
fn ip_routes(ns: &Host, protocol: &str) -> BTreeSet<String> {
    harness::routes::routes(ns.node(), protocol).unwrap()
}

#[test]
#[ignore = "needs root"]
fn dataplane_every_route_kind_is_programmed_as_ip_route_reads_it() {
    harness::require_root();
    let ns = node();
    let desired = every_kind();
    let (first, second) = ns.run(async || {
        let mut reconciler = Reconciler::new().unwrap();
        let first = reconciler.reconcile(&desired).await.unwrap();
        (first, reconciler.reconcile(&desired).await.unwrap())
    });
    assert_eq!(first.failures, vec![], "first apply");
    assert_eq!(first.applied, EVERY_KIND.len());
    assert_eq!(ip_routes(&ns, "84"), lines(&EVERY_KIND));
    assert_eq!(
        second.changes(),
        0,
        "the second apply must issue no changes: {second:?}"
    );
}

#[test]
#[ignore = "needs root"]
fn dataplane_a_restarted_reconciler_against_a_matching_kernel_issues_no_changes() {
    harness::require_root();
    let ns = node();
    let desired = every_kind();
    reconcile_once(&ns, &desired);
    let restarted = reconcile_once(&ns, &desired);
    assert_eq!(restarted.changes(), 0, "{restarted:?}");
    assert_eq!(ip_routes(&ns, "84"), lines(&EVERY_KIND));
}

#[test]
#[ignore = "needs root"]
fn dataplane_foreign_routes_on_tabbys_devices_are_left_alone() {
    harness::require_root();
    let ns = node();
    ns.ip("route add 10.9.0.0/24 dev cali1 proto static");
    ns.ip("route add 10.0.0.3/32 dev cali2 proto static");
    let foreign_before = ip_routes(&ns, "static");
    let kernel_before = ip_routes(&ns, "kernel");
    let mut desired = every_kind();
    // Wants a destination a static route holds: reported, not overwritten.
    desired.insert_route(Route::workload(net("10.0.0.3/32"), "cali1").unwrap());
    let (applied, emptied) = ns.run(async || {
        let mut reconciler = Reconciler::new().unwrap();
        let applied = reconciler.reconcile(&desired).await.unwrap();
        (
            applied,
            reconciler
                .reconcile(&DesiredState::default())
                .await
                .unwrap(),
        )
    });
    assert_eq!(
        applied.conflicts,
        vec![Route::workload(net("10.0.0.3/32"), "cali1").unwrap()]
    );
    assert_eq!(emptied.failures, vec![]);
    assert_eq!(emptied.applied, EVERY_KIND.len());
    assert_eq!(ip_routes(&ns, "84"), BTreeSet::new());
    assert_eq!(ip_routes(&ns, "static"), foreign_before);
    assert_eq!(ip_routes(&ns, "kernel"), kernel_before);
}

#[test]
#[ignore = "needs root"]
fn dataplane_routes_changed_or_removed_behind_tabbys_back_are_repaired() {
    harness::require_root();
    let ns = node();
    let desired = every_kind();
    reconcile_once(&ns, &desired);
    ns.ip("route replace 10.0.0.1/32 dev cali2 proto 84");
    ns.ip("route replace 10.0.3.0/26 via 192.0.2.3 proto 84");
    ns.ip("route replace unreachable 10.0.0.0/26 proto 84");
    ns.ip("route delete fd00::1/128");
    ns.ip("route add 10.0.7.0/26 via 192.0.2.9 proto 84");
    ns.ip("-6 route replace fd00:1::/122 via fd00:ff::3 proto 84");
    let repair = reconcile_once(&ns, &desired);
    assert_eq!(
        (repair.applied, repair.failures.len()),
        (6, 0),
        "{repair:?}"
    );
    assert_eq!(ip_routes(&ns, "84"), lines(&EVERY_KIND));
}

#[test]
#[ignore = "needs root"]
fn dataplane_a_route_removed_from_desired_is_deleted_and_the_rest_untouched() {
    harness::require_root();
    let ns = node();
    let mut desired = every_kind();
    let removed = ns.run(async || {
        let mut reconciler = Reconciler::new().unwrap();
        reconciler.reconcile(&desired).await.unwrap();
        desired.routes.remove(&net("10.0.3.0/26"));
        desired.routes.remove(&net("fd00::1/128"));
        reconciler.reconcile(&desired).await.unwrap()
    });
    assert_eq!(
        (removed.applied, removed.failures.len()),
        (2, 0),
        "{removed:?}"
    );
    let mut expected = lines(&EVERY_KIND);
    expected.retain(|l| !l.starts_with("10.0.3.0/26") && !l.starts_with("fd00::1/128"));
    assert_eq!(ip_routes(&ns, "84"), expected);
}

#[test]
#[ignore = "needs root"]
fn dataplane_refused_changes_are_reported_one_by_one_and_the_rest_applied() {
    harness::require_root();
    let ns = node();
    let mut desired = every_kind();
    desired.insert_route(Route::workload(net("10.0.0.9/32"), "cali9").unwrap());
    // No route covers 203.0.113.1 and it is not onlink: the kernel refuses it.
    desired
        .insert_route(Route::via(net("10.0.8.0/26"), [NextHop::via(ip("203.0.113.1"))]).unwrap());
    let report = reconcile_once(&ns, &desired);
    let failed: Vec<_> = report
        .failures
        .iter()
        .map(|f| (f.change.as_str(), f.errno))
        .collect();
    assert_eq!(
        failed,
        vec![
            (
                "replace route 10.0.0.9/32 dev cali9 scope link",
                libc::ENODEV
            ),
            (
                "replace route 10.0.8.0/26 via 203.0.113.1",
                libc::ENETUNREACH
            ),
        ]
    );
    assert_eq!(report.applied, EVERY_KIND.len());
    assert_eq!(ip_routes(&ns, "84"), lines(&EVERY_KIND));
}

const LOCAL_MAC: Mac = Mac([0x66, 0xee, 0, 0, 0, 1]);
const REMOTE_MAC: Mac = Mac([0x66, 0xee, 0, 0, 0, 2]);

fn vxlan_node_state(underlay: &str) -> DesiredState {
    let mut desired = DesiredState {
        vxlan: Some(VxlanDevice::new(ip("192.0.2.10"), LOCAL_MAC, 1450)),
        vteps: vec![Vtep {
            tunnel_address: ip("10.0.4.0"),
            mac: REMOTE_MAC,
            underlay: ip(underlay),
        }],
        ..DesiredState::default()
    };
    desired.insert_route(
        Route::via(
            net("10.0.4.0/26"),
            [NextHop::onlink(ip("10.0.4.0"), VXLAN_DEVICE)],
        )
        .unwrap(),
    );
    desired
}

#[test]
#[ignore = "needs root"]
fn dataplane_the_vxlan_device_and_its_vtep_entries_match_ip_and_bridge() {
    harness::require_root();
    let ns = node();
    let desired = vxlan_node_state("192.0.2.2");
    let moved = vxlan_node_state("192.0.2.3");
    let (first, second, after_move) = ns.run(async || {
        let mut reconciler = Reconciler::new().unwrap();
        let first = reconciler.reconcile(&desired).await.unwrap();
        let second = reconciler.reconcile(&desired).await.unwrap();
        (first, second, reconciler.reconcile(&moved).await.unwrap())
    });
    assert_eq!(first.failures, vec![]);
    assert_eq!(first.applied, 4, "device, neighbour, FDB entry, route");
    assert_eq!(second.changes(), 0, "{second:?}");

    let link: Value =
        serde_json::from_str(&ns.ip(&format!("-j -d link show {VXLAN_DEVICE}"))).unwrap();
    let link = &link[0];
    let info = &link["linkinfo"]["info_data"];
    assert_eq!(link["mtu"], 1450);
    assert_eq!(link["address"], "66:ee:00:00:00:01");
    assert!(link["flags"].as_array().unwrap().iter().any(|f| f == "UP"));
    assert_eq!(link["linkinfo"]["info_kind"], "vxlan");
    assert_eq!(
        (info["id"].as_u64(), info["port"].as_u64()),
        (Some(4096), Some(4789))
    );
    assert_eq!(info["local"], "192.0.2.10");
    assert_eq!(info["learning"], false);

    let neigh: Value =
        serde_json::from_str(&ns.ip(&format!("-j neigh show dev {VXLAN_DEVICE}"))).unwrap();
    assert_eq!(neigh[0]["dst"], "10.0.4.0");
    assert_eq!(neigh[0]["lladdr"], "66:ee:00:00:00:02");
    assert_eq!(neigh[0]["state"][0], "PERMANENT");

    assert_eq!(
        ip_routes(&ns, "84"),
        lines(&["10.0.4.0/26 via 10.0.4.0 dev vxlan.tabby onlink"])
    );

    // The VTEP moved to another underlay address: its FDB entry follows.
    assert_eq!(
        (after_move.applied, after_move.failures.len()),
        (2, 0),
        "{after_move:?}"
    );
    let fdb: Value =
        serde_json::from_str(&ns.exec("bridge", &["-j", "fdb", "show", "dev", VXLAN_DEVICE]))
            .unwrap();
    let entries: Vec<_> = fdb
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["mac"].as_str().unwrap(),
                e["dst"].as_str().unwrap(),
                e["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        vec![("66:ee:00:00:00:02", "192.0.2.3", "permanent")]
    );
}

/// `ip -j addr show dev DEVICE` as `address/len`, link-local left out.
fn addresses(ns: &Host, device: &str) -> Vec<String> {
    let json: Value = serde_json::from_str(&ns.ip(&format!("-j addr show dev {device}"))).unwrap();
    json[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["scope"] != "link")
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect()
}

#[test]
#[ignore = "needs root"]
fn dataplane_the_vxlan_tunnel_address_is_set_and_stray_addresses_removed() {
    harness::require_root();
    let ns = node();
    let mut desired = vxlan_node_state("192.0.2.2");
    desired.tunnel_addresses = [(VXLAN_DEVICE.to_owned(), ip("10.0.9.1"))].into();
    let first = reconcile_once(&ns, &desired);
    assert_eq!(first.failures, vec![]);
    assert_eq!(addresses(&ns, VXLAN_DEVICE), ["10.0.9.1/32"]);
    ns.ip(&format!("addr add 10.9.9.9/24 dev {VXLAN_DEVICE}"));
    let repair = reconcile_once(&ns, &desired);
    assert_eq!(
        (repair.applied, repair.failures.len()),
        (1, 0),
        "{repair:?}"
    );
    assert_eq!(addresses(&ns, VXLAN_DEVICE), ["10.0.9.1/32"]);
    assert_eq!(reconcile_once(&ns, &desired).changes(), 0);
}

#[test]
#[ignore = "needs root"]
fn dataplane_tunl0_on_a_kernel_without_ipip_is_one_reported_failure_and_the_rest_applies() {
    harness::require_root();
    // A node without the veth stand-in: `tunl0` really is missing here.
    let ns = Host::new(&harness::root::current_test_name());
    ns.veth("cali1", "pod1");
    let mut desired = DesiredState {
        ipip: Some(IpipDevice { mtu: 1480 }),
        tunnel_addresses: [(IPIP_DEVICE.to_owned(), ip("10.0.9.1"))].into(),
        ..DesiredState::default()
    };
    desired.insert_route(Route::workload(net("10.0.0.1/32"), "cali1").unwrap());
    let report = reconcile_once(&ns, &desired);
    let failed: Vec<&str> = report.failures.iter().map(|f| f.change.as_str()).collect();
    assert_eq!(
        failed,
        [
            "create tunl0 type ipip mtu 1480 up",
            "set tunl0 mtu 1480 up",
            "add address 10.0.9.1/32 dev tunl0"
        ],
        "{report:?}"
    );
    assert_eq!(
        ip_routes(&ns, "84"),
        lines(&["10.0.0.1/32 dev cali1 scope link"])
    );
}

#[test]
#[ignore = "needs root"]
fn dataplane_a_vxlan_device_changed_behind_tabbys_back_is_repaired_in_place() {
    harness::require_root();
    let ns = node();
    let desired = vxlan_node_state("192.0.2.2");
    reconcile_once(&ns, &desired);
    let index_before = ns.ip(&format!("-j link show {VXLAN_DEVICE}"));
    ns.ip(&format!(
        "link set {VXLAN_DEVICE} down mtu 1400 address 66:ee:00:00:00:99"
    ));
    // Down flushes the device's neighbours and the routes through it: all come back.
    let repair = reconcile_once(&ns, &desired);
    assert_eq!(
        (repair.applied, repair.failures.len()),
        (3, 0),
        "device, neighbour and route: {repair:?}"
    );
    let link: Value =
        serde_json::from_str(&ns.ip(&format!("-j link show {VXLAN_DEVICE}"))).unwrap();
    let before: Value = serde_json::from_str(&index_before).unwrap();
    assert_eq!(
        link[0]["ifindex"], before[0]["ifindex"],
        "updated in place, not recreated"
    );
    assert_eq!(
        (link[0]["mtu"].as_u64(), link[0]["address"].as_str()),
        (Some(1450), Some("66:ee:00:00:00:01"))
    );
    assert_eq!(
        ip_routes(&ns, "84"),
        lines(&["10.0.4.0/26 via 10.0.4.0 dev vxlan.tabby onlink"])
    );
}

#[test]
#[ignore = "needs root"]
fn dataplane_refusals_across_many_batches_are_matched_to_their_own_changes() {
    harness::require_root();
    let ns = node();
    let mut desired = DesiredState::default();
    let mut refused = Vec::new();
    // 20,000 routes span several sendmsg batches; every 1,000th has an unreachable
    // gateway, so refusals land in the middle and at the edges of batches.
    for i in 0..20_000u32 {
        let dst = IpNet::new(std::net::Ipv4Addr::from(0x0a10_0000 + i).into(), 32).unwrap();
        let gateway = if i % 1000 == 999 {
            "203.0.113.1"
        } else {
            "192.0.2.2"
        };
        if i % 1000 == 999 {
            refused.push(format!("replace route {dst} via {gateway}"));
        }
        desired.insert_route(Route::via(dst, [NextHop::via(ip(gateway))]).unwrap());
    }
    let report = reconcile_once(&ns, &desired);
    let failed: Vec<_> = report
        .failures
        .iter()
        .map(|f| (f.change.clone(), f.errno))
        .collect();
    let expected: Vec<_> = refused
        .into_iter()
        .map(|c| (c, libc::ENETUNREACH))
        .collect();
    assert_eq!(failed, expected);
    assert_eq!(report.applied, 19_980);
    assert_eq!(ns.ip("route show proto 84").lines().count(), 19_980);
}

/// Polls `condition` every 10 ms until it holds; panics naming `what` after 10 s.
async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
#[ignore = "needs root"]
fn dataplane_the_running_reconciler_follows_desired_state_and_repairs_on_resync() {
    harness::require_root();
    let ns = node();
    ns.run(async || {
        let (desired, updates) = watch::channel(every_kind());
        let reconciler = Reconciler::new().unwrap();
        let task =
            tokio::spawn(reconciler.run(updates, Duration::from_millis(50), Reconciler::log));
        let all = lines(&EVERY_KIND);
        wait_for("the first state", || ip_routes(&ns, "84") == all).await;

        ns.ip("route delete 10.0.0.1/32");
        wait_for("the resync to repair", || ip_routes(&ns, "84") == all).await;

        desired.send_modify(|state| {
            state.routes.remove(&net("10.0.3.0/26"));
        });
        let mut fewer = all.clone();
        fewer.retain(|line| !line.starts_with("10.0.3.0/26"));
        wait_for("the new state", || ip_routes(&ns, "84") == fewer).await;

        drop(desired);
        task.await
            .expect("the reconciler stops when its sender is dropped");
    });
}

#[test]
#[ignore = "needs root"]
fn dataplane_a_route_refused_for_a_missing_veth_is_retried_when_it_appears_not_at_resync() {
    harness::require_root();
    let ns = node();
    ns.run(async || {
        let mut state = DesiredState::default();
        state.insert_route(Route::workload(net("10.0.0.9/32"), "cali9").unwrap());
        let (_desired, updates) = watch::channel(state);
        let refused = Arc::new(AtomicUsize::new(0));
        let counted = refused.clone();
        let observe = move |pass: Pass| {
            if pass.result.is_ok_and(|report| !report.failures.is_empty()) {
                counted.fetch_add(1, Ordering::Relaxed);
            }
        };
        // A resync far beyond the test: only the retry can program the route.
        let reconciler = Reconciler::new().unwrap();
        tokio::spawn(reconciler.run(updates, Duration::from_secs(3600), observe));
        wait_for("the kernel to refuse the route", || {
            refused.load(Ordering::Relaxed) > 0
        })
        .await;
        // tabby-cni makes the pod's veth after IPAM gave the address.
        ns.veth("cali9", "pod9");
        wait_for("the retry to program it", || {
            ip_routes(&ns, "84") == lines(&["10.0.0.9/32 dev cali9 scope link"])
        })
        .await;
    });
}

#[test]
#[ignore = "needs root"]
fn dataplane_a_vxlan_device_with_another_vni_is_recreated_with_its_entries_and_routes() {
    harness::require_root();
    let ns = node();
    let desired = vxlan_node_state("192.0.2.2");
    reconcile_once(&ns, &desired);
    ns.ip(&format!("link delete {VXLAN_DEVICE}"));
    ns.ip(&format!(
        "link add {VXLAN_DEVICE} type vxlan id 7 local 192.0.2.1 dstport 4789 nolearning"
    ));
    let recreated = reconcile_once(&ns, &desired);
    assert_eq!(recreated.failures, vec![]);
    assert_eq!(
        recreated.applied, 5,
        "delete, create, neighbour, FDB entry, route"
    );
    let link: Value =
        serde_json::from_str(&ns.ip(&format!("-j -d link show {VXLAN_DEVICE}"))).unwrap();
    assert_eq!(link[0]["linkinfo"]["info_data"]["id"], 4096);
    assert_eq!(link[0]["address"], "66:ee:00:00:00:01");

    // No VXLAN wanted any more: the device goes, and with it its entries and route.
    let gone = ns.run(async || {
        let nothing = DesiredState::default();
        Reconciler::new()
            .unwrap()
            .reconcile(&nothing)
            .await
            .unwrap()
    });
    assert_eq!(
        (gone.applied, gone.failures.len()),
        (2, 0),
        "device and route: {gone:?}"
    );
    assert_eq!(ns.ip("-j link show").matches(VXLAN_DEVICE).count(), 0);
    assert_eq!(ip_routes(&ns, "84"), BTreeSet::new());
}
