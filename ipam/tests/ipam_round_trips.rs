//! How many datastore round trips allocation costs: counted, not timed. A round is
//! a set of requests issued together; the caller waits for the slowest of them.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use api::datastore::{Backend, MemoryStore};
use ipam::{Allocator, AssignRequest};
use support::{Rounds, pool};

fn calls(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// A memory datastore with a pool, its calls and round trips counted.
async fn counted() -> (Arc<Rounds<MemoryStore>>, Arc<dyn Backend>) {
    let rounds = Arc::new(Rounds::new(MemoryStore::new()));
    let store: Arc<dyn Backend> = rounds.clone();
    pool(&*store, "p", "10.0.0.0/24", 26, |_| {}).await;
    (rounds, store)
}

/// One assignment to `handle` on `allocator`, uncounted.
async fn warm(rounds: &Rounds<MemoryStore>, allocator: &Allocator, handle: &str) {
    allocator
        .auto_assign(&AssignRequest::new(handle, 1, 0))
        .await
        .unwrap();
    rounds.take();
}

/// The settings read by a cold allocator.
const SETTINGS: [(&str, usize); 4] = [
    ("get ipamconfigs", 1),
    ("get nodes", 1),
    ("list ippools", 1),
    ("list ipreservations", 1),
];

/// An assignment's block compare-and-swap and handle create: one transaction.
const BLOCK_AND_HANDLE: &str = "write_all ipamblocks+ipamhandles";

/// What a warm allocator re-reads alongside its block write (the IPAMConfig and
/// node labels are trusted for a while).
const POOLS: [(&str, usize); 2] = [("list ippools", 1), ("list ipreservations", 1)];

#[tokio::test]
async fn ipam_a_warm_assignment_is_one_round_trip_with_one_block_write_and_no_block_read() {
    let (rounds, store) = counted().await;
    let n1 = Allocator::new(store.clone(), "n1");
    warm(&rounds, &n1, "first").await;

    n1.auto_assign(&AssignRequest::new("second", 1, 0))
        .await
        .unwrap();
    let (count, made) = rounds.take();
    let mut expected = calls(&[(BLOCK_AND_HANDLE, 1)]);
    expected.extend(calls(&POOLS));
    assert_eq!(
        made, expected,
        "no block read: the cached copy is written at its revision, with the handle"
    );
    assert_eq!(
        count, 1,
        "block write, handle create and pool reads go at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipam_a_warm_allocator_that_watches_its_settings_writes_block_and_handle_in_one_transaction()
 {
    let (rounds, store) = counted().await;
    let n1 = Allocator::watching(store.clone(), "n1");
    tokio::task::block_in_place(|| {
        harness::wait_until(
            std::time::Duration::from_secs(10),
            "the settings watches",
            || Ok(n1.settings_watch().unwrap().current().is_some()),
        )
    })
    .unwrap();
    warm(&rounds, &n1, "first").await;

    n1.auto_assign(&AssignRequest::new("second", 1, 0))
        .await
        .unwrap();
    let (count, made) = rounds.take();
    assert_eq!(made, calls(&[(BLOCK_AND_HANDLE, 1)]));
    assert_eq!(count, 1);
}

#[tokio::test]
async fn ipam_a_stale_cached_block_costs_a_reread_and_a_second_write() {
    let (rounds, store) = counted().await;
    let cached = Allocator::new(store.clone(), "n1");
    cached
        .auto_assign(&AssignRequest::new("a", 1, 0))
        .await
        .unwrap();
    // Another process of the node writes the block behind the warm allocator's back.
    let other = Allocator::new(store.clone(), "n1");
    warm(&rounds, &other, "b").await;

    cached
        .auto_assign(&AssignRequest::new("c", 1, 0))
        .await
        .unwrap();
    let (count, made) = rounds.take();
    assert_eq!(made[BLOCK_AND_HANDLE], 1, "{made:?}");
    assert_eq!(made["get ipamblocks"], 1, "{made:?}");
    assert_eq!(made["update ipamblocks"], 1, "{made:?}");
    assert_eq!(made["create ipamhandles"], 1, "{made:?}");
    assert_eq!(
        count, 3,
        "transaction (conflict), read, write beside the handle's create"
    );
}

#[tokio::test]
async fn ipam_a_cold_allocator_reads_settings_affinities_and_its_block_before_writing() {
    let (rounds, store) = counted().await;
    Allocator::new(store.clone(), "n1")
        .auto_assign(&AssignRequest::new("a", 1, 0))
        .await
        .unwrap();
    rounds.take();

    let restarted = Allocator::new(store.clone(), "n1");
    restarted
        .auto_assign(&AssignRequest::new("b", 1, 0))
        .await
        .unwrap();
    let (count, made) = rounds.take();
    let mut expected = calls(&[
        ("list blockaffinities", 1),
        ("get ipamblocks", 1),
        (BLOCK_AND_HANDLE, 1),
    ]);
    expected.extend(calls(&SETTINGS));
    assert_eq!(made, expected);
    assert_eq!(
        count, 3,
        "settings and affinities; the block; the block and the handle in one transaction"
    );
}

#[tokio::test]
async fn ipam_a_warm_release_is_two_round_trips() {
    let (rounds, store) = counted().await;
    let n1 = Allocator::new(store.clone(), "n1");
    warm(&rounds, &n1, "a").await;

    n1.release_handle("a").await.unwrap();
    let (count, made) = rounds.take();
    let expected = calls(&[
        ("get ipamhandles", 1),
        ("update ipamblocks", 1),
        ("delete ipamhandles", 1),
    ]);
    assert_eq!(made, expected);
    assert_eq!(
        count, 2,
        "handle read with the block write; the handle delete"
    );
}

/// tabby-ipam runs as one process per CNI call and saves the allocator's view as
/// JSON between them (`cni::ipam_plugin::state_file`); this is that hand-over.
#[tokio::test]
async fn ipam_a_cni_add_in_a_new_process_is_one_round_trip_thanks_to_the_saved_view() {
    let (rounds, store) = counted().await;
    let first = Allocator::new(store.clone(), "n1");
    warm(&rounds, &first, "net.c1").await;
    let saved = serde_json::to_vec(&first.state().await).unwrap();
    drop(first);

    let next = Allocator::with_state(store.clone(), serde_json::from_slice(&saved).unwrap());
    let mut request = AssignRequest::new("net.c2", 1, 0);
    request.existing_handle = ipam::ExistingHandle::Reuse;
    next.auto_assign(&request).await.unwrap();
    let (count, made) = rounds.take();
    assert_eq!(count, 1, "{made:?}");
    assert_eq!(made.get("get ipamblocks"), None);
}
