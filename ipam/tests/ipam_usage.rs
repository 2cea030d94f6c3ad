//! Pool usage as the controller's metrics show it, over the memory datastore
//! with addresses assigned by the allocator.

mod support;

use ipam::check::Snapshot;
use ipam::usage::{self, NodeUsage};
use ipam::{Allocator, AssignRequest};
use support::{memory, pool};

#[tokio::test]
async fn observability_usage_counts_each_nodes_blocks_and_allocations_per_pool() {
    let store = memory();
    pool(&*store, "small", "10.0.0.0/24", 26, |_| {}).await;
    pool(&*store, "unused", "10.9.0.0/16", 26, |_| {}).await;
    for (node, handle, n) in [("n1", "a", 3), ("n1", "b", 2), ("n2", "c", 1)] {
        Allocator::new(store.clone(), node)
            .auto_assign(&AssignRequest::new(handle, n, 0))
            .await
            .unwrap();
    }
    let snapshot = Snapshot::read(&*store).await.unwrap();
    let pools = usage::of(&snapshot);
    let small = pools.iter().find(|p| p.pool == "small").unwrap();
    assert_eq!(small.size, 256);
    assert_eq!(
        small.nodes.get("n1"),
        Some(&NodeUsage {
            blocks: 1,
            allocations: 5
        })
    );
    assert_eq!(
        small.nodes.get("n2"),
        Some(&NodeUsage {
            blocks: 1,
            allocations: 1
        })
    );
    assert_eq!(small.utilization(), 6.0 / 256.0);
    let unused = pools.iter().find(|p| p.pool == "unused").unwrap();
    assert_eq!((unused.size, unused.allocations()), (65536, 0));
    assert!(unused.nodes.is_empty());
}
