//! Cases from the datastore's trust review (`docs/security-ipam.md`): stored content
//! is input, and pools never overlap.

use api::datastore::{Datastore, Error, Kind, List, ListOptions, WatchEvent};
use api::resources::{IPPool, IPPoolSpec, Node, Resource};
use serde_json::json;

use super::{next_event, revision_now, store};
use crate::conformance::Fixture;

/// An IPPool as `kubectl apply` could store it: the CRD's schema allowed any
/// blockSize up to 255, and 40 on an IPv4 pool made ipam's block arithmetic panic.
fn raw_pool(name: &str, spec: serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "tabby.dev/v1",
        "kind": "IPPool",
        "metadata": {"name": name},
        "spec": spec,
    })
}

pub async fn hardening_a_stored_object_that_fails_validation_is_skipped_and_reported(
    fixture: &dyn Fixture,
) {
    let store = store(fixture);
    let kind = Kind::of::<IPPool>();
    let before = revision_now(store).await;
    let skipped_before = api::datastore::skipped_total()
        .get(IPPool::KIND)
        .copied()
        .unwrap_or(0);
    let mut events = store.watch::<IPPool>(before).await.unwrap();
    let wide = json!({"cidr": "10.0.0.0/16", "blockSize": 40});
    store
        .create_record(kind, "wide", raw_pool("wide", wide))
        .await
        .unwrap();
    let typo = json!({"cidr": 10, "blockSize": 26});
    store
        .create_record(kind, "typo", raw_pool("typo", typo))
        .await
        .unwrap();
    let good = store
        .create(&IPPool::new(
            "good",
            IPPoolSpec::new("10.1.0.0/16".parse().unwrap()),
        ))
        .await
        .unwrap();

    let error = store.get::<IPPool>("wide").await.unwrap_err();
    assert!(matches!(error, Error::Corrupt { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        "stored IPPool \"wide\" is unreadable: spec.blockSize: 40 is out of range 20..=32 \
         for this family"
    );

    let listed: List<IPPool> = store.list(&ListOptions::default()).await.unwrap();
    assert_eq!(listed.items, vec![good.clone()]);
    let skipped: Vec<&str> = listed.skipped.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(skipped, ["typo", "wide"]);
    assert!(
        listed.skipped[0].problem.contains("spec.cidr"),
        "{:?}",
        listed.skipped[0]
    );

    // The watch skips both and goes on: the good pool, then the repaired one.
    assert_eq!(next_event(&mut events).await, WatchEvent::Added(good));
    let stored = store.get_record(kind, "wide").await.unwrap();
    let repaired = json!({"cidr": "10.0.0.0/16", "blockSize": 24});
    store
        .update_record(kind, "wide", raw_pool("wide", repaired), stored.revision)
        .await
        .unwrap();
    match next_event(&mut events).await {
        WatchEvent::Modified(pool) => assert_eq!(pool.spec.block_size, Some(24)),
        other => panic!("expected the repaired pool, got {other:?}"),
    }
    let skipped_after = api::datastore::skipped_total()[IPPool::KIND];
    assert!(
        skipped_after >= skipped_before + 4,
        "{skipped_before} → {skipped_after}: two in the list, two in the watch"
    );
}

pub async fn hardening_fields_of_a_newer_version_are_read_past_and_kept_on_update(
    fixture: &dyn Fixture,
) {
    let store = store(fixture);
    let kind = Kind::of::<Node>();
    let written = json!({
        "apiVersion": "tabby.dev/v1",
        "kind": "Node",
        "metadata": {"name": "n1", "labels": {"rack": "a"}},
        "spec": {
            "bgp": {"ipv4Address": "10.0.0.1/24", "bfdProfile": "fast"},
            "wireguardPublicKey": "k1",
        },
    });
    store.create_record(kind, "n1", written).await.unwrap();
    let before = revision_now(store).await;
    let mut node: Node = store.get("n1").await.unwrap();
    assert_eq!(
        node.spec.bgp.as_ref().and_then(|b| b.ipv4_address),
        Some("10.0.0.1/24".parse().unwrap())
    );
    let listed: List<Node> = store.list(&ListOptions::default()).await.unwrap();
    assert_eq!((listed.items.len(), listed.skipped.len()), (1, 0));

    // This version edits what it knows; what it does not know is written back as read.
    node.metadata.labels.insert("zone".into(), "east".into());
    store.update(&node).await.unwrap();
    let stored = store.get_record(kind, "n1").await.unwrap();
    assert_eq!(stored.value["spec"]["bgp"]["bfdProfile"], "fast");
    assert_eq!(stored.value["spec"]["wireguardPublicKey"], "k1");
    assert_eq!(stored.value["metadata"]["labels"]["zone"], "east");
    let mut events = store.watch::<Node>(before).await.unwrap();
    match next_event(&mut events).await {
        WatchEvent::Modified(seen) => assert_eq!(seen.metadata.labels.len(), 2),
        other => panic!("expected the update, got {other:?}"),
    }
}

fn pool_of(name: &str, cidr: &str, block_size: u8) -> IPPool {
    let mut spec = IPPoolSpec::new(cidr.parse().unwrap());
    spec.block_size = Some(block_size);
    IPPool::new(name, spec)
}

pub async fn hardening_overlapping_pools_are_refused_also_when_created_at_once(
    fixture: &dyn Fixture,
) {
    let store = store(fixture);
    store
        .create(&pool_of("a", "10.0.0.0/16", 26))
        .await
        .unwrap();
    // The same range with another block size would carve blocks over a's blocks.
    let error = store
        .create(&pool_of("b", "10.0.0.0/16", 28))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "IPPool \"b\": spec.cidr: \"10.0.0.0/16\" overlaps IPPool \"a\" (10.0.0.0/16); \
         pools may not overlap"
    );
    for (name, cidr) in [("inside", "10.0.128.0/17"), ("around", "10.0.0.0/8")] {
        let refused = store.create(&pool_of(name, cidr, 26)).await;
        assert!(matches!(refused, Err(Error::Invalid { .. })), "{name}");
    }
    store
        .create(&pool_of("beside", "10.1.0.0/16", 26))
        .await
        .unwrap();

    // Two creators at once: never both.
    for round in 2..22u8 {
        let x = pool_of(&format!("x{round}"), &format!("10.{round}.0.0/16"), 26);
        let y = pool_of(&format!("y{round}"), &format!("10.{round}.0.0/17"), 28);
        let (x_created, y_created) = tokio::join!(store.create(&x), store.create(&y));
        let pools: List<IPPool> = store.list(&ListOptions::default()).await.unwrap();
        let present: Vec<&str> = pools
            .items
            .iter()
            .map(|p| p.name())
            .filter(|n| n[1..] == round.to_string())
            .collect();
        assert!(present.len() <= 1, "round {round}: both {present:?} stored");
        assert_eq!(
            present.len(),
            usize::from(x_created.is_ok()) + usize::from(y_created.is_ok()),
            "round {round}: a create that succeeded stays, one that failed leaves nothing"
        );
    }
}
