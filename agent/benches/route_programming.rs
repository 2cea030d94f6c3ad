//! Route programming rate: 100,000 IPv4 /32 routes `via` one gateway into a fresh
//! network namespace, by tabby's reconciler, by `ip -batch` (iproute2) and by BIRD's
//! kernel protocol exporting the same routes from a static protocol, in one run.
//!
//! Each iteration builds a fresh namespace (untimed) and times from the first
//! request until the kernel holds every route: the reconciler and `ip -batch` are
//! done when they return; BIRD is done when its kernel protocol reports 100,000
//! accepted export updates (`birdc show protocols all`, polled every 10 ms, so
//! BIRD's figure carries up to ~10 ms of slack; the kernel's count is checked after).
//! BIRD starts with its kernel protocol disabled and is timed from `birdc enable`,
//! so parsing its 100,000-route configuration is not counted.
//!
//! Run as root: `cargo bench -p agent --bench route_programming`.

#[path = "../tests/dataplane_support/mod.rs"]
mod support;

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use agent::dataplane::{DesiredState, NextHop, Reconciler, Route};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use harness::peers::Bird;
use ipnet::IpNet;
use support::Host;

const ROUTES: u32 = 100_000;
const GATEWAY: &str = "192.0.2.2";

fn destinations() -> impl Iterator<Item = Ipv4Addr> {
    (0..ROUTES).map(|i| Ipv4Addr::from(0x0a00_0000 + i))
}

/// A fresh one-node lab: the node's `eth0` (192.0.2.10/24) is on the gateway's subnet.
fn node() -> Host {
    Host::new("route_programming")
}

fn reconciler(desired: &DesiredState) -> Duration {
    let ns = node();
    ns.run(async || {
        let mut reconciler = Reconciler::new().expect("netlink socket");
        let start = Instant::now();
        let report = reconciler.reconcile(desired).await.expect("reconcile");
        let elapsed = start.elapsed();
        assert_eq!(
            (report.applied, report.failures.len()),
            (ROUTES as usize, 0),
            "{:?}",
            report.failures.first()
        );
        elapsed
    })
}

/// A periodic resync over 100,000 routes already in place: dump, diff, no change.
fn resync(desired: &DesiredState) -> Duration {
    let ns = node();
    ns.run(async || {
        let mut reconciler = Reconciler::new().expect("netlink socket");
        reconciler.reconcile(desired).await.expect("reconcile");
        let start = Instant::now();
        let report = reconciler.reconcile(desired).await.expect("resync");
        let elapsed = start.elapsed();
        assert_eq!(
            report.changes(),
            0,
            "a resync of a matching kernel changes nothing"
        );
        elapsed
    })
}

fn ip_batch(batch: &Path) -> Duration {
    let ns = node();
    let start = Instant::now();
    ns.ip(&format!("-batch {}", batch.display()));
    start.elapsed()
}

/// The kernel protocol's accepted export updates. BIRD 2.0 waits for the kernel's
/// ack of each route and answers the CLI only between export batches, so this
/// reaches 100,000 when the kernel holds every route (asserted after).
fn exported(bird: &Bird) -> u32 {
    let status = birdc(bird, "show protocols all kernel1");
    let line = status
        .lines()
        .find(|l| l.trim_start().starts_with("Export updates:"));
    line.and_then(|l| l.split_whitespace().last()?.parse().ok())
        .unwrap_or(0)
}

fn birdc(bird: &Bird, command: &str) -> String {
    bird.birdc(command)
        .unwrap_or_else(|e| panic!("birdc {command}: {e:#}"))
}

fn bird(config: &str) -> Duration {
    let ns = node();
    let bird = Bird::start_text(ns.node(), config).expect("starting bird");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !birdc(&bird, "show protocols static1").contains(" up ") {
        assert!(
            Instant::now() < deadline,
            "BIRD's static protocol never came up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let start = Instant::now();
    birdc(&bird, "enable kernel1");
    while exported(&bird) < ROUTES {
        assert!(
            Instant::now() < deadline,
            "BIRD exported {} routes",
            exported(&bird)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let elapsed = start.elapsed();
    let in_kernel = ns.ip("route show proto bird").lines().count();
    assert_eq!(in_kernel, ROUTES as usize, "routes BIRD put in the kernel");
    elapsed
}

fn route_programming(c: &mut Criterion) {
    harness::require_root();
    let dir = tempfile::tempdir().unwrap();
    let gateway: IpAddr = GATEWAY.parse().unwrap();
    let mut desired = DesiredState::default();
    let mut batch = String::new();
    let mut bird_conf = String::from(
        "router id 192.0.2.1;\nprotocol device { scan time 600; }\nprotocol static static1 {\n  ipv4;\n",
    );
    for dst in destinations() {
        desired.insert_route(
            Route::via(IpNet::new(dst.into(), 32).unwrap(), [NextHop::via(gateway)]).unwrap(),
        );
        writeln!(batch, "route add {dst}/32 via {GATEWAY} proto 84").unwrap();
        writeln!(bird_conf, "  route {dst}/32 via {GATEWAY};").unwrap();
    }
    bird_conf.push_str(
        "}\nprotocol kernel kernel1 {\n  disabled;\n  scan time 600;\n  ipv4 { import none; export all; };\n}\n",
    );
    let batch_file = dir.path().join("routes.batch");
    std::fs::write(&batch_file, batch).unwrap();

    let mut group = c.benchmark_group("route_programming_100k");
    group.throughput(Throughput::Elements(u64::from(ROUTES)));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(1));
    // One iteration per sample; the time only silences criterion's "increase target time".
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("tabby_reconciler", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| reconciler(&desired)).sum())
    });
    group.bench_function("ip_batch", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| ip_batch(&batch_file)).sum())
    });
    group.bench_function("bird_kernel_protocol", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| bird(&bird_conf)).sum())
    });
    group.bench_function("tabby_resync_no_change", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| resync(&desired)).sum())
    });
    group.finish();
}

criterion_group!(benches, route_programming);
criterion_main!(benches);
