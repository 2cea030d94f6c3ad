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
//! Prints a markdown table (docs/benchmarks.md). Latencies are per call as the
//! caller sees it; rates are calls over the wall time of the whole run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use api::datastore::{Backend, Datastore, EtcdStore, MemoryStore};
use api::resources::{IPPool, IPPoolSpec};
use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp, TxnOpResponse};
use ipam::{Allocator, AssignRequest};

const CONCURRENCY: [usize; 3] = [1, 8, 64];

/// Calls timed per configuration (spread over the allocators).
fn calls() -> usize {
    std::env::var("TABBY_BENCH_ALLOCATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3000)
}

#[derive(Debug)]
struct Figures {
    rate: f64,
    p50: Duration,
    p99: Duration,
}

impl Figures {
    fn of(mut latencies: Vec<Duration>, wall: Duration) -> Self {
        latencies.sort();
        let at =
            |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        Self {
            rate: latencies.len() as f64 / wall.as_secs_f64(),
            p50: at(0.50),
            p99: at(0.99),
        }
    }
}

/// How an allocator learns of pool changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settings {
    /// Followed by watches: a long-lived allocator.
    Watched,
    /// Pools and reservations read with each assignment: the CNI plugin's way.
    ReadPerCall,
}

/// `n` allocators on `n` nodes, each warmed by one allocation (its block claimed,
/// its view cached), then `per` timed allocations each, all at once.
async fn allocations(store: Arc<dyn Backend>, settings: Settings, n: usize, per: usize) -> Figures {
    // Calico's default blocks of 64: an allocator claims a new one every 64 calls.
    let spec = IPPoolSpec::new("10.0.0.0/12".parse().unwrap());
    store.create(&IPPool::new("bench", spec)).await.unwrap();
    let mut allocators = Vec::new();
    for node in 0..n {
        let name = format!("node-{node}");
        let allocator = Arc::new(match settings {
            Settings::Watched => Allocator::watching(store.clone(), name),
            Settings::ReadPerCall => Allocator::new(store.clone(), name),
        });
        if let Some(watch) = allocator.settings_watch() {
            while watch.current().is_none() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        allocator
            .auto_assign(&AssignRequest::new(format!("warm-{node}"), 1, 0))
            .await
            .unwrap();
        allocators.push(allocator);
    }
    let start = Instant::now();
    let tasks = allocators.into_iter().enumerate().map(|(node, allocator)| {
        tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per);
            for i in 0..per {
                let request = AssignRequest::new(format!("pod-{node}-{i}"), 1, 0);
                let began = Instant::now();
                allocator.auto_assign(&request).await.unwrap();
                latencies.push(began.elapsed());
            }
            latencies
        })
    });
    let latencies: Vec<Duration> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .flat_map(|t| t.unwrap())
        .collect();
    Figures::of(latencies, start.elapsed())
}

/// `n` writers, each CASing its own key `per` times (compare mod_revision, put a
/// block-sized value): what one allocation's block write costs at the least.
async fn raw_cas(client: &Client, prefix: &str, n: usize, per: usize, value: &str) -> Figures {
    let start = Instant::now();
    let tasks = (0..n).map(|writer| {
        let mut kv = client.kv_client();
        let key = format!("{prefix}/raw/{writer}");
        let value = value.to_owned();
        tokio::spawn(async move {
            let mut revision = 0;
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
                let began = Instant::now();
                let response = kv.txn(txn).await.unwrap();
                latencies.push(began.elapsed());
                assert!(response.succeeded(), "no one else writes this key");
                revision = match response.op_responses().first() {
                    Some(TxnOpResponse::Put(put)) => put.header().unwrap().revision(),
                    other => panic!("{other:?}"),
                };
            }
            latencies
        })
    });
    let latencies: Vec<Duration> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .flat_map(|t| t.unwrap())
        .collect();
    Figures::of(latencies, start.elapsed())
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let logs = tests::logs::LogDir::new("bench_ipam_allocation").unwrap();
    let etcd = tests::etcd::Etcd::start(&logs).expect("etcd starts (install etcd-server)");
    let total = calls();
    runtime.block_on(async {
        let client = Client::connect([etcd.endpoint()], None).await.unwrap();
        // A half-full block's JSON as the allocator writes it: the raw CAS writes as much.
        let mut block = ipam::claim::new_block("10.0.0.0/26".parse().unwrap(), Some("node-0"));
        for i in 0..32 {
            let holder = api::resources::AllocationAttribute {
                handle_id: Some(format!("pod-0-{i}")),
                secondary: Default::default(),
            };
            block.spec.take_free(1, &holder, &|_| false);
        }
        let value = serde_json::to_string(&block).unwrap();
        println!(
            "| concurrency | etcd raw CAS txn/s | etcd, settings watched | ratio to raw | \
             etcd, pools read per call (CNI plugin) | ratio to raw | memory, settings watched |"
        );
        println!("| --- | --- | --- | --- | --- | --- | --- |");
        let cell = |f: &Figures| format!("{:.0} ({} / {})", f.rate, ms(f.p50), ms(f.p99));
        for n in CONCURRENCY {
            let per = (total / n).max(1);
            let raw = raw_cas(&client, &format!("/bench-raw-{n}"), n, per, &value).await;
            let etcd = |tag: &str| -> Arc<dyn Backend> {
                Arc::new(EtcdStore::new(client.clone()).with_prefix(format!("/bench-{tag}-{n}")))
            };
            let watched = allocations(etcd("watched"), Settings::Watched, n, per).await;
            let per_call = allocations(etcd("per-call"), Settings::ReadPerCall, n, per).await;
            let memory = allocations(Arc::new(MemoryStore::new()), Settings::Watched, n, per).await;
            println!(
                "| {n} | {} | {} | {:.2} | {} | {:.2} | {} |",
                cell(&raw),
                cell(&watched),
                watched.rate / raw.rate,
                cell(&per_call),
                per_call.rate / raw.rate,
                cell(&memory),
            );
        }
    });
    println!(
        "(calls/s (p50 / p99 ms); {total} timed calls per cell, after one warm-up \
         allocation per allocator)"
    );
}
