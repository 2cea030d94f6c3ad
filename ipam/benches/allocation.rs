//! Allocation throughput and latency: 1, 8 and 64 concurrent allocators (each a
//! node with its own warm block) against a real etcd and against the memory
//! backend, beside the raw rate of etcd compare-and-swap transactions measured in
//! the same run on the same etcd (the physical limit of a design where every
//! allocation is a CAS write of its block).
//!
//! ```text
//! cargo bench -p ipam --bench allocation            # etcd-server must be installed
//! TABBY_BENCH_ALLOCATIONS=2000 cargo bench -p ipam --bench allocation
//! ```
//!
//! The subjects take turns in short rounds (raw CAS, then each allocator kind, five
//! times over), so load from other work on the machine falls on all of them alike;
//! the rate is the median of the rounds, the latencies are over all calls. Prints
//! a markdown table for docs/benchmarks.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use api::datastore::{Backend, Datastore, EtcdStore, MemoryStore};
use api::resources::{AllocationAttribute, IPPool, IPPoolSpec};
use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp, TxnOpResponse};
use ipam::table::AllocationTable;
use ipam::{Allocator, AssignRequest};

const CONCURRENCY: [usize; 3] = [1, 8, 64];
const ROUNDS: usize = 5;

/// Calls timed per subject and concurrency (spread over rounds and allocators).
fn calls() -> usize {
    std::env::var("TABBY_BENCH_ALLOCATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3000)
}

/// Latencies and per-round rates of one subject.
#[derive(Debug, Default)]
struct Timings {
    latencies: Vec<Duration>,
    rates: Vec<f64>,
}

impl Timings {
    fn add(&mut self, latencies: Vec<Duration>, wall: Duration) {
        self.rates.push(latencies.len() as f64 / wall.as_secs_f64());
        self.latencies.extend(latencies);
    }

    /// Median rate of the rounds, and p50 / p99 latency over every call.
    fn summary(&mut self) -> (f64, Duration, Duration) {
        self.rates.sort_by(f64::total_cmp);
        self.latencies.sort();
        let at = |q: f64| {
            let i = (self.latencies.len() as f64 * q) as usize;
            self.latencies[i.min(self.latencies.len() - 1)]
        };
        (self.rates[self.rates.len() / 2], at(0.50), at(0.99))
    }

    fn cell(&mut self) -> String {
        let (rate, p50, p99) = self.summary();
        format!("{rate:.0} ({} / {})", ms(p50), ms(p99))
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// Runs `calls` on `n` tasks at once; the latencies and the wall time.
async fn timed<F>(
    n: usize,
    per: usize,
    call: impl Fn(usize, usize) -> F,
) -> (Vec<Duration>, Duration)
where
    F: Future<Output = ()> + Send + 'static,
{
    let start = Instant::now();
    let tasks = (0..n).map(|task| {
        let calls: Vec<F> = (0..per).map(|i| call(task, i)).collect();
        tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per);
            for call in calls {
                let began = Instant::now();
                call.await;
                latencies.push(began.elapsed());
            }
            latencies
        })
    });
    let latencies = futures::future::join_all(tasks)
        .await
        .into_iter()
        .flat_map(|t| t.unwrap())
        .collect();
    (latencies, start.elapsed())
}

/// `n` allocators on `n` nodes, each warmed by one allocation (its block claimed,
/// its view cached).
async fn fleet(store: Arc<dyn Backend>, watched: bool, n: usize) -> Vec<Arc<Allocator>> {
    // Calico's default blocks of 64: an allocator claims a new one every 64 calls.
    let spec = IPPoolSpec::new("10.0.0.0/12".parse().unwrap());
    store.create(&IPPool::new("bench", spec)).await.unwrap();
    let mut allocators = Vec::new();
    for node in 0..n {
        let name = format!("node-{node}");
        let allocator = Arc::new(match watched {
            true => Allocator::watching(store.clone(), name),
            false => Allocator::new(store.clone(), name),
        });
        if let Some(watch) = allocator.settings_watch() {
            while watch.current().is_none() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let warm = AssignRequest::new(format!("warm-{node}"), 1, 0);
        allocator.auto_assign(&warm).await.unwrap();
        allocators.push(allocator);
    }
    allocators
}

/// One round of `per` allocations on each allocator.
async fn allocate(fleet: &[Arc<Allocator>], round: usize, per: usize) -> (Vec<Duration>, Duration) {
    timed(fleet.len(), per, |task, i| {
        let allocator = fleet[task].clone();
        async move {
            let request = AssignRequest::new(format!("pod-{task}-{round}-{i}"), 1, 0);
            allocator.auto_assign(&request).await.unwrap();
        }
    })
    .await
}

/// One round of `per` CAS transactions by each of `n` writers, each on its own key
/// (compare mod_revision, put a block-sized value): what one allocation's block
/// write costs at the least. With `pair`, each CAS goes together with the create
/// of a new small key (compare create_revision 0, put), as an allocation's block
/// write goes with its handle's create: the least two such writes cost.
async fn raw_cas(
    client: &Client,
    revisions: &mut [i64],
    per: usize,
    value: &str,
    pair: bool,
) -> (Vec<Duration>, Duration) {
    let start = Instant::now();
    let tasks = revisions.iter().enumerate().map(|(writer, &revision)| {
        let mut kv = client.kv_client();
        let key = format!("/bench-raw-{pair}/{}/{writer}", revisions.len());
        let value = value.to_owned();
        tokio::spawn(async move {
            let mut revision = revision;
            let mut latencies = Vec::with_capacity(per);
            for _ in 0..per {
                let txn = Txn::new()
                    .when([Compare::mod_revision(
                        key.as_str(),
                        CompareOp::Equal,
                        revision,
                    )])
                    .and_then([TxnOp::put(key.as_str(), value.as_str(), None)])
                    .or_else([TxnOp::get(key.as_str(), None)]);
                let handle = format!("{key}/handle/{revision}");
                let create = Txn::new()
                    .when([Compare::create_revision(
                        handle.as_str(),
                        CompareOp::Equal,
                        0,
                    )])
                    .and_then([TxnOp::put(handle.as_str(), HANDLE, None)])
                    .or_else([TxnOp::get(handle.as_str(), None)]);
                let mut handles = kv.clone();
                let began = Instant::now();
                let response = match pair {
                    false => kv.txn(txn).await.unwrap(),
                    true => {
                        let (block, handle) = futures::join!(kv.txn(txn), handles.txn(create));
                        assert!(handle.unwrap().succeeded(), "a new key each time");
                        block.unwrap()
                    }
                };
                latencies.push(began.elapsed());
                assert!(response.succeeded(), "no one else writes this key");
                revision = match response.op_responses().first() {
                    Some(TxnOpResponse::Put(put)) => put.header().unwrap().revision(),
                    other => panic!("{other:?}"),
                };
            }
            (latencies, revision)
        })
    });
    let results = futures::future::join_all(tasks).await;
    let wall = start.elapsed();
    let mut latencies = Vec::new();
    for (slot, result) in revisions.iter_mut().zip(results) {
        let (mine, revision) = result.unwrap();
        latencies.extend(mine);
        *slot = revision;
    }
    (latencies, wall)
}

/// A handle's JSON as the allocator writes it.
const HANDLE: &str = r#"{"apiVersion":"tabby.dev/v1","kind":"IPAMHandle","metadata":{"name":"pod-0-0-0"},"spec":{"handleID":"pod-0-0-0","block":{"10.0.0.0/26":1},"deleted":false}}"#;

/// A half-full block's JSON as the allocator writes it: the raw CAS writes as much.
fn block_value() -> String {
    let mut block = ipam::claim::new_block("10.0.0.0/26".parse().unwrap(), Some("node-0"));
    for i in 0..32 {
        let holder = AllocationAttribute {
            handle_id: Some(format!("pod-0-{i}")),
            secondary: Default::default(),
        };
        block.spec.take_free(1, &holder, &|_| false);
    }
    serde_json::to_string(&block).unwrap()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let logs = harness::logs::LogDir::new("bench_ipam_allocation").unwrap();
    let etcd = harness::etcd::Etcd::start(&logs).expect("etcd starts (install etcd-server)");
    let total = calls();
    runtime.block_on(async {
        let client = Client::connect([etcd.endpoint()], None).await.unwrap();
        let value = block_value();
        println!(
            "| concurrency | etcd raw CAS txn/s | etcd raw CAS + create pairs/s | \
             etcd, settings watched | ratio to raw CAS | etcd, pools read per call (CNI plugin) | \
             ratio to raw CAS | memory, settings watched |"
        );
        println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
        for n in CONCURRENCY {
            let per = (total / n / ROUNDS).max(1);
            let etcd = |tag: &str| -> Arc<dyn Backend> {
                Arc::new(EtcdStore::new(client.clone()).with_prefix(format!("/bench-{tag}-{n}")))
            };
            let watched = fleet(etcd("watched"), true, n).await;
            let per_call = fleet(etcd("per-call"), false, n).await;
            let memory = fleet(Arc::new(MemoryStore::new()), true, n).await;
            let (mut single, mut paired) = (vec![0; n], vec![0; n]);
            let mut figures: [Timings; 5] = Default::default();
            for round in 0..ROUNDS {
                let (l, w) = raw_cas(&client, &mut single, per, &value, false).await;
                figures[0].add(l, w);
                let (l, w) = raw_cas(&client, &mut paired, per, &value, true).await;
                figures[1].add(l, w);
                let (l, w) = allocate(&watched, round, per).await;
                figures[2].add(l, w);
                let (l, w) = allocate(&per_call, round, per).await;
                figures[3].add(l, w);
                let (l, w) = allocate(&memory, round, per).await;
                figures[4].add(l, w);
            }
            let raw_rate = figures[0].summary().0;
            let ratio = |t: &mut Timings| t.summary().0 / raw_rate;
            let (watched_ratio, per_call_ratio) = (ratio(&mut figures[2]), ratio(&mut figures[3]));
            println!(
                "| {n} | {} | {} | {} | {watched_ratio:.2} | {} | {per_call_ratio:.2} | {} |",
                figures[0].cell(),
                figures[1].cell(),
                figures[2].cell(),
                figures[3].cell(),
                figures[4].cell(),
            );
        }
    });
    println!(
        "(calls/s, median of {ROUNDS} interleaved rounds (p50 / p99 ms over all calls); \
         {total} timed calls per cell, after one warm-up allocation per allocator)"
    );
}
