//! Many allocators at once on one memory datastore that injects write conflicts,
//! and allocators meeting each other's claims under way.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use api::datastore::{Backend, Datastore, MemoryStore};
use api::resources::{AffinityState, BlockAffinity, BlockAffinitySpec, Cidr};
use ipam::check::check;
use ipam::{Allocator, AssignRequest, claim};
use support::{Conflicting, HeldHere, churn, pool};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipam_concurrent_allocators_with_injected_conflicts_hand_out_no_address_twice_and_leak_none()
 {
    let conflicting = Arc::new(Conflicting::new(MemoryStore::new(), 3));
    let store: Arc<dyn Backend> = conflicting.clone();
    // 8 blocks of 64 for 12 nodes: four nodes must borrow.
    pool(&*store, "p", "10.0.0.0/23", 26, |_| {}).await;
    let allocators: Vec<Arc<Allocator>> = (0..24)
        .map(|i| Arc::new(Allocator::new(store.clone(), format!("n{}", i % 12))))
        .collect();
    let done = churn(allocators, 200, 16, "mem", Arc::new(HeldHere::default())).await;

    assert_eq!(done.assigned, done.released);
    assert!(done.assigned >= 2000, "thousands of addresses: {done:?}");
    assert!(
        done.borrowed > 0,
        "nodes without a block borrowed: {done:?}"
    );
    assert!(conflicting.injected.load(Ordering::Relaxed) > 100);
    let report = check(&*store, false).await.unwrap();
    assert!(report.is_consistent(), "{:#?}", report.problems);
    assert_eq!(
        (report.allocations, report.handles),
        (0, 0),
        "nothing leaked"
    );
    assert!(report.blocks <= 8);
}

/// The flake of `ipam_etcd_separate_allocator_processes_…`: five nodes start at
/// once on four blocks. A node that finds every block held by another node's
/// claim still under way (its affinity pending, its IPAMBlock not yet written)
/// has nothing free and nothing to borrow, yet the pool is not full: it waits
/// for the claim to end and borrows, instead of reporting the pool exhausted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_a_node_that_meets_only_claims_under_way_waits_and_borrows_instead_of_reporting_the_pool_full()
 {
    let store: Arc<dyn Backend> = Arc::new(MemoryStore::new());
    // One block in the pool; n2 is claiming it: its pending affinity is written.
    pool(&*store, "p", "10.0.0.0/26", 26, |_| {}).await;
    let cidr: Cidr = "10.0.0.0/26".parse().unwrap();
    let pending = BlockAffinitySpec {
        node: "n2".into(),
        cidr,
        state: AffinityState::Pending,
    };
    store
        .create(&BlockAffinity::new(
            claim::affinity_name("n2", &cidr),
            pending,
        ))
        .await
        .unwrap();
    let n1 = Allocator::new(store.clone(), "n1");
    let assigning = tokio::spawn(async move {
        let mut request = AssignRequest::new("net.pod-on-n1", 1, 0);
        request.attrs = BTreeMap::from([("node".to_owned(), "n1".to_owned())]);
        n1.auto_assign(&request).await
    });
    // n2's claim goes on (as a slow process's would) and writes the block.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let block = claim::claim_block(&*store, "n2", cidr).await.unwrap();
    assert!(block.is_some(), "n2 claims the block");
    let assigned = assigning.await.unwrap().unwrap();
    let address = &assigned.addresses[0];
    assert!(address.borrowed, "{address:?}");
    assert!(cidr.0.contains(&address.ip), "{address:?}");
}
