//! What IPAM makes of datastore content that contradicts itself or overlaps: pools
//! and blocks written past tabby's checks (kubectl, etcdctl, an older version), and
//! claims of overlapping blocks at once. Never a panic, never an address twice.

mod support;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use api::datastore::{
    Backend, Datastore, Error as DsError, Kind, List, ListOptions, MemoryStore, Record, Result,
    WatchStream,
};
use api::resources::{Cidr, IPAMBlock, IPPool, Revision};
use async_trait::async_trait;
use ipam::check::{Problem, check};
use ipam::claim::claim_block;
use ipam::{Allocator, AssignRequest, IpamError};
use serde_json::{Value, json};
use support::{memory, node, pool};

fn raw(kind: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "tabby.dev/v1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    })
}

/// A block of 64 addresses affine to `node`, its table as given.
async fn raw_block(store: &dyn Backend, cidr: &str, node: &str, table: Value) {
    let name = cidr.replace(['.', '/'], "-");
    let mut spec = json!({"cidr": cidr, "affinity": format!("host:{node}")});
    spec.as_object_mut()
        .unwrap()
        .extend(table.as_object().unwrap().clone());
    store
        .create_record(
            Kind::of::<IPAMBlock>(),
            &name,
            raw("IPAMBlock", &name, spec),
        )
        .await
        .unwrap();
    ipam::claim::set_affinity_state(
        store,
        node,
        cidr.parse().unwrap(),
        api::resources::AffinityState::Confirmed,
    )
    .await
    .unwrap();
}

async fn one_address(allocator: &Allocator, handle: &str) -> ipam::Result<IpAddr> {
    let assigned = allocator
        .auto_assign(&AssignRequest::new(handle, 1, 0))
        .await?;
    Ok(assigned.addresses[0].ip)
}

#[tokio::test]
async fn hardening_a_pool_stored_with_block_size_40_is_skipped_not_a_panic() {
    let store = memory();
    // As kubectl could store it: the CRD allowed any blockSize up to 255.
    let wide = raw(
        "IPPool",
        "a-wide",
        json!({"cidr": "10.1.0.0/16", "blockSize": 40}),
    );
    store
        .create_record(Kind::of::<IPPool>(), "a-wide", wide)
        .await
        .unwrap();
    pool(&*store, "b-good", "10.2.0.0/24", 26, |_| {}).await;
    node(&*store, "n1", false).await;
    let n1 = Allocator::new(store.clone(), "n1");
    let ip = one_address(&n1, "h1").await.unwrap();
    assert!("10.2.0.0/24".parse::<ipnet::IpNet>().unwrap().contains(&ip));
}

#[tokio::test]
async fn hardening_a_block_with_an_ordinal_outside_it_is_reported_not_a_panic() {
    let store = memory();
    pool(&*store, "p", "10.0.0.0/24", 26, |_| {}).await;
    node(&*store, "n1", false).await;
    let mut free: Vec<usize> = (0..64).collect();
    free.insert(0, 70);
    raw_block(
        &*store,
        "10.0.0.0/26",
        "n1",
        json!({"allocations": vec![Value::Null; 64], "unallocated": free}),
    )
    .await;
    let error = store.get::<IPAMBlock>("10-0-0-0-26").await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "stored IPAMBlock \"10-0-0-0-26\" is unreadable: spec.unallocated[0]: 70 is outside \
         the block"
    );
    // The corrupt block is left alone, and never claimed over: the node gets
    // another block.
    let n1 = Allocator::new(store.clone(), "n1");
    let ip = one_address(&n1, "h1").await.unwrap();
    assert!(!"10.0.0.0/26".parse::<ipnet::IpNet>().unwrap().contains(&ip));
    let listed: List<IPAMBlock> = store.list(&ListOptions::default()).await.unwrap();
    assert_eq!(listed.skipped.len(), 1);
}

#[tokio::test]
async fn hardening_a_block_listing_an_allocated_ordinal_as_free_never_hands_it_out_twice() {
    let store = memory();
    pool(&*store, "p", "10.0.0.0/25", 26, |_| {}).await;
    node(&*store, "n1", false).await;
    // Ordinal 0 is held by "old" and also listed free.
    let mut allocations = vec![Value::Null; 64];
    allocations[0] = json!(0);
    raw_block(
        &*store,
        "10.0.0.0/26",
        "n1",
        json!({
            "allocations": allocations,
            "unallocated": (0..64).collect::<Vec<usize>>(),
            "attributes": [{"handleID": "old"}],
            "sequenceNumber": 1,
        }),
    )
    .await;
    let error = store.get::<IPAMBlock>("10-0-0-0-26").await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("spec.unallocated[0]: 0 is allocated"),
        "{error}"
    );
    // Skipped, reported, and its range avoided: the node claims another block.
    let n1 = Allocator::new(store.clone(), "n1");
    for i in 0..3 {
        let ip = one_address(&n1, &format!("new{i}")).await.unwrap();
        assert!(
            "10.0.0.64/26"
                .parse::<ipnet::IpNet>()
                .unwrap()
                .contains(&ip),
            "{ip}"
        );
    }
}

#[tokio::test]
async fn hardening_no_block_is_claimed_over_an_existing_block_of_another_size() {
    let store = memory();
    pool(&*store, "old", "10.0.0.0/26", 26, |_| {}).await;
    node(&*store, "n1", false).await;
    node(&*store, "n2", false).await;
    let n1 = Allocator::new(store.clone(), "n1");
    for i in 0..60 {
        one_address(&n1, &format!("n1-{i}")).await.unwrap();
    }
    // The pool is replaced by one of smaller blocks over the same range; n1's /26
    // stays with its addresses.
    store.delete::<IPPool>("old", None).await.unwrap();
    pool(&*store, "new", "10.0.0.0/26", 28, |_| {}).await;
    let n2 = Allocator::new(store.clone(), "n2");
    for i in 0..8 {
        // Borrowing from n1's block is fine; a /28 over it is not.
        let _ = one_address(&n2, &format!("n2-{i}")).await;
    }
    let blocks: Vec<IPAMBlock> = ipam::cas::list_all(&*store).await.unwrap();
    let cidrs: Vec<String> = blocks.iter().map(|b| b.spec.cidr.to_string()).collect();
    assert_eq!(cidrs, ["10.0.0.0/26"]);
    let report = check(&*store, false).await.unwrap();
    assert!(
        !report
            .problems
            .iter()
            .any(|p| matches!(p, Problem::DoubleAllocation { .. })),
        "{:#?}",
        report.problems
    );
}

/// Yields before every call, so concurrent claims interleave at every step.
#[derive(Debug)]
struct Yielding(MemoryStore);

#[async_trait]
impl Backend for Yielding {
    async fn get_record(&self, kind: Kind, name: &str) -> Result<Record> {
        tokio::task::yield_now().await;
        self.0.get_record(kind, name).await
    }
    async fn list_records(&self, kind: Kind, options: &ListOptions) -> Result<List<Record>> {
        tokio::task::yield_now().await;
        self.0.list_records(kind, options).await
    }
    async fn create_record(&self, kind: Kind, name: &str, value: Value) -> Result<Record> {
        tokio::task::yield_now().await;
        self.0.create_record(kind, name, value).await
    }
    async fn update_record(
        &self,
        kind: Kind,
        name: &str,
        value: Value,
        expected: Revision,
    ) -> Result<Record> {
        tokio::task::yield_now().await;
        self.0.update_record(kind, name, value, expected).await
    }
    async fn delete_record(
        &self,
        kind: Kind,
        name: &str,
        expected: Option<Revision>,
    ) -> Result<Record> {
        tokio::task::yield_now().await;
        self.0.delete_record(kind, name, expected).await
    }
    async fn watch_records(&self, kind: Kind, from: Revision) -> Result<WatchStream<Record>> {
        self.0.watch_records(kind, from).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hardening_overlapping_claims_at_once_leave_at_most_one_block() {
    for round in 0..40u8 {
        let store = Arc::new(Yielding(MemoryStore::new()));
        let wide: Cidr = format!("10.{round}.0.0/26").parse().unwrap();
        let narrow: Cidr = format!("10.{round}.0.16/28").parse().unwrap();
        let (a, b) = tokio::join!(
            tokio::spawn({
                let store = store.clone();
                async move { claim_block(&*store, "n1", wide).await }
            }),
            tokio::spawn({
                let store = store.clone();
                async move { claim_block(&*store, "n2", narrow).await }
            }),
        );
        let (a, b) = (a.unwrap().unwrap(), b.unwrap().unwrap());
        let blocks: Vec<IPAMBlock> = ipam::cas::list_all(&*store).await.unwrap();
        assert!(blocks.len() <= 1, "round {round}: {blocks:#?}");
        assert_eq!(
            blocks.len(),
            usize::from(a.is_some()) + usize::from(b.is_some()),
            "round {round}: what a claim returned is what is stored"
        );
    }
}

/// Reports every affinity as taken on create, and missing on read: the race a
/// claim loses when the affinity it collided with is deleted before it looks.
#[derive(Debug)]
struct AlwaysRacing(MemoryStore);

#[async_trait]
impl Backend for AlwaysRacing {
    async fn get_record(&self, kind: Kind, name: &str) -> Result<Record> {
        self.0.get_record(kind, name).await
    }
    async fn list_records(&self, kind: Kind, options: &ListOptions) -> Result<List<Record>> {
        self.0.list_records(kind, options).await
    }
    async fn create_record(&self, kind: Kind, name: &str, value: Value) -> Result<Record> {
        if kind.name == "BlockAffinity" {
            return Err(DsError::AlreadyExists {
                kind: kind.name,
                name: name.to_owned(),
            });
        }
        self.0.create_record(kind, name, value).await
    }
    async fn update_record(
        &self,
        kind: Kind,
        name: &str,
        value: Value,
        expected: Revision,
    ) -> Result<Record> {
        self.0.update_record(kind, name, value, expected).await
    }
    async fn delete_record(
        &self,
        kind: Kind,
        name: &str,
        expected: Option<Revision>,
    ) -> Result<Record> {
        self.0.delete_record(kind, name, expected).await
    }
    async fn watch_records(&self, kind: Kind, from: Revision) -> Result<WatchStream<Record>> {
        self.0.watch_records(kind, from).await
    }
}

#[tokio::test]
async fn hardening_a_claim_that_keeps_losing_races_gives_up_instead_of_recursing() {
    let store = AlwaysRacing(MemoryStore::new());
    let claimed = tokio::time::timeout(
        Duration::from_secs(20),
        claim_block(&store, "n1", "10.0.0.0/26".parse().unwrap()),
    )
    .await
    .expect("the claim ends");
    assert!(
        matches!(claimed, Err(IpamError::Contention { .. })),
        "{claimed:?}"
    );
}
