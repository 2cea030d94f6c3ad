//! Allocation against the memory datastore: claims, assignment rules, release and
//! the errors an operator sees.

mod support;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use api::datastore::{Backend, Datastore};
use api::resources::{
    AffinityState, BlockAffinity, Cidr, IPAMBlock, IPAMHandle, IPPool, IPReservation,
    IPReservationSpec,
};
use ipam::check::check;
use ipam::release::{Expect, release_ip};
use ipam::{Allocator, AssignRequest, ExistingHandle, IpamError};
use support::{edit, ipam_config, memory, pool};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ips(assigned: &ipam::Assigned) -> Vec<IpAddr> {
    assigned.addresses.iter().map(|a| a.ip).collect()
}

async fn assign(
    allocator: &Allocator,
    handle: &str,
    v4: usize,
    v6: usize,
) -> ipam::Result<Vec<IpAddr>> {
    let assigned = allocator
        .auto_assign(&AssignRequest::new(handle, v4, v6))
        .await?;
    Ok(ips(&assigned))
}

async fn consistent(store: &dyn Backend) {
    let report = check(store, false).await.unwrap();
    assert!(report.is_consistent(), "{:#?}", report.problems);
}

#[tokio::test]
async fn ipam_a_first_assignment_claims_a_block_confirms_its_affinity_and_counts_the_handle() {
    let store = memory();
    pool(&*store, "p", "10.0.0.0/24", 26, |_| {}).await;
    let n1 = Allocator::new(store.clone(), "n1");
    let got = assign(&n1, "h1", 1, 0).await.unwrap();
    let block = ipam::blocks::block_of(got[0], 26).unwrap();
    let name = api::resources::cidr_name(&Cidr(block));
    let stored: IPAMBlock = store.get(&name).await.unwrap();
    assert_eq!(stored.spec.affinity.as_deref(), Some("host:n1"));
    let affinity: BlockAffinity = store.get(&format!("n1-{name}")).await.unwrap();
    assert_eq!(affinity.spec.state, AffinityState::Confirmed);
    let handle: IPAMHandle = store.get("h1").await.unwrap();
    assert_eq!(handle.spec.block.get(&block.to_string()), Some(&1));
    consistent(&*store).await;
}

#[tokio::test]
async fn ipam_a_node_fills_its_block_before_claiming_another() {
    let store = memory();
    pool(&*store, "p", "10.0.0.0/24", 28, |_| {}).await;
    let n1 = Allocator::new(store.clone(), "n1");
    let mut all = Vec::new();
    for i in 0..17 {
        all.extend(assign(&n1, &format!("h{i}"), 1, 0).await.unwrap());
    }
    let blocks: BTreeSet<_> = all
        .iter()
        .map(|ip| ipam::blocks::block_of(*ip, 28).unwrap())
        .collect();
    assert_eq!(
        blocks.len(),
        2,
        "16 in the first block, the 17th in a second: {all:?}"
    );
    assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), 17);
    consistent(&*store).await;
}

#[tokio::test]
async fn ipam_dual_stack_assignment_gives_one_address_of_each_family_to_one_handle() {
    let store = memory();
    pool(&*store, "v4", "10.0.0.0/24", 26, |_| {}).await;
    pool(&*store, "v6", "fd00::/120", 122, |_| {}).await;
    let n1 = Allocator::new(store.clone(), "n1");
    let got = assign(&n1, "pod", 1, 1).await.unwrap();
    assert!(got[0].is_ipv4() && got[1].is_ipv6(), "{got:?}");
    let handle: IPAMHandle = store.get("pod").await.unwrap();
    assert_eq!(handle.spec.block.len(), 2);
    consistent(&*store).await;
}

#[tokio::test]
async fn ipam_reserved_ranges_and_a_tiny_pools_edges_are_never_handed_out() {
    let store = memory();
    pool(&*store, "tiny", "10.0.0.0/29", 29, |_| {}).await;
    store
        .create(&IPReservation::new(
            "gw",
            IPReservationSpec {
                reserved_cidrs: vec![
                    "10.0.0.1/32".parse().unwrap(),
                    "10.0.0.4/31".parse().unwrap(),
                ],
            },
        ))
        .await
        .unwrap();
    let n1 = Allocator::new(store.clone(), "n1");
    let mut got = Vec::new();
    while let Ok(more) = assign(&n1, &format!("h{}", got.len()), 1, 0).await {
        got.extend(more);
    }
    got.sort();
    assert_eq!(got, [ip("10.0.0.2"), ip("10.0.0.3"), ip("10.0.0.6")]);
    let error = n1
        .assign_ip(ip("10.0.0.1"), "explicit", Default::default())
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "10.0.0.1 is reserved (by IPReservation gw) and is never handed out"
    );
    let error = n1
        .assign_ip(ip("10.0.0.7"), "explicit", Default::default())
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("broadcast address of pool tiny"),
        "{error}"
    );
}

#[tokio::test]
async fn ipam_strict_affinity_refuses_to_borrow_with_a_message_naming_pool_and_node() {
    let store = memory();
    pool(&*store, "p", "10.0.0.0/26", 26, |_| {}).await;
    ipam_config(&*store, |c| c.strict_affinity = true).await;
    let n1 = Allocator::new(store.clone(), "n1");
    let n3 = Allocator::new(store.clone(), "n3");
    assign(&n1, "a", 1, 0).await.unwrap();
    let error = assign(&n3, "b", 1, 0).await.unwrap_err();
    assert!(matches!(error, IpamError::Exhausted(_)));
    assert_eq!(
        error.to_string(),
        "pool 10.0.0.0/26 has no free block for node n3 and strictAffinity forbids borrowing"
    );
    let nothing: Option<IPAMHandle> = store.get("b").await.ok();
    assert_eq!(nothing, None, "a failed assignment leaves no handle");
}

#[tokio::test]
async fn ipam_without_strict_affinity_a_node_borrows_from_another_nodes_block() {
    let store = memory();
    pool(&*store, "p", "10.0.0.0/26", 26, |_| {}).await;
    let n1 = Allocator::new(store.clone(), "n1");
    let n2 = Allocator::new(store.clone(), "n2");
    assign(&n1, "a", 1, 0).await.unwrap();
    let borrowed = n2
        .auto_assign(&AssignRequest::new("b", 1, 0))
        .await
        .unwrap();
    assert!(borrowed.addresses[0].borrowed);
    let block: IPAMBlock = store.get("10-0-0-0-26").await.unwrap();
    assert_eq!(
        block.spec.affinity.as_deref(),
        Some("host:n1"),
        "the block stays n1's"
    );
    consistent(&*store).await;
}

#[tokio::test]
async fn ipam_block_limits_and_disabled_auto_allocation_say_which_setting_stops_them() {
    let store = memory();
    pool(&*store, "p", "10.0.0.0/16", 30, |_| {}).await;
    ipam_config(&*store, |c| {
        c.strict_affinity = true;
        c.max_blocks_per_host = 1;
    })
    .await;
    let n1 = Allocator::new(store.clone(), "n1");
    assign(&n1, "a", 4, 0).await.unwrap();
    let error = assign(&n1, "b", 1, 0).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "node n1 holds 1 IPv4 blocks, the IPAMConfig maxBlocksPerHost, all full \
         and strictAffinity forbids borrowing"
    );
    ipam_config(&*store, |c| {
        c.strict_affinity = true;
        c.auto_allocate_blocks = false;
    })
    .await;
    let n2 = Allocator::new(store.clone(), "n2");
    let error = assign(&n2, "c", 1, 0).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "node n2's IPv4 blocks are full and IPAMConfig autoAllocateBlocks is false \
         and strictAffinity forbids borrowing"
    );
}

#[tokio::test]
async fn ipam_no_usable_pool_is_explained_pool_by_pool() {
    let store = memory();
    pool(&*store, "off", "10.0.0.0/24", 26, |p| p.disabled = true).await;
    pool(&*store, "east", "10.1.0.0/24", 26, |p| {
        p.node_selector = "zone == 'east'".parse().unwrap()
    })
    .await;
    let n1 = Allocator::new(store.clone(), "n1");
    let error = assign(&n1, "a", 1, 0).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "no IPv4 pool can give node n1 addresses for workloads: east (10.1.0.0/24) is \
         nodeSelector zone == \"east\" does not select the node; off (10.0.0.0/24) is disabled"
    );
    let error = assign(&n1, "b", 0, 1).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "no IPv6 pool can give node n1 addresses for workloads: there is no IPv6 pool"
    );
}

#[tokio::test]
async fn ipam_a_disabled_pool_gives_nothing_new_even_to_a_warm_allocator() {
    let store = memory();
    pool(&*store, "a", "10.0.0.0/24", 26, |_| {}).await;
    let n1 = Allocator::new(store.clone(), "n1");
    let first = assign(&n1, "h1", 1, 0).await.unwrap();
    assert!(first[0].to_string().starts_with("10.0.0."));
    edit::<IPPool>(&*store, "a", |p| p.spec.disabled = true).await;
    pool(&*store, "b", "10.1.0.0/24", 26, |_| {}).await;
    // n1's cache still has pool a enabled and a block with free addresses in it.
    let second = assign(&n1, "h2", 1, 0).await.unwrap();
    assert!(second[0].to_string().starts_with("10.1.0."), "{second:?}");
    let block: IPAMBlock = store
        .get(&api::resources::cidr_name(&Cidr(
            ipam::blocks::block_of(first[0], 26).unwrap(),
        )))
        .await
        .unwrap();
    assert_eq!(
        ipam::table::AllocationTable::allocations(&block.spec).len(),
        1,
        "the address taken on the stale view went back"
    );
    consistent(&*store).await;
}

#[tokio::test]
async fn ipam_release_by_handle_is_idempotent_and_unknown_handles_release_nothing() {
    let store = memory();
    pool(&*store, "p", "10.0.0.0/24", 26, |_| {}).await;
    let n1 = Allocator::new(store.clone(), "n1");
    assign(&n1, "h1", 2, 0).await.unwrap();
    assert_eq!(n1.release_handle("h1").await.unwrap().len(), 2);
    assert_eq!(n1.release_handle("h1").await.unwrap(), []);
    assert_eq!(n1.release_handle("never-seen").await.unwrap(), []);
    let gone: Result<IPAMHandle, _> = store.get("h1").await;
    assert!(gone.is_err());
    consistent(&*store).await;
}

#[tokio::test]
async fn ipam_a_stale_release_by_sequence_number_cannot_free_a_reused_address() {
    let store = memory();
    pool(&*store, "p", "10.0.0.0/31", 31, |_| {}).await;
    let n1 = Allocator::new(store.clone(), "n1");
    let old = n1
        .auto_assign(&AssignRequest::new("old", 1, 0))
        .await
        .unwrap()
        .addresses[0]
        .clone();
    n1.release_handle("old").await.unwrap();
    // Fill the block until the same address comes back under a new handle.
    let mut reused = None;
    for i in 0..2 {
        let a = n1
            .auto_assign(&AssignRequest::new(format!("new{i}"), 1, 0))
            .await
            .unwrap();
        if a.addresses[0].ip == old.ip {
            reused = Some(a.addresses[0].clone());
        }
    }
    let reused = reused.expect("the address is handed out again");
    assert_ne!(reused.sequence, old.sequence);
    let stale = Expect {
        handle: None,
        sequence: old.sequence,
    };
    let error = release_ip(&*store, old.ip, &stale).await.unwrap_err();
    assert!(matches!(error, IpamError::NotAllocated { .. }));
    assert!(
        error.to_string().contains("freed and reallocated since"),
        "{error}"
    );
    let current = Expect {
        handle: None,
        sequence: reused.sequence,
    };
    let released = release_ip(&*store, old.ip, &current).await.unwrap();
    assert_eq!(released.sequence, reused.sequence);
    consistent(&*store).await;
}

#[tokio::test]
async fn ipam_explicit_assignment_takes_the_address_asked_for_or_says_why_not() {
    let store = memory();
    pool(&*store, "p", "10.0.0.0/24", 26, |_| {}).await;
    pool(&*store, "off", "10.9.0.0/24", 26, |p| p.disabled = true).await;
    let n1 = Allocator::new(store.clone(), "n1");
    let a = n1
        .assign_ip(ip("10.0.0.77"), "static", Default::default())
        .await
        .unwrap();
    assert_eq!((a.ip, a.borrowed), (ip("10.0.0.77"), false));
    let block: IPAMBlock = store.get("10-0-0-64-26").await.unwrap();
    assert_eq!(
        block.spec.affinity.as_deref(),
        Some("host:n1"),
        "claimed for the node"
    );
    let error = n1
        .assign_ip(ip("10.0.0.77"), "other", Default::default())
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "10.0.0.77 is already allocated to handle static"
    );
    let error = n1
        .assign_ip(ip("192.168.1.1"), "x", Default::default())
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "192.168.1.1 is in no IP pool: create a pool holding it or request another address"
    );
    let error = n1
        .assign_ip(ip("10.9.0.5"), "x", Default::default())
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "10.9.0.5 is in pool off, which is disabled: enable the pool or request another address"
    );
    consistent(&*store).await;
}

#[tokio::test]
async fn ipam_a_repeated_request_for_a_reused_handle_gets_the_same_addresses() {
    let store = memory();
    pool(&*store, "p", "10.0.0.0/24", 26, |_| {}).await;
    let n1 = Allocator::new(store.clone(), "n1");
    let mut request = AssignRequest::new("k8s.c1", 1, 0);
    request.existing_handle = ExistingHandle::Reuse;
    let first = n1.auto_assign(&request).await.unwrap();
    let again = n1.auto_assign(&request).await.unwrap();
    assert!(again.reused);
    assert_eq!(ips(&again), ips(&first));
    let report = check(&*store, false).await.unwrap();
    assert_eq!(report.allocations, 1, "nothing new was allocated");
    assert!(report.is_consistent(), "{:#?}", report.problems);
}

#[tokio::test]
async fn ipam_a_nodes_empty_blocks_are_released_and_others_kept() {
    let store = memory();
    pool(&*store, "p", "10.0.0.0/16", 30, |_| {}).await;
    let n1 = Allocator::new(store.clone(), "n1");
    assign(&n1, "a", 4, 0).await.unwrap();
    assign(&n1, "b", 1, 0).await.unwrap();
    n1.release_handle("b").await.unwrap();
    let released = n1.release_empty_blocks().await.unwrap();
    assert_eq!(released.len(), 1);
    let affinities: Vec<BlockAffinity> = ipam::cas::list_all(&*store).await.unwrap();
    assert_eq!(affinities.len(), 1);
    consistent(&*store).await;
}

#[tokio::test]
async fn ipam_two_nodes_racing_for_the_last_block_never_both_own_it() {
    for _ in 0..20 {
        let store = memory();
        pool(&*store, "p", "10.0.0.0/26", 26, |_| {}).await;
        ipam_config(&*store, |c| c.strict_affinity = true).await;
        let n1 = Arc::new(Allocator::new(store.clone(), "n1"));
        let n2 = Arc::new(Allocator::new(store.clone(), "n2"));
        let (a, b) = tokio::join!(
            tokio::spawn({
                let n1 = n1.clone();
                async move { assign(&n1, "a", 1, 0).await }
            }),
            tokio::spawn({
                let n2 = n2.clone();
                async move { assign(&n2, "b", 1, 0).await }
            })
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(a.is_ok() != b.is_ok(), "exactly one wins: {a:?} {b:?}");
        consistent(&*store).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipam_a_watching_allocator_stops_using_a_disabled_pool_once_its_watch_says_so() {
    let store = memory();
    pool(&*store, "a", "10.0.0.0/24", 26, |_| {}).await;
    let n1 = Allocator::watching(store.clone(), "n1");
    let first = assign(&n1, "h1", 1, 0).await.unwrap();
    assert!(first[0].to_string().starts_with("10.0.0."));
    edit::<IPPool>(&*store, "a", |p| p.spec.disabled = true).await;
    pool(&*store, "b", "10.1.0.0/24", 26, |_| {}).await;
    tokio::task::block_in_place(|| {
        harness::wait_until(
            std::time::Duration::from_secs(10),
            "the watch to see both changes",
            || {
                let settings = n1.settings_watch().unwrap().current();
                Ok(settings
                    .is_some_and(|s| s.pools.len() == 2 && s.pools.iter().any(|p| p.spec.disabled)))
            },
        )
    })
    .unwrap();
    let second = assign(&n1, "h2", 1, 0).await.unwrap();
    assert!(second[0].to_string().starts_with("10.1.0."), "{second:?}");
    consistent(&*store).await;
}
