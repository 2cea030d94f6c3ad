//! The garbage collector against the memory datastore: what it reclaims, when, and
//! what it never touches. Passes are given their time, so grace periods need no
//! waiting.

mod support;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::datastore::{Backend, Datastore};
use api::resources::{
    BlockAffinity, BlockAffinitySpec, Cidr, EncapsulationMode, IPAMBlock, Node,
    WorkloadEndpointSpec,
};
use ipam::check::check;
use ipam::gc::{Collector, Report, Target};
use ipam::table::attr;
use ipam::{Allocator, AssignRequest, Family, Tunnel};
use support::{memory, node, pool};

const GRACE: Duration = Duration::from_secs(300);

/// Assigns one address for pod `ns/pod` on `allocator`'s node.
async fn pod_address(allocator: &Allocator, ns: &str, pod: &str, container: &str) -> IpAddr {
    let mut request = AssignRequest::new(format!("net.{container}"), 1, 0);
    request.attrs = BTreeMap::from([
        (attr::NAMESPACE.to_owned(), ns.to_owned()),
        (attr::POD.to_owned(), pod.to_owned()),
        (attr::NODE.to_owned(), allocator.node().to_owned()),
        (attr::CONTAINER_ID.to_owned(), container.to_owned()),
    ]);
    allocator.auto_assign(&request).await.unwrap().addresses[0].ip
}

async fn start_pod(
    store: &dyn Backend,
    node: &str,
    ns: &str,
    pod: &str,
    container: &str,
    ip: IpAddr,
) {
    store
        .register_workload(WorkloadEndpointSpec {
            node: node.into(),
            namespace: ns.into(),
            pod: pod.into(),
            container_id: container.into(),
            endpoint: "eth0".into(),
            interface_name: "cali0123456789a".into(),
            mac: None,
            ip_networks: vec![Cidr(ip.into())],
        })
        .await
        .unwrap();
}

fn reclaimed_kinds(report: &Report) -> Vec<&'static str> {
    report.reclaimed.iter().map(Target::kind).collect()
}

#[tokio::test]
async fn ipam_gc_reclaims_a_gone_pods_address_only_after_the_grace_period() {
    let store = memory();
    pool(&*store, "p", "10.0.0.0/24", 26, |_| {}).await;
    node(&*store, "n1", true).await;
    let n1 = Allocator::new(store.clone(), "n1");
    let live = pod_address(&n1, "default", "live", "c1").await;
    start_pod(&*store, "n1", "default", "live", "c1", live).await;
    let gone = pod_address(&n1, "default", "gone", "c2").await;

    let mut gc = Collector::new(store.clone(), GRACE);
    let t0 = Instant::now();
    let first = gc.run_once(t0).await.unwrap();
    assert_eq!(first.candidates.len(), 1, "{first:#?}");
    assert!(
        first.candidates[0]
            .reason
            .contains("pod default/gone does not exist")
    );
    assert!(first.reclaimed.is_empty(), "not before the grace period");
    let early = gc.run_once(t0 + GRACE / 2).await.unwrap();
    assert!(early.reclaimed.is_empty());
    let due = gc.run_once(t0 + GRACE).await.unwrap();
    assert_eq!(reclaimed_kinds(&due), ["pod_address"]);
    let report = check(&*store, true).await.unwrap();
    assert_eq!(
        report.allocations, 1,
        "the live pod keeps {live}; {gone} is free"
    );
    assert!(report.is_consistent(), "{:#?}", report.problems);
}

#[tokio::test]
async fn ipam_gc_spares_an_address_whose_pod_appears_before_the_release() {
    let store = memory();
    pool(&*store, "p", "10.0.0.0/24", 26, |_| {}).await;
    node(&*store, "n1", true).await;
    let n1 = Allocator::new(store.clone(), "n1");
    let ip = pod_address(&n1, "default", "slow", "c1").await;
    // Some other pod is registered, so pods are judged at all.
    start_pod(
        &*store,
        "n1",
        "default",
        "other",
        "c0",
        "10.9.9.9".parse().unwrap(),
    )
    .await;
    let mut gc = Collector::new(store.clone(), GRACE);
    let t0 = Instant::now();
    gc.run_once(t0).await.unwrap();
    // The CNI ADD finishes and registers the pod just as the grace period ends.
    start_pod(&*store, "n1", "default", "slow", "c1", ip).await;
    let due = gc.run_once(t0 + GRACE).await.unwrap();
    assert!(due.reclaimed.is_empty(), "{due:#?}");
    assert!(
        due.candidates.is_empty(),
        "the pass's own read sees the pod"
    );
    assert_eq!(check(&*store, false).await.unwrap().allocations, 1);
}

#[tokio::test]
async fn ipam_gc_never_frees_an_address_reused_since_it_was_seen_leaked() {
    let store = memory();
    pool(&*store, "p", "10.0.0.0/31", 31, |_| {}).await;
    node(&*store, "n1", true).await;
    let n1 = Allocator::new(store.clone(), "n1");
    start_pod(
        &*store,
        "n1",
        "default",
        "other",
        "c0",
        "10.9.9.9".parse().unwrap(),
    )
    .await;
    let first = pod_address(&n1, "default", "old", "c1").await;
    let mut gc = Collector::new(store.clone(), GRACE);
    let t0 = Instant::now();
    let seen = gc.run_once(t0).await.unwrap();
    assert_eq!(seen.candidates.len(), 1);
    // Freed by its own DEL and handed to a new pod before the controller acts.
    n1.release_handle("net.c1").await.unwrap();
    let other = pod_address(&n1, "default", "new1", "c2").await;
    let reused = pod_address(&n1, "default", "new2", "c3").await;
    assert_eq!(
        reused, first,
        "the same address, now the new pod's ({other} is the other)"
    );
    start_pod(&*store, "n1", "default", "new2", "c3", reused).await;
    start_pod(&*store, "n1", "default", "new1", "c2", other).await;
    let due = gc.run_once(t0 + GRACE).await.unwrap();
    assert!(due.reclaimed.is_empty(), "{due:#?}");
    let held = ipam::handles::addresses_of(&*store, "net.c3", "n1")
        .await
        .unwrap();
    assert_eq!(held.len(), 1, "the new pod still holds {reused}");
}

#[tokio::test]
async fn ipam_gc_releases_a_deleted_nodes_blocks_affinities_and_tunnel_address() {
    let store = memory();
    pool(&*store, "p", "10.0.0.0/24", 26, |p| {
        p.ipip_mode = EncapsulationMode::Always
    })
    .await;
    node(&*store, "n1", true).await;
    node(&*store, "n2", true).await;
    let n2 = Allocator::new(store.clone(), "n2");
    let tunnel = n2
        .ensure_tunnel_address(Tunnel::Ipip, Family::V4)
        .await
        .unwrap();
    assert!(tunnel.is_some());
    // An explicit address in another block than the tunnel's: two blocks of n2.
    let tunnel_block = ipam::blocks::block_of(tunnel.unwrap(), 26).unwrap();
    let elsewhere = if tunnel_block.contains(&"10.0.0.200".parse::<IpAddr>().unwrap()) {
        "10.0.0.10"
    } else {
        "10.0.0.200"
    };
    let extra = n2
        .assign_ip(
            elsewhere.parse().unwrap(),
            "static-n2",
            BTreeMap::from([(attr::NODE.to_owned(), "n2".to_owned())]),
        )
        .await
        .unwrap();
    assert!(!extra.borrowed);
    store.delete::<Node>("n2", None).await.unwrap();

    let mut gc = Collector::new(store.clone(), GRACE);
    let t0 = Instant::now();
    gc.run_once(t0).await.unwrap();
    let due = gc.run_once(t0 + GRACE).await.unwrap();
    let mut kinds = reclaimed_kinds(&due);
    kinds.sort();
    assert_eq!(
        kinds,
        ["node_address", "node_block", "node_block", "tunnel_address"],
        "{due:#?}"
    );
    // Addresses go first in a pass, so the blocks were empty by the time they went.
    let report = check(&*store, true).await.unwrap();
    assert_eq!(
        (report.blocks, report.affinities, report.allocations),
        (0, 0, 0)
    );
    assert!(report.is_consistent(), "{:#?}", report.problems);
}

#[tokio::test]
async fn ipam_gc_removes_stale_pending_affinities_surplus_empty_blocks_and_empty_handles() {
    let store = memory();
    pool(&*store, "p", "10.0.0.0/24", 28, |_| {}).await;
    node(&*store, "n1", true).await;
    let n1 = Allocator::new(store.clone(), "n1");
    for i in 0..20 {
        n1.auto_assign(&AssignRequest::new(format!("h{i}"), 1, 0))
            .await
            .unwrap();
    }
    for i in 0..20 {
        n1.release_handle(&format!("h{i}")).await.unwrap();
    }
    // A claim cut short: pending affinity, block never written (in a block nobody has).
    let blocks: Vec<IPAMBlock> = ipam::cas::list_all(&*store).await.unwrap();
    let cidr = ipam::blocks::blocks_of("10.0.0.0/24".parse().unwrap(), 28)
        .unwrap()
        .map(Cidr)
        .find(|c| blocks.iter().all(|b| b.spec.cidr != *c))
        .unwrap();
    store
        .create(&BlockAffinity::new(
            ipam::claim::affinity_name("n1", &cidr),
            BlockAffinitySpec {
                node: "n1".into(),
                cidr,
                state: Default::default(),
            },
        ))
        .await
        .unwrap();
    // A handle whose block write never happened.
    support::empty_handle(&*store, "crashed").await;

    let mut gc = Collector::new(store.clone(), GRACE);
    let t0 = Instant::now();
    gc.run_once(t0).await.unwrap();
    let due = gc.run_once(t0 + GRACE).await.unwrap();
    let mut kinds = reclaimed_kinds(&due);
    kinds.sort();
    assert_eq!(
        kinds,
        ["empty_block", "handle", "pending_affinity"],
        "{due:#?}"
    );
    let blocks: Vec<IPAMBlock> = ipam::cas::list_all(&*store).await.unwrap();
    assert_eq!(
        blocks.len(),
        1,
        "one empty block is kept for the node's next pod"
    );
    let report = check(&*store, false).await.unwrap();
    assert!(report.is_consistent(), "{:#?}", report.problems);
}

#[tokio::test]
async fn ipam_gc_judges_no_pod_while_no_workload_is_registered() {
    let store = memory();
    pool(&*store, "p", "10.0.0.0/24", 26, |_| {}).await;
    node(&*store, "n1", true).await;
    let n1 = Allocator::new(store.clone(), "n1");
    pod_address(&n1, "default", "web", "c1").await;
    let store: Arc<dyn Backend> = store;
    let mut gc = Collector::new(store.clone(), Duration::ZERO);
    let report = gc.run_once(Instant::now()).await.unwrap();
    assert!(
        report.reclaimed.is_empty() && report.candidates.is_empty(),
        "{report:#?}"
    );
    assert!(
        report.warnings[0].contains("no WorkloadEndpoint is registered"),
        "{report:#?}"
    );
}

/// Assigns one address for interface `interface` of pod `ns/pod`'s sandbox `container`.
async fn attachment_address(
    allocator: &Allocator,
    ns: &str,
    pod: &str,
    container: &str,
    interface: &str,
) -> IpAddr {
    let mut request = AssignRequest::new(format!("net.{container}.{interface}"), 1, 0);
    request.attrs = BTreeMap::from([
        (attr::NAMESPACE.to_owned(), ns.to_owned()),
        (attr::POD.to_owned(), pod.to_owned()),
        (attr::NODE.to_owned(), allocator.node().to_owned()),
        (attr::CONTAINER_ID.to_owned(), container.to_owned()),
        (attr::INTERFACE.to_owned(), interface.to_owned()),
    ]);
    allocator.auto_assign(&request).await.unwrap().addresses[0].ip
}

#[tokio::test]
async fn hardening_gc_keeps_the_address_of_a_pods_secondary_interface() {
    let store = memory();
    pool(&*store, "p", "10.0.0.0/24", 26, |_| {}).await;
    node(&*store, "n1", true).await;
    let n1 = Allocator::new(store.clone(), "n1");
    let primary = attachment_address(&n1, "default", "web", "c1", "eth0").await;
    // A second network (a meta-plugin's net1) with tabby-ipam: same sandbox, an
    // address the pod's endpoint does not list.
    attachment_address(&n1, "default", "web", "c1", "net1").await;
    start_pod(&*store, "n1", "default", "web", "c1", primary).await;

    let mut gc = Collector::new(store.clone(), GRACE);
    let t0 = Instant::now();
    gc.run_once(t0).await.unwrap();
    let due = gc.run_once(t0 + GRACE).await.unwrap();
    assert!(due.candidates.is_empty(), "{due:#?}");
    assert_eq!(check(&*store, false).await.unwrap().allocations, 2);
}

#[tokio::test]
async fn ipam_gc_frees_what_an_earlier_sandbox_or_a_retried_add_left_and_keeps_the_rest() {
    let store = memory();
    pool(&*store, "p", "10.0.0.0/24", 26, |_| {}).await;
    node(&*store, "n1", true).await;
    let n1 = Allocator::new(store.clone(), "n1");
    // The pod's sandbox was replaced (c1 → c2); c2's first ADD failed after IPAM and
    // left an address its retry (another handle) did not reuse.
    let earlier = attachment_address(&n1, "default", "web", "c1", "eth0").await;
    let mut retried = AssignRequest::new("retry.c2", 1, 0);
    retried.attrs = BTreeMap::from([
        (attr::NAMESPACE.to_owned(), "default".to_owned()),
        (attr::POD.to_owned(), "web".to_owned()),
        (attr::NODE.to_owned(), "n1".to_owned()),
        (attr::CONTAINER_ID.to_owned(), "c2".to_owned()),
        (attr::INTERFACE.to_owned(), "eth0".to_owned()),
    ]);
    let left = n1.auto_assign(&retried).await.unwrap().addresses[0].ip;
    let current = attachment_address(&n1, "default", "web", "c2", "eth0").await;
    start_pod(&*store, "n1", "default", "web", "c2", current).await;

    let mut gc = Collector::new(store.clone(), GRACE);
    let t0 = Instant::now();
    gc.run_once(t0).await.unwrap();
    let due = gc.run_once(t0 + GRACE).await.unwrap();
    let mut freed: Vec<IpAddr> = due
        .reclaimed
        .iter()
        .filter_map(|t| match t {
            Target::Address { ip, .. } => Some(*ip),
            _ => None,
        })
        .collect();
    freed.sort();
    let mut expected = vec![earlier, left];
    expected.sort();
    assert_eq!(freed, expected, "{due:#?}");
    let kept = ipam::handles::addresses_of(&*store, "net.c2.eth0", "n1")
        .await
        .unwrap();
    assert_eq!(kept.len(), 1, "the live sandbox keeps {current}");
}

#[tokio::test]
async fn hardening_gc_without_a_pod_record_judges_only_nodes_that_register_endpoints() {
    let store = memory();
    pool(&*store, "p", "10.0.0.0/24", 26, |_| {}).await;
    node(&*store, "n1", true).await;
    node(&*store, "n2", true).await;
    let n1 = Allocator::new(store.clone(), "n1");
    let n2 = Allocator::new(store.clone(), "n2");
    let live = attachment_address(&n1, "default", "a", "c1", "eth0").await;
    start_pod(&*store, "n1", "default", "a", "c1", live).await;
    let gone = attachment_address(&n1, "default", "gone", "c3", "eth0").await;
    // n2 runs a CNI plugin that registers no endpoints: its pods cannot be judged.
    let unregistered = attachment_address(&n2, "default", "b", "c2", "eth0").await;

    let mut gc = Collector::new(store.clone(), Duration::ZERO);
    let report = gc.run_once(Instant::now()).await.unwrap();
    let freed: Vec<IpAddr> = report
        .reclaimed
        .iter()
        .filter_map(|t| match t {
            Target::Address { ip, .. } => Some(*ip),
            _ => None,
        })
        .collect();
    assert_eq!(freed, [gone], "{report:#?}");
    assert!(
        report.warnings.iter().any(|w| w.contains("node n2")),
        "{report:#?}"
    );
    let held = ipam::handles::addresses_of(&*store, "net.c2.eth0", "n2")
        .await
        .unwrap();
    assert_eq!(held.len(), 1, "{unregistered} is kept");
}
