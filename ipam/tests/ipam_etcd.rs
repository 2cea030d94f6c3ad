//! Allocation against a real etcd: many allocator tasks with conflicts injected,
//! separate allocator processes, and allocator processes killed (SIGKILL) at random
//! points, after which nothing is owned twice and the controller reclaims the leaks.
//!
//! Separate processes are this test binary run again with one test selected and
//! [`WORKER`] set: the same test, as a worker.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use api::datastore::{Backend, Datastore, EtcdStore};
use api::resources::{Cidr, WorkloadEndpointSpec};
use ipam::check::{Problem, check};
use ipam::{Allocator, AssignRequest};
use rand::Rng;
use serde_json::{Value, json};
use support::{Conflicting, EtcdStoreFixture, HeldHere, HeldInDir, churn, pool};

/// Set in a worker process: the JSON of its [`Work`].
const WORKER: &str = "TABBY_IPAM_TEST_WORKER";

/// What a worker process does.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Work {
    endpoint: String,
    /// One allocator per entry, on that node.
    nodes: Vec<String>,
    rounds: usize,
    live: usize,
    tag: String,
    held: std::path::PathBuf,
}

/// Runs this process as a worker if it is one; true then.
async fn run_as_worker() -> bool {
    let Ok(work) = std::env::var(WORKER) else {
        return false;
    };
    let work: Work = serde_json::from_str(&work).expect("the worker's JSON");
    let store: Arc<dyn Backend> = Arc::new(EtcdStore::connect(&[&work.endpoint]).await.unwrap());
    let allocators = work
        .nodes
        .iter()
        .map(|node| Arc::new(Allocator::new(store.clone(), node)))
        .collect();
    let held = Arc::new(HeldInDir(work.held.clone()));
    let done = churn(allocators, work.rounds, work.live, &work.tag, held).await;
    assert_eq!(done.assigned, done.released);
    println!("worker {}: {done:?}", work.tag);
    true
}

/// Starts this test again as a worker doing `work`.
fn spawn_worker(test: &str, work: &Work, logs: &Path) -> Child {
    let log = std::fs::File::create(logs.join(format!("worker-{}.log", work.tag))).unwrap();
    Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(WORKER, serde_json::to_string(work).unwrap())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("the worker starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipam_etcd_concurrent_allocator_tasks_with_injected_conflicts_hand_out_no_address_twice() {
    let fixture = EtcdStoreFixture::start("ipam_etcd_concurrent_tasks").await;
    let conflicting = Arc::new(Conflicting::new((*fixture.store).clone(), 4));
    let store: Arc<dyn Backend> = conflicting.clone();
    // 4 blocks of 64 for 6 nodes: two of them borrow.
    pool(&*store, "p", "10.0.0.0/24", 26, |_| {}).await;
    let allocators = (0..12)
        .map(|i| Arc::new(Allocator::new(store.clone(), format!("n{}", i % 6))))
        .collect();
    let done = churn(allocators, 170, 8, "tasks", Arc::new(HeldHere::default())).await;
    assert!(done.assigned >= 1000, "{done:?}");
    assert!(done.borrowed > 0, "{done:?}");
    assert!(conflicting.injected.load(Ordering::Relaxed) > 50);
    let report = check(&*store, false).await.unwrap();
    assert!(report.is_consistent(), "{:#?}", report.problems);
    assert_eq!(
        (report.allocations, report.handles),
        (0, 0),
        "nothing leaked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipam_etcd_separate_allocator_processes_hand_out_no_address_twice_and_leak_none() {
    const TEST: &str =
        "ipam_etcd_separate_allocator_processes_hand_out_no_address_twice_and_leak_none";
    if run_as_worker().await {
        return;
    }
    let fixture = EtcdStoreFixture::start(TEST).await;
    let store = fixture.backend();
    pool(&*store, "p", "10.1.0.0/24", 26, |_| {}).await;
    let held = tempfile::tempdir().unwrap();
    let logs = harness::logs::LogDir::new(TEST).unwrap();
    // Four processes; two allocate for the same node, as a CNI plugin and an agent
    // may, without sharing a lock: they meet only in the datastore.
    let plans = [
        vec!["n1", "n2"],
        vec!["n2", "n3"],
        vec!["n3", "n4"],
        vec!["n5", "n1"],
    ];
    let mut children: Vec<Child> = plans
        .iter()
        .enumerate()
        .map(|(i, nodes)| {
            let work = Work {
                endpoint: fixture.etcd.endpoint(),
                nodes: nodes.iter().map(|n| n.to_string()).collect(),
                rounds: 150,
                live: 8,
                tag: format!("p{i}"),
                held: held.path().to_owned(),
            };
            spawn_worker(TEST, &work, logs.path())
        })
        .collect();
    let statuses: Vec<_> =
        tokio::task::block_in_place(|| children.iter_mut().map(|c| c.wait().unwrap()).collect());
    for (i, status) in statuses.iter().enumerate() {
        let log = std::fs::read_to_string(logs.path().join(format!("worker-p{i}.log"))).unwrap();
        assert!(status.success(), "worker p{i} failed:\n{log}");
        assert!(log.contains(&format!("worker p{i}: Churned")), "{log}");
    }
    let report = check(&*store, false).await.unwrap();
    assert!(report.is_consistent(), "{:#?}", report.problems);
    assert_eq!(
        (report.allocations, report.handles),
        (0, 0),
        "nothing leaked"
    );
    assert_eq!(std::fs::read_dir(held.path()).unwrap().count(), 0);
}

/// A tabby-ipam ADD for pod `crash/<container>` on `node`, started (not waited for).
fn cni_add(endpoint: &str, state: &Path, node: &str, container: &str) -> Child {
    let conf = json!({
        "cniVersion": "1.0.0",
        "name": "net",
        "type": "tabby-cni",
        "datastore_type": "etcdv3",
        "etcd_endpoints": endpoint,
        "nodename": node,
        "ipam": {
            "type": "tabby-ipam",
            "state_dir": state,
        }
    });
    let netns = format!("/var/run/netns/cni-{container}");
    let call = harness::cni::CniCall {
        command: "ADD",
        container,
        netns: &netns,
        args: &format!("K8S_POD_NAMESPACE=crash;K8S_POD_NAME={container}"),
    };
    let plugin = harness::e2e::binary("tabby-ipam").expect("tabby-ipam builds");
    harness::cni::start(&plugin, call, &conf).expect("tabby-ipam starts")
}

fn kill(child: &mut Child) {
    let _ = child.kill(); // SIGKILL; it may have finished already
    let _ = child.wait();
}

/// Nothing owned twice: no address in two places, no block with two owners.
fn assert_never_owned_twice(problems: &[Problem]) {
    let twice: Vec<&Problem> = problems
        .iter()
        .filter(|p| {
            matches!(
                p,
                Problem::DoubleAllocation { .. } | Problem::DoubleOwnership { .. }
            )
        })
        .collect();
    assert!(twice.is_empty(), "{twice:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipam_etcd_killed_allocators_leave_nothing_owned_twice_and_the_controller_reclaims_the_leaks()
 {
    const TEST: &str = "ipam_etcd_killed_allocators_leave_nothing_owned_twice_and_the_controller_reclaims_the_leaks";
    if run_as_worker().await {
        return;
    }
    let fixture = EtcdStoreFixture::start(TEST).await;
    let store = fixture.backend();
    let endpoint = fixture.etcd.endpoint();
    // Small blocks, so claims (and kills during claims) are frequent.
    pool(&*store, "p", "10.2.0.0/22", 28, |_| {}).await;
    for name in ["n1", "n2", "n3", "n4"] {
        support::node(&*store, name, false).await;
    }
    let state = tempfile::tempdir().unwrap();
    let logs = harness::logs::LogDir::new(TEST).unwrap();

    // Pods that live throughout, on every node (whose endpoints make the node's pods
    // judged at all): allocated, then registered as tabby-cni does.
    let mut live = BTreeMap::new();
    for i in 0..5 {
        let pod = format!("live-{i}");
        let node = format!("n{}", 1 + i % 4);
        let allocator = Allocator::new(store.clone(), node.clone());
        let mut request = AssignRequest::new(format!("net.{pod}"), 1, 0);
        request.attrs = BTreeMap::from([
            ("namespace".to_owned(), "default".to_owned()),
            ("pod".to_owned(), pod.clone()),
            ("node".to_owned(), node.clone()),
        ]);
        let ip = allocator.auto_assign(&request).await.unwrap().addresses[0].ip;
        store
            .register_workload(WorkloadEndpointSpec {
                node: node.clone(),
                namespace: "default".into(),
                pod: pod.clone(),
                container_id: pod.clone(),
                endpoint: "eth0".into(),
                interface_name: "cali0123456789a".into(),
                mac: None,
                ip_networks: vec![Cidr(ip.into())],
            })
            .await
            .unwrap();
        live.insert(pod, (node, ip));
    }

    // Allocator processes killed at random points: CNI ADDs (each a process that
    // connects, claims or writes, and saves its view) and long-running workers.
    let held = tempfile::tempdir().unwrap();
    let mut rng = rand::rng();
    let mut finished = 0;
    for round in 0..16 {
        let worker = Work {
            endpoint: endpoint.clone(),
            nodes: vec![
                format!("n{}", 1 + round % 4),
                format!("n{}", 1 + (round + 1) % 4),
            ],
            rounds: 10_000,
            live: 6,
            tag: format!("w{round}"),
            held: held.path().to_owned(),
        };
        let mut worker = spawn_worker(TEST, &worker, logs.path());
        let mut adds: Vec<Child> = (0..4)
            .map(|i| {
                let node = format!("n{}", 1 + (round + i) % 4);
                cni_add(
                    &endpoint,
                    &state.path().join(&node),
                    &node,
                    &format!("c{round}-{i}"),
                )
            })
            .collect();
        // The kill lands wherever each process happens to be by then.
        let delay = Duration::from_millis(rng.random_range(1..60));
        tokio::time::sleep(delay).await;
        for child in &mut adds {
            if child.try_wait().unwrap().is_some_and(|s| s.success()) {
                finished += 1;
            }
            kill(child);
        }
        kill(&mut worker);
    }

    let before = check(&*store, false).await.unwrap();
    assert_never_owned_twice(&before.problems);
    let left = ipam::check::Snapshot::read(&*store).await.unwrap();
    let namespaces: std::collections::BTreeSet<String> = left
        .blocks
        .iter()
        .flat_map(|b| ipam::table::AllocationTable::allocations(&b.spec))
        .filter_map(|a| a.secondary.get("namespace").cloned())
        .collect();
    assert_eq!(
        namespaces,
        ["churn", "crash", "default"].map(String::from).into(),
        "killed workers and killed CNI ADDs both left addresses behind"
    );

    // The controller, run as its binary: passes with no grace until nothing is left.
    let mut reclaimed = 0;
    for _ in 0..4 {
        let output = tokio::task::block_in_place(|| {
            Command::new(harness::e2e::binary("tabby-ipam-controller").unwrap())
                .args(["--datastore-type", "etcdv3", "--etcd-endpoints", &endpoint])
                .args(["--once", "--grace", "0s"])
                .output()
                .unwrap()
        });
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        let count = report["reclaimed"].as_array().unwrap().len();
        assert!(
            report["errors"].as_array().unwrap().is_empty(),
            "{report:#}"
        );
        reclaimed += count;
        if count == 0 {
            break;
        }
    }
    assert!(reclaimed > 0);
    let after = check(&*store, true).await.unwrap();
    assert!(after.is_consistent(), "{:#?}", after.problems);
    assert_eq!(
        after.allocations,
        live.len(),
        "only the live pods hold addresses"
    );
    for (pod, (node, ip)) in &live {
        let held = ipam::handles::addresses_of(&*store, &format!("net.{pod}"), node)
            .await
            .unwrap();
        assert_eq!(
            held.iter().map(|a| a.ip).collect::<Vec<_>>(),
            [*ip],
            "{pod} kept {ip}"
        );
    }
    println!("{finished} ADDs finished before their kill; {reclaimed} objects reclaimed");
}
