//! What the kubernetes backend does beyond the shared contract, against the API
//! double: request counts of the IPAM hot path, selectors sent to the server where
//! they can be, expired continue tokens, and watches that resume from bookmarks when
//! the server ends them.

use std::collections::BTreeMap;
use std::time::Duration;

use api::datastore::{Datastore, Error, ListOptions, WatchEvent};
use api::resources::{
    IPAMBlock, IPAMBlockSpec, IPAMHandle, IPPool, IPPoolSpec, Object, Resource, cidr_name,
};
use harness::conformance::KubeFixture;
use harness::conformance::cases::{handle, next_event, revision_now};
use harness::kube_api::KubeApiOptions;

/// How long the bookmark case waits for a reopened watch.
const REOPEN_TIMEOUT: Duration = Duration::from_secs(20);

fn pool(name: &str, cidr: &str) -> IPPool {
    IPPool::new(name, IPPoolSpec::new(cidr.parse().unwrap()))
}

/// Requests the double saw since `before`.
fn requests_since(fixture: &KubeFixture, before: usize) -> Vec<String> {
    fixture.api().requests()[before..].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_an_allocation_is_two_requests_read_the_block_and_swap_it() {
    let fixture = KubeFixture::start("kubernetes_an_allocation_is_two_requests").await;
    let store = fixture.kube_store();
    let cidr = "10.0.0.0/26".parse().unwrap();
    let spec = IPAMBlockSpec {
        cidr,
        affinity: Some("host:worker-1".into()),
        allocations: Vec::new(),
        unallocated: Vec::new(),
        attributes: Vec::new(),
        deleted: false,
        sequence_number: 0,
        sequence_number_for_allocation: BTreeMap::new(),
    };
    store
        .create(&Object::new(cidr_name(&cidr), spec))
        .await
        .unwrap();

    let before = fixture.api().requests().len();
    let mut block: IPAMBlock = store.get(&cidr_name(&cidr)).await.unwrap();
    let ordinal = block.spec.unallocated.remove(0);
    block.spec.allocations[ordinal] = Some(0);
    block
        .spec
        .sequence_number_for_allocation
        .insert(ordinal.to_string(), block.spec.sequence_number);
    block.spec.sequence_number += 1;
    block
        .spec
        .attributes
        .push(api::resources::AllocationAttribute {
            handle_id: Some("default.web-0".into()),
            secondary: BTreeMap::new(),
        });
    store.update(&block).await.unwrap();
    let requests = requests_since(&fixture, before);
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert!(requests[0].starts_with("GET ") && requests[1].starts_with("PUT "));

    // A kind with immutable fields reads first to check them: one more request.
    let stored = store.create(&pool("pool", "10.1.0.0/16")).await.unwrap();
    let mut changed = stored.clone();
    changed.spec.nat_outgoing = true;
    let before = fixture.api().requests().len();
    store.update(&changed).await.unwrap();
    assert_eq!(requests_since(&fixture, before).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_selectors_go_to_the_server_when_label_selectors_can_say_them() {
    let fixture = KubeFixture::start("kubernetes_selectors_go_to_the_server").await;
    let store = fixture.kube_store();
    for (name, zone) in [("a", "east"), ("b", "west"), ("c", "north")] {
        let mut h = handle(name);
        h.metadata.labels.insert("zone".into(), zone.into());
        store.create(&h).await.unwrap();
    }
    let list = |text: &str| {
        let options = ListOptions {
            selector: Some(text.parse().unwrap()),
            ..Default::default()
        };
        async move {
            let list = store.list::<IPAMHandle>(&options).await.unwrap();
            list.items
                .iter()
                .map(|h| h.name().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let before = fixture.api().requests().len();
    assert_eq!(list(r#"zone in {"east", "west"}"#).await, ["a", "b"]);
    let sent = requests_since(&fixture, before);
    assert!(sent[0].contains("labelSelector=zone"), "{sent:?}");

    let before = fixture.api().requests().len();
    assert_eq!(
        list(r#"zone == "east" || zone == "north""#).await,
        ["a", "c"]
    );
    let sent = requests_since(&fixture, before);
    assert!(!sent[0].contains("labelSelector"), "{sent:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_a_continue_token_older_than_the_history_is_expired() {
    let fixture = KubeFixture::start("kubernetes_a_continue_token_older").await;
    let store = fixture.kube_store();
    for i in 0..4 {
        store.create(&handle(&format!("h{i}"))).await.unwrap();
    }
    let options = ListOptions {
        limit: Some(2),
        ..Default::default()
    };
    let first = store.list::<IPAMHandle>(&options).await.unwrap();
    store.create(&handle("h9")).await.unwrap();
    fixture.api().compact(fixture.api().revision());
    let next = ListOptions {
        continue_token: first.continue_token,
        ..options
    };
    let expired = store.list::<IPAMHandle>(&next).await;
    assert!(
        matches!(expired, Err(Error::Expired(r)) if r == first.revision),
        "{expired:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_a_watch_survives_the_server_ending_it_and_misses_nothing() {
    let options = KubeApiOptions {
        max_watch: Duration::from_millis(300),
        ..KubeApiOptions::default()
    };
    let fixture = KubeFixture::with_options("kubernetes_a_watch_survives", options).await;
    let store = fixture.kube_store();
    let start = revision_now(store).await;
    let mut watch = store.watch::<IPAMHandle>(start).await.unwrap();
    let watches = || {
        fixture
            .api()
            .requests()
            .iter()
            .filter(|r| r.contains("watch=true"))
            .count()
    };
    // Write one object per event received until the server has ended the watch
    // several times; every write must arrive once, in order.
    let mut written = 0;
    while watches() < 4 {
        let created = store
            .create(&handle(&format!("h{written:04}")))
            .await
            .unwrap();
        assert_eq!(next_event(&mut watch).await, WatchEvent::Added(created));
        written += 1;
        assert!(written < 10_000, "the server never ended the watch");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_a_reopened_watch_resumes_from_its_last_bookmark() {
    let options = KubeApiOptions {
        bookmark_interval: Duration::from_millis(10),
        ..KubeApiOptions::default()
    };
    let fixture = KubeFixture::with_options("kubernetes_a_reopened_watch_resumes", options).await;
    let store = fixture.kube_store();
    let start = revision_now(store).await;
    let mut watch = store.watch::<IPAMHandle>(start).await.unwrap();
    // Other kinds move the revision on; this watch sees no event, only bookmarks.
    for i in 0..5 {
        store
            .create(&pool(&format!("p{i}"), &format!("10.{i}.0.0/16")))
            .await
            .unwrap();
    }
    let moved_to = fixture.api().revision();
    // End the watch until the backend reopens it from a bookmark at least that new.
    harness::wait_until(REOPEN_TIMEOUT, "a watch reopened from a bookmark", || {
        fixture.api().end_watches();
        Ok(fixture.api().requests().iter().any(|r| {
            r.contains("watch=true")
                && r.split("resourceVersion=")
                    .nth(1)
                    .and_then(|rv| rv.split('&').next()?.parse::<u64>().ok())
                    .is_some_and(|rv| rv >= moved_to)
        }))
    })
    .unwrap();
    // History before the bookmark is gone: resuming from `start` would need a resync,
    // resuming from the bookmark does not.
    fixture.api().compact(moved_to);
    let created = store.create(&handle("after")).await.unwrap();
    assert_eq!(next_event(&mut watch).await, WatchEvent::Added(created));
}
