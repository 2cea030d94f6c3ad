//! The cases: each takes a fresh fixture and panics with what it saw when the backend
//! breaks the contract.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use api::datastore::{
    Backend, Datastore, Error, Kind, List, ListOptions, WatchEvent, WatchStream, Workload,
};
use api::resources::{
    IPAMHandle, IPAMHandleSpec, IPPool, IPPoolSpec, Node, NodeSpec, Object, Resource, Revision,
};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde_json::json;

use super::Fixture;

mod hardening;
mod transactions;
pub use hardening::*;
pub use transactions::*;

/// How long a watch may take to deliver the next event.
const EVENT_TIMEOUT: Duration = Duration::from_secs(20);
/// Objects in the pagination case, and the page size it reads them with.
const MANY: usize = 3000;
const PAGE: usize = 250;
/// Writes in flight at once when filling the store.
const IN_FLIGHT: usize = 32;

/// An empty handle: the kind most cases write.
pub fn handle(name: &str) -> IPAMHandle {
    Object::new(
        name,
        IPAMHandleSpec {
            handle_id: name.into(),
            block: BTreeMap::new(),
            deleted: false,
        },
    )
}

/// A handle holding `count` addresses: the value concurrent writers fight over.
pub fn holding(mut handle: IPAMHandle, count: u32) -> IPAMHandle {
    handle.spec.block = BTreeMap::from([("10.0.0.0/26".to_owned(), count)]);
    handle
}

fn labelled(name: &str, labels: &[(&str, &str)]) -> IPAMHandle {
    let mut handle = handle(name);
    handle.metadata.labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    handle
}

fn store(fixture: &dyn Fixture) -> &dyn Backend {
    fixture.store()
}

/// Creates `names` concurrently; returns them as stored.
async fn create_all(store: &dyn Backend, objects: Vec<IPAMHandle>) -> Vec<IPAMHandle> {
    let mut created = Vec::new();
    let mut pending = objects.into_iter();
    let mut running = FuturesUnordered::new();
    loop {
        while running.len() < IN_FLIGHT {
            let Some(object) = pending.next() else { break };
            running.push(async move { store.create(&object).await });
        }
        match running.next().await {
            Some(result) => created.push(result.expect("create")),
            None => return created,
        }
    }
}

/// Every page of a list, in order.
async fn all_pages(store: &dyn Backend, mut options: ListOptions) -> Vec<List<IPAMHandle>> {
    let mut pages = Vec::new();
    loop {
        let page: List<IPAMHandle> = store.list(&options).await.expect("list");
        let token = page.continue_token.clone();
        pages.push(page);
        match token {
            Some(token) => options.continue_token = Some(token),
            None => return pages,
        }
    }
}

/// The store's revision now: where a watch of what happens next starts.
pub async fn revision_now(store: &dyn Backend) -> Revision {
    store
        .list::<IPAMHandle>(&ListOptions {
            limit: Some(1),
            ..Default::default()
        })
        .await
        .expect("list")
        .revision
}

fn names<R: Resource>(items: &[R]) -> Vec<String> {
    items.iter().map(|r| r.name().to_owned()).collect()
}

/// The next event, failing the test when none comes in time.
pub async fn next_event<R: Resource>(stream: &mut WatchStream<R>) -> WatchEvent<R> {
    match tokio::time::timeout(EVENT_TIMEOUT, stream.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(e))) => panic!("the watch failed: {e}"),
        Ok(None) => panic!("the watch ended"),
        Err(_) => panic!("no watch event within {EVENT_TIMEOUT:?}"),
    }
}

async fn next_events<R: Resource>(stream: &mut WatchStream<R>, n: usize) -> Vec<WatchEvent<R>> {
    let mut events = Vec::with_capacity(n);
    for _ in 0..n {
        events.push(next_event(stream).await);
    }
    events
}

/// A change as a watcher should see it: kind of change, name, revision, spec.
#[derive(Debug, Clone, PartialEq)]
enum Change {
    Added(IPAMHandle),
    Modified(IPAMHandle),
    /// The last state, and the deletion's revision.
    Deleted(IPAMHandle, Revision),
}

fn change_of(event: WatchEvent<IPAMHandle>) -> Change {
    match event {
        WatchEvent::Added(h) => Change::Added(h),
        WatchEvent::Modified(h) => Change::Modified(h),
        WatchEvent::Deleted(mut h) => {
            let revision = h.revision().expect("a revision");
            h.metadata.resource_version = None;
            Change::Deleted(h, revision)
        }
        WatchEvent::Resync { .. } => panic!("unexpected resync: {event:?}"),
    }
}

/// Makes `writes` changes to a few handles; returns them as a watcher must see them.
async fn make_changes(store: &dyn Backend, prefix: &str, writes: usize) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut live: Vec<IPAMHandle> = Vec::new();
    for i in 0..writes {
        let change = match i % 5 {
            0 | 3 => {
                let created = store
                    .create(&handle(&format!("{prefix}-{i}")))
                    .await
                    .unwrap();
                live.push(created.clone());
                Change::Added(created)
            }
            4 if !live.is_empty() => {
                let gone = live.remove(0);
                let last = store
                    .delete::<IPAMHandle>(gone.name(), gone.revision())
                    .await
                    .unwrap();
                assert_eq!(last, gone, "delete returns the last stored state");
                let revision = store
                    .list::<IPAMHandle>(&ListOptions {
                        limit: Some(1),
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .revision;
                let mut last = last;
                last.metadata.resource_version = None;
                Change::Deleted(last, revision)
            }
            _ => {
                let Some(target) = live.last_mut() else {
                    continue;
                };
                let next = holding(target.clone(), i as u32 + 1);
                *target = store.update(&next).await.unwrap();
                Change::Modified(target.clone())
            }
        };
        changes.push(change);
    }
    changes
}

/// Deleted events carry the deletion's revision, which the writer cannot see: compare
/// it only for order, and the rest exactly.
fn assert_same_changes(seen: &[Change], made: &[Change]) {
    assert_eq!(seen.len(), made.len(), "seen {seen:#?}\nmade {made:#?}");
    let revision = |c: &Change| match c {
        Change::Added(h) | Change::Modified(h) => h.revision().unwrap(),
        Change::Deleted(_, r) => *r,
    };
    for (i, (seen, made)) in seen.iter().zip(made).enumerate() {
        match (seen, made) {
            (Change::Deleted(a, seen_revision), Change::Deleted(b, listed_after)) => {
                assert_eq!(a, b, "change {i}");
                assert!(seen_revision <= listed_after, "change {i}: {seen_revision}");
            }
            _ => assert_eq!(seen, made, "change {i}"),
        }
    }
    for pair in seen.windows(2) {
        assert!(
            revision(&pair[0]) < revision(&pair[1]),
            "out of order: {pair:#?}"
        );
    }
}

pub async fn create_of_an_existing_name_conflicts(fixture: &dyn Fixture) {
    let store = store(fixture);
    let first = store.create(&labelled("h1", &[("v", "1")])).await.unwrap();
    let again = store.create(&labelled("h1", &[("v", "2")])).await;
    assert!(
        matches!(&again, Err(Error::AlreadyExists { kind: "IPAMHandle", name }) if name == "h1"),
        "{again:?}"
    );
    assert_eq!(store.get::<IPAMHandle>("h1").await.unwrap(), first);
}

pub async fn cas_conflict_on_a_stale_revision(fixture: &dyn Fixture) {
    let store = store(fixture);
    let read = store.create(&handle("h1")).await.unwrap();
    let won = store.update(&holding(read.clone(), 1)).await.unwrap();
    assert!(won.revision() > read.revision());
    let stale = store.update(&holding(read.clone(), 2)).await;
    match &stale {
        Err(Error::Conflict {
            expected, actual, ..
        }) => {
            assert_eq!(Some(*expected), read.revision());
            assert!(
                actual.is_none_or(|a| Some(a) == won.revision()),
                "{stale:?}"
            );
        }
        other => panic!("a stale update gave {other:?}"),
    }
    assert_eq!(store.get::<IPAMHandle>("h1").await.unwrap(), won);
    let without = store.update(&handle("h1")).await;
    assert!(
        matches!(without, Err(Error::MissingRevision { .. })),
        "{without:?}"
    );
}

pub async fn delete_with_a_stale_revision_conflicts(fixture: &dyn Fixture) {
    let store = store(fixture);
    let read = store.create(&handle("h1")).await.unwrap();
    let current = store.update(&holding(read.clone(), 1)).await.unwrap();
    let stale = store.delete::<IPAMHandle>("h1", read.revision()).await;
    assert!(matches!(stale, Err(Error::Conflict { .. })), "{stale:?}");
    assert_eq!(store.get::<IPAMHandle>("h1").await.unwrap(), current);
    let last = store
        .delete::<IPAMHandle>("h1", current.revision())
        .await
        .unwrap();
    assert_eq!(last, current, "delete returns the last stored state");
    let gone = store.get::<IPAMHandle>("h1").await;
    assert!(matches!(gone, Err(Error::NotFound { .. })), "{gone:?}");

    // Without an expected revision, delete removes whatever is stored.
    store.create(&handle("h2")).await.unwrap();
    store.delete::<IPAMHandle>("h2", None).await.unwrap();
    let twice = store.delete::<IPAMHandle>("h2", None).await;
    assert!(matches!(twice, Err(Error::NotFound { .. })), "{twice:?}");
}

pub async fn get_of_a_missing_resource_is_not_found(fixture: &dyn Fixture) {
    let store = store(fixture);
    let missing = store.get::<IPAMHandle>("nothing").await;
    assert!(
        matches!(&missing, Err(Error::NotFound { kind: "IPAMHandle", name }) if name == "nothing"),
        "{missing:?}"
    );
    let mut ghost = handle("nothing");
    ghost.metadata.resource_version = Some(Revision(1));
    let update = store.update(&ghost).await;
    assert!(
        matches!(update, Err(Error::NotFound { .. } | Error::Conflict { .. })),
        "{update:?}"
    );
    assert!(store.get::<IPAMHandle>("nothing").await.is_err());
    let delete = store
        .delete::<IPAMHandle>("nothing", Some(Revision(1)))
        .await;
    assert!(
        matches!(delete, Err(Error::NotFound { .. } | Error::Conflict { .. })),
        "{delete:?}"
    );
    // The same name of another kind is another object.
    store.create(&handle("shared-name")).await.unwrap();
    let pool = store.get::<IPPool>("shared-name").await;
    assert!(matches!(pool, Err(Error::NotFound { .. })), "{pool:?}");
}

pub async fn list_by_selector_returns_exactly_the_matching_objects(fixture: &dyn Fixture) {
    let store = store(fixture);
    let zones = ["a", "b", "c"];
    let objects: Vec<IPAMHandle> = (0..30)
        .map(|i| {
            let zone = zones[i % 3];
            let name = format!("h{i:02}");
            match i % 4 {
                0 => labelled(&name, &[("zone", zone), ("rack", &format!("r{}", i % 2))]),
                1 => labelled(&name, &[]),
                _ => labelled(&name, &[("zone", zone)]),
            }
        })
        .collect();
    create_all(store, objects.clone()).await;
    let selectors = [
        "all()",
        r#"zone == "a""#,
        r#"zone != "a""#,
        r#"zone in {"a", "b"}"#,
        r#"zone not in {"a", "b"}"#,
        "has(rack)",
        "!has(rack)",
        r#"zone == "b" && has(rack)"#,
        // Not expressible as a Kubernetes label selector: filtered client-side there.
        r#"zone == "a" || rack == "r1""#,
        r#"!(zone == "c")"#,
    ];
    let all = objects;
    for text in selectors {
        let selector: api::selector::Selector = text.parse().unwrap();
        let expected: Vec<String> = all
            .iter()
            .filter(|h| selector.matches(&h.metadata.labels))
            .map(|h| h.name().to_owned())
            .collect();
        let whole: List<IPAMHandle> = store
            .list(&ListOptions {
                selector: Some(selector.clone()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(names(&whole.items), expected, "selector {text}");
        assert_eq!(whole.continue_token, None, "selector {text}");
        let paged = all_pages(
            store,
            ListOptions {
                selector: Some(selector),
                limit: Some(4),
                continue_token: None,
            },
        )
        .await;
        let joined: Vec<String> = paged.iter().flat_map(|p| names(&p.items)).collect();
        assert_eq!(joined, expected, "selector {text}, pages of 4");
        assert!(paged.iter().all(|p| p.items.len() <= 4), "selector {text}");
    }
}

pub async fn pagination_over_thousands_of_objects_returns_each_once(fixture: &dyn Fixture) {
    let store = store(fixture);
    let objects = (0..MANY).map(|i| handle(&format!("h{i:05}"))).collect();
    create_all(store, objects).await;
    let mut options = ListOptions {
        limit: Some(PAGE),
        ..Default::default()
    };
    let mut listed = Vec::new();
    let mut pages = 0;
    let mut churned = BTreeSet::new();
    loop {
        let page: List<IPAMHandle> = store.list(&options).await.unwrap();
        assert!(page.items.len() <= PAGE);
        listed.extend(names(&page.items));
        pages += 1;
        let Some(token) = page.continue_token else {
            break;
        };
        // Writes while paginating: an object before the cursor and one after it go,
        // a new one comes. Objects that exist throughout must still be listed once.
        if pages <= 3 {
            for name in [format!("h{:05}", pages), format!("h{:05}", MANY - pages)] {
                store.delete::<IPAMHandle>(&name, None).await.unwrap();
                churned.insert(name);
            }
            let new = format!("h{:05}-new", pages * 700);
            store.create(&handle(&new)).await.unwrap();
            churned.insert(new);
        }
        options.continue_token = Some(token);
    }
    assert!(pages >= MANY / PAGE, "only {pages} pages");
    let unique: BTreeSet<&String> = listed.iter().collect();
    assert_eq!(unique.len(), listed.len(), "an object was listed twice");
    assert!(listed.windows(2).all(|w| w[0] < w[1]), "not in name order");
    for i in 0..MANY {
        let name = format!("h{i:05}");
        if !churned.contains(&name) {
            assert!(unique.contains(&name), "{name} was never listed");
        }
    }
}

pub async fn a_bad_continue_token_is_rejected(fixture: &dyn Fixture) {
    let store = store(fixture);
    create_all(store, (0..3).map(|i| handle(&format!("h{i}"))).collect()).await;
    let bad = store
        .list::<IPAMHandle>(&ListOptions {
            limit: Some(1),
            continue_token: Some("not a token".into()),
            ..Default::default()
        })
        .await;
    assert!(
        matches!(bad, Err(Error::BadContinueToken(_))),
        "a made-up token gave {bad:?}"
    );
}

pub async fn watch_delivers_every_change_in_order(fixture: &dyn Fixture) {
    let store = store(fixture);
    store.create(&handle("before")).await.unwrap();
    let start = revision_now(store).await;
    let mut watch = store.watch::<IPAMHandle>(start).await.unwrap();
    // Another kind's writes are not this watch's business.
    let mut other = IPPool::new("pool", IPPoolSpec::new("10.9.0.0/16".parse().unwrap()));
    other = store.create(&other).await.unwrap();
    let made = make_changes(store, "w", 40).await;
    store
        .delete::<IPPool>("pool", other.revision())
        .await
        .unwrap();
    let seen: Vec<Change> = next_events(&mut watch, made.len())
        .await
        .into_iter()
        .map(change_of)
        .collect();
    assert_same_changes(&seen, &made);
}

pub async fn a_watch_resumed_from_a_revision_misses_nothing(fixture: &dyn Fixture) {
    let store = store(fixture);
    let start = revision_now(store).await;
    let first = make_changes(store, "a", 20).await;
    // A watcher that saw the first half stops, then resumes from the last revision
    // it saw, while writes continue.
    let mut watch = store.watch::<IPAMHandle>(start).await.unwrap();
    let half: Vec<Change> = next_events(&mut watch, 10)
        .await
        .into_iter()
        .map(change_of)
        .collect();
    drop(watch);
    let resume_at = match half.last().unwrap() {
        Change::Added(h) | Change::Modified(h) => h.revision().unwrap(),
        Change::Deleted(_, revision) => *revision,
    };
    let more = make_changes(store, "b", 15).await;
    let mut resumed = store.watch::<IPAMHandle>(resume_at).await.unwrap();
    let expected: Vec<Change> = first[10..].iter().chain(&more).cloned().collect();
    let rest: Vec<Change> = next_events(&mut resumed, expected.len())
        .await
        .into_iter()
        .map(change_of)
        .collect();
    assert_same_changes(&half, &first[..10]);
    assert_same_changes(&rest, &expected);
}

pub async fn a_compacted_revision_yields_an_explicit_resync(fixture: &dyn Fixture) {
    let store = store(fixture);
    let start = revision_now(store).await;
    let gone = store.create(&handle("gone")).await.unwrap();
    let kept = store.create(&handle("kept")).await.unwrap();
    store
        .delete::<IPAMHandle>("gone", gone.revision())
        .await
        .unwrap();
    let kept = store.update(&holding(kept, 7)).await.unwrap();
    let now = revision_now(store).await;
    fixture.compact(now).await;

    let mut watch = store.watch::<IPAMHandle>(start).await.unwrap();
    match next_event(&mut watch).await {
        WatchEvent::Resync { objects, revision } => {
            assert_eq!(objects, vec![kept.clone()], "the state after compaction");
            assert!(revision >= kept.revision().unwrap(), "resync at {revision}");
        }
        other => panic!("a compacted start gave {other:?}, not a resync"),
    }
    // The watch follows on after the resync.
    let later = store.create(&handle("later")).await.unwrap();
    assert_eq!(next_event(&mut watch).await, WatchEvent::Added(later));
    // A watch from after the compaction replays normally.
    let mut fresh = store.watch::<IPAMHandle>(now).await.unwrap();
    let first = next_event(&mut fresh).await;
    assert!(
        matches!(&first, WatchEvent::Added(h) if h.name() == "later"),
        "{first:?}"
    );
}

pub async fn concurrent_writers_on_one_object_have_one_winner_per_round(fixture: &dyn Fixture) {
    const ROUNDS: u32 = 20;
    const WRITERS: u32 = 8;
    let store = fixture.store();
    let mut current = store
        .create(&holding(handle("contended"), 1))
        .await
        .unwrap();
    for round in 0..ROUNDS {
        // Every writer read the same revision; each tries to write its own value.
        let attempts: FuturesUnordered<_> = (0..WRITERS)
            .map(|writer| {
                let attempt = holding(current.clone(), 100 * (round + 1) + writer);
                async move { (writer, store.update(&attempt).await) }
            })
            .collect();
        let results: Vec<_> = attempts.collect().await;
        let mut winners = Vec::new();
        for (writer, result) in results {
            match result {
                Ok(stored) => winners.push((writer, stored)),
                Err(Error::Conflict { .. }) => {}
                Err(e) => panic!("round {round}: writer {writer} failed: {e}"),
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "round {round}: winners {:?}",
            winners.iter().map(|(w, _)| w).collect::<Vec<_>>()
        );
        let (writer, stored) = winners.pop().unwrap();
        let read = store.get::<IPAMHandle>("contended").await.unwrap();
        assert_eq!(read, stored, "round {round}: the winner's write is stored");
        assert_eq!(read.spec.block["10.0.0.0/26"], 100 * (round + 1) + writer);
        current = read;
    }
}

pub async fn invalid_resources_are_never_stored(fixture: &dyn Fixture) {
    let store = store(fixture);
    let mut bad = IPPool::new("pool", IPPoolSpec::new("10.0.0.0/16".parse().unwrap()));
    bad.spec.block_size = Some(8);
    let error = store.create(&bad).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "IPPool \"pool\": spec.blockSize: 8 is out of range 20..=32 for this family"
    );
    assert!(matches!(
        store.get::<IPPool>("pool").await,
        Err(Error::NotFound { .. })
    ));

    let good = IPPool::new("pool", IPPoolSpec::new("10.0.0.0/16".parse().unwrap()));
    let stored = store.create(&good).await.unwrap();
    let mut moved = stored.clone();
    moved.spec.cidr = "10.1.0.0/16".parse().unwrap();
    let error = store.update(&moved).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "IPPool \"pool\": spec.cidr: \"10.1.0.0/16\" cannot change (was \"10.0.0.0/16\")"
    );
    let mut renamed = handle("h1");
    renamed.spec.handle_id = "h2".into();
    assert!(matches!(
        store.create(&renamed).await,
        Err(Error::Invalid { .. })
    ));
    assert_eq!(store.get::<IPPool>("pool").await.unwrap(), stored);
}

pub async fn defaults_are_applied_on_read(fixture: &dyn Fixture) {
    let store = store(fixture);
    // As an older tabby (or an operator with kubectl) might have stored it.
    let bare = json!({
        "apiVersion": "tabby.dev/v1",
        "kind": "IPPool",
        "metadata": {"name": "bare"},
        "spec": {"cidr": "fd00::/48"},
    });
    store
        .create_record(Kind::of::<IPPool>(), "bare", bare)
        .await
        .unwrap();
    let pool: IPPool = store.get("bare").await.unwrap();
    assert_eq!(pool.spec.block_size, Some(122));
    assert_eq!(pool.spec.allowed_uses.len(), 2);
    let listed: List<IPPool> = store.list(&ListOptions::default()).await.unwrap();
    assert_eq!(listed.items, vec![pool]);
}

pub async fn pods_and_nodes_are_known_on_every_backend(fixture: &dyn Fixture) {
    let store = fixture.store();
    let ip: IpAddr = "10.0.0.5".parse().unwrap();
    assert_eq!(store.workload("default", "web-0").await.unwrap(), None);
    assert!(!store.node_exists("worker-1").await.unwrap());

    fixture.add_node("worker-1").await;
    fixture.start_pod("default", "web-0", "worker-1", ip).await;
    fixture
        .start_pod(
            "kube-system",
            "dns",
            "worker-1",
            "10.0.0.6".parse().unwrap(),
        )
        .await;
    let web = Workload {
        namespace: "default".into(),
        pod: "web-0".into(),
        node: Some("worker-1".into()),
        ips: vec![ip],
        attachment: None,
    };
    // The attachment is there where the CNI plugin's endpoint is the pod's record.
    let found = store.workload("default", "web-0").await.unwrap();
    assert_eq!(
        found.map(|w| Workload {
            attachment: None,
            ..w
        }),
        Some(web.clone())
    );
    assert_eq!(store.workload("other", "web-0").await.unwrap(), None);
    let mut all = store.workloads().await.unwrap();
    all.sort_by(|a, b| a.pod.cmp(&b.pod));
    assert_eq!(names_of(&all), ["dns", "web-0"]);
    assert!(store.node_exists("worker-1").await.unwrap());
    assert_eq!(store.nodes().await.unwrap(), ["worker-1"]);

    fixture.stop_pod("default", "web-0").await;
    assert_eq!(store.workload("default", "web-0").await.unwrap(), None);
    assert_eq!(names_of(&store.workloads().await.unwrap()), ["dns"]);
}

fn names_of(workloads: &[Workload]) -> Vec<&str> {
    workloads.iter().map(|w| w.pod.as_str()).collect()
}

/// Nodes are tabby `Node`s where the backend has no core record of them.
pub fn tabby_node(name: &str) -> Node {
    Node::new(name, NodeSpec::default())
}
