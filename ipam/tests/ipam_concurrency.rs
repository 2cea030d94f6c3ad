//! Many allocators at once on one memory datastore that injects write conflicts.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use api::datastore::{Backend, MemoryStore};
use ipam::Allocator;
use ipam::check::check;
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
