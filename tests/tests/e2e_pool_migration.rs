//! The pool migration of `docs/pool-migration.md`, step by step with the page's
//! calicoctl-rs commands: pods run from pool A; pool B is created and A disabled;
//! the pods are recreated (CNI DEL, then ADD, as a runtime does) and land in B;
//! deleting A is refused while it holds addresses, with the count per node; the
//! IPAM garbage collector releases A's emptied blocks, every node withdraws their
//! routes, and A is deleted. Three nodes on one subnet, real agents and etcd.
//! Needs root.

use std::process::Output;
use std::time::{Duration, Instant};

use api::resources::IPPool;
use harness::Lab;
use harness::e2e::{Cluster, Pod, ping_all};
use ipnet::IpNet;

const READY: Duration = Duration::from_secs(60);
const CONVERGED: Duration = Duration::from_secs(30);
const NODES: [&str; 3] = ["n1", "n2", "n3"];
const POOL_A: &str = "10.244.0.0/16";
const POOL_B: &str = "10.245.0.0/16";

/// `calicoctl-rs ARGS` against the cluster.
fn calicoctl(cluster: &Cluster, args: &[&str]) -> Output {
    cluster.calicoctl().unwrap().args(args).output().unwrap()
}

/// As [`calicoctl`], which must succeed; its standard output.
fn ok(cluster: &Cluster, args: &[&str]) -> String {
    let output = calicoctl(cluster, args);
    assert!(output.status.success(), "calicoctl-rs {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

fn apply_pool(cluster: &Cluster, name: &str, cidr: &str) {
    let file = cluster.dir().join(format!("{name}.yaml"));
    let yaml = format!(
        "apiVersion: tabby.dev/v1\nkind: IPPool\nmetadata:\n  name: {name}\nspec:\n  \
         cidr: {cidr}\n  natOutgoing: true\n"
    );
    std::fs::write(&file, yaml).unwrap();
    ok(cluster, &["apply", "-f", &file.display().to_string()]);
}

/// Every pod's address is in `pool`.
fn assert_in(pods: &[Pod], pool: &str) {
    let pool: IpNet = pool.parse().unwrap();
    for pod in pods {
        assert!(pool.contains(&pod.ip), "{} has {}", pod.name, pod.ip);
    }
}

/// Whether some node still owns a block of `pool`.
fn has_blocks(cluster: &Cluster, pool: &str) -> bool {
    let pool: IpNet = pool.parse().unwrap();
    let facts = cluster.facts().unwrap();
    facts
        .owners
        .values()
        .flatten()
        .any(|block| pool.contains(block))
}

#[test]
#[ignore = "needs root"]
fn e2e_migration_pods_move_to_the_new_pool_and_the_old_one_is_deleted_once_empty() {
    harness::require_root();
    let mut builder = Lab::new("e2e_migration")
        .subnet("a", "10.0.1.0/24")
        .router();
    for node in NODES {
        builder = builder.node(node, "a");
    }
    let mut cluster = Cluster::new(builder.build().unwrap()).unwrap();
    // calicoctl-rs, as an operator runs it, reads etcd's default prefix.
    cluster.set_prefix(api::datastore::ETCD_DEFAULT_PREFIX);
    apply_pool(&cluster, "pool-a", POOL_A);
    cluster.start_agents(&NODES, READY).unwrap();
    let pods = cluster.add_pod_per_node(&NODES).unwrap();
    assert_in(&pods, POOL_A);
    cluster.wait_for_routes(&NODES, &pods, CONVERGED).unwrap();

    // 1. The new pool; 2. the old one disabled.
    apply_pool(&cluster, "pool-b", POOL_B);
    ok(
        &cluster,
        &[
            "patch",
            "ippool",
            "pool-a",
            "-p",
            r#"{"spec":{"disabled":true}}"#,
        ],
    );
    // 4 (too early). Refused while pods hold addresses, with the count per node.
    let refused = calicoctl(&cluster, &["delete", "ippool", "pool-a"]);
    assert!(!refused.status.success(), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(
            "IPPool \"pool-a\" (10.244.0.0/16) still holds 3 allocations (1 on n1, 1 on n2, 1 on n3)"
        ),
        "{stderr}"
    );

    // 3. Every pod recreated: CNI DEL, then ADD, as the runtime does.
    let mut moved = Vec::new();
    for pod in pods {
        let (node, name) = (pod.node.clone(), pod.name.clone());
        cluster.delete_pod(pod).unwrap();
        moved.push(cluster.add_pod(&node, &name).unwrap());
    }
    assert_in(&moved, POOL_B);
    let shown = ok(
        &cluster,
        &["ipam", "show", "--pool", POOL_A, "--show-allocations"],
    );
    let pool_row = shown
        .lines()
        .find(|l| l.contains("IP Pool"))
        .unwrap_or_default();
    assert!(
        pool_row.contains("| 0 (0%) "),
        "nobody left in pool A: {shown}"
    );

    assert!(
        has_blocks(&cluster, POOL_A),
        "the emptied blocks are still A's"
    );
    // The IPAM controller's collector releases A's emptied blocks (a grace period
    // of zero: a pass notes them, a later one releases them). Nothing else may go:
    // the moved pods' addresses stay.
    let reclaimed = cluster
        .datastore(async |store| {
            let mut collector = ipam::gc::Collector::new(store, Duration::ZERO);
            let mut reclaimed = Vec::new();
            for _ in 0..10 {
                let report = collector.run_once(Instant::now()).await?;
                assert_eq!(report.errors, Vec::<String>::new());
                reclaimed.extend(report.reclaimed.iter().map(ipam::gc::describe));
                if !report.candidates.is_empty() {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                break;
            }
            anyhow::Ok(reclaimed)
        })
        .unwrap()
        .unwrap();
    assert!(!has_blocks(&cluster, POOL_A), "reclaimed {reclaimed:#?}");
    assert!(
        reclaimed.iter().all(|r| !r.contains("10.245.")),
        "{reclaimed:#?}"
    );
    // Every node's table: B's blocks only, A's routes and blackholes withdrawn.
    cluster.wait_for_routes(&NODES, &moved, CONVERGED).unwrap();
    ping_all(&moved).unwrap();

    // 4. Now the delete succeeds.
    ok(&cluster, &["delete", "ippool", "pool-a"]);
    let pools = cluster
        .datastore(async |store| {
            use api::datastore::Datastore;
            store.list::<IPPool>(&Default::default()).await
        })
        .unwrap()
        .unwrap();
    let names: Vec<&str> = pools
        .items
        .iter()
        .map(|p| p.metadata.name.as_str())
        .collect();
    assert_eq!(names, ["pool-b"]);
}
