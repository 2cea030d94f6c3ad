//! The `ipam` commands over addresses the `ipam` crate's allocator really assigned
//! (explicitly, so the output is the same on every run), in the memory store.

mod support;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use api::datastore::{Backend, Datastore, MemoryStore};
use api::resources::WorkloadEndpointSpec;
use ipam::Allocator;
use support::{Shell, golden};

const POOLS: &str = "\
apiVersion: tabby.dev/v1
kind: IPPool
metadata: {name: pods}
spec: {cidr: 10.1.0.0/24, blockSize: 28}
---
apiVersion: tabby.dev/v1
kind: IPPool
metadata: {name: old}
spec: {cidr: 10.9.0.0/28, blockSize: 28}
";

struct Cluster {
    shell: Shell,
    store: Arc<dyn Backend>,
    runtime: tokio::runtime::Runtime,
}

impl Cluster {
    fn new() -> Self {
        let store: Arc<dyn Backend> = Arc::new(MemoryStore::new());
        let shell = Shell::on(store.clone());
        shell.apply(POOLS);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Self {
            shell,
            store,
            runtime,
        }
    }

    /// `node` assigns `ip` to pod `namespace/pod`; a live pod also gets its endpoint.
    fn pod(&self, node: &str, ip: &str, pod: &str, live: bool) {
        let ip: IpAddr = ip.parse().unwrap();
        let attrs = BTreeMap::from([
            ("namespace".to_owned(), "default".to_owned()),
            ("pod".to_owned(), pod.to_owned()),
            ("node".to_owned(), node.to_owned()),
        ]);
        self.runtime.block_on(async {
            let allocator = Allocator::new(self.store.clone(), node);
            let handle = format!("k8s-pod-network.{pod}");
            allocator.assign_ip(ip, &handle, attrs).await.unwrap();
            if live {
                let endpoint = WorkloadEndpointSpec {
                    node: node.into(),
                    namespace: "default".into(),
                    pod: pod.into(),
                    container_id: format!("c-{pod}"),
                    endpoint: "eth0".into(),
                    interface_name: format!("cali{pod}"),
                    mac: None,
                    ip_networks: vec![format!("{ip}/32").parse().unwrap()],
                };
                self.store.register_workload(endpoint).await.unwrap();
            }
        });
    }

    /// Three pods on worker-1's block, one on worker-2's, one worker-2 borrowed from
    /// worker-1, one in the old pool.
    fn populated() -> Self {
        let cluster = Self::new();
        for (node, ip, pod) in [
            ("worker-1", "10.1.0.1", "web-0"),
            ("worker-1", "10.1.0.2", "web-1"),
            ("worker-1", "10.1.0.3", "db-0"),
            ("worker-2", "10.1.0.17", "web-2"),
            ("worker-2", "10.1.0.5", "cache-0"),
            ("worker-2", "10.9.0.4", "legacy-0"),
        ] {
            cluster.pod(node, ip, pod, true);
        }
        cluster
    }
}

#[test]
fn ipam_show_counts_per_pool_and_per_block_with_owners() {
    let cluster = Cluster::populated();
    let shell = &cluster.shell;
    golden("ipam-show.txt", &shell.run(&["ipam", "show"]).ok());
    golden(
        "ipam-show-blocks-borrowed.txt",
        &shell
            .run(&["ipam", "show", "--show-blocks", "--show-borrowed"])
            .ok(),
    );
    golden(
        "ipam-show-pool-allocations.txt",
        &shell
            .run(&[
                "ipam",
                "show",
                "--pool",
                "10.9.0.0/28",
                "--show-allocations",
            ])
            .ok(),
    );
    let error = shell.run(&["ipam", "show", "--pool", "nope"]).failed(1);
    assert!(
        error.contains("--pool \"nope\" names no IP pool"),
        "{error}"
    );
}

#[test]
fn ipam_show_ip_says_who_holds_it_or_why_nobody_does() {
    let cluster = Cluster::populated();
    let shell = &cluster.shell;
    let held = shell.run(&["ipam", "show", "--ip", "10.1.0.5"]).ok();
    assert!(
        held.starts_with(
            "IP 10.1.0.5 is in use by pod default/cache-0 on node worker-2\n  \
             handle:   k8s-pod-network.cache-0\n  block:    10.1.0.0/28 (affine to worker-1)\n"
        ),
        "{held}"
    );
    assert_eq!(
        shell.run(&["ipam", "show", "--ip", "10.1.0.9"]).ok(),
        "IP 10.1.0.9 is not assigned (block 10.1.0.0/28 of worker-1)\n"
    );
    assert_eq!(
        shell.run(&["ipam", "show", "--ip", "10.1.0.200"]).ok(),
        "IP 10.1.0.200 is not assigned: it is in pool pods (10.1.0.0/24), but no node has \
         claimed its block\n"
    );
    assert_eq!(
        shell.run(&["ipam", "show", "--ip", "172.16.0.1"]).ok(),
        "IP 172.16.0.1 is not in any IP pool\n"
    );
}

#[test]
fn ipam_check_finds_a_leak_and_release_from_its_report_fixes_it() {
    let cluster = Cluster::populated();
    let shell = &cluster.shell;
    assert_eq!(
        shell.run(&["ipam", "check"]).ok(),
        "Checked 3 blocks, 6 allocations, 6 handles and 3 affinities: no problems found.\n"
    );
    // A pod whose address was assigned but which never came up (or is gone).
    cluster.pod("worker-1", "10.1.0.4", "ghost-0", false);
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let output = shell.run(&["ipam", "check", "-o", report.to_str().unwrap()]);
    assert_eq!(output.code, 1, "{output:?}");
    assert_eq!(
        output.stdout,
        "Checked 3 blocks, 7 allocations, 7 handles and 3 affinities: 1 problem found:\n\
         - 1 address leaked (--show-problem-ips lists them)\n"
    );
    let output = shell.run(&["ipam", "check", "--show-problem-ips"]);
    assert_eq!(output.code, 1, "{output:?}");
    assert_eq!(
        output.stdout,
        "Checked 3 blocks, 7 allocations, 7 handles and 3 affinities: 1 problem found:\n\
         - 10.1.0.4 is leaked: allocated to pod default/ghost-0 on node worker-1, which no \
         longer exists (handle k8s-pod-network.ghost-0); `calicoctl-rs ipam release --ip \
         10.1.0.4` frees it\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["problems"][0]["problem"], "leak");
    assert_eq!(json["problems"][0]["ip"], "10.1.0.4");

    let released = shell
        .run(&["ipam", "release", "--from-report", report.to_str().unwrap()])
        .ok();
    assert_eq!(
        released,
        "released 10.1.0.4 (was pod default/ghost-0 on node worker-1, handle \
         k8s-pod-network.ghost-0)\n"
    );
    assert_eq!(shell.run(&["ipam", "check"]).code, 0);
    // The same report again: the leak is gone, which is skipped, not an error.
    let again = shell.run(&["ipam", "release", "--from-report", report.to_str().unwrap()]);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(
        again.stderr,
        "skipped: IP 10.1.0.4 is not assigned: nothing released\n"
    );
}

#[test]
fn ipam_check_names_double_ownership_handles_without_addresses_and_blocks_without_affinity() {
    let cluster = Cluster::populated();
    // What a crashed or buggy writer could leave: worker-2 confirmed as owner of
    // worker-1's block, a handle holding nothing, a block nobody confirmed.
    let affinity: api::resources::BlockAffinity = api::yaml::from_str(
        "apiVersion: tabby.dev/v1\nkind: BlockAffinity\nmetadata: {name: worker-2-10-1-0-0-28}\n\
         spec: {node: worker-2, cidr: 10.1.0.0/28, state: confirmed}\n",
    )
    .unwrap();
    let handle: api::resources::IPAMHandle = api::yaml::from_str(
        "apiVersion: tabby.dev/v1\nkind: IPAMHandle\nmetadata: {name: k8s-pod-network.gone-0}\n\
         spec: {handleID: k8s-pod-network.gone-0}\n",
    )
    .unwrap();
    let block: api::resources::IPAMBlock = api::yaml::from_str(
        "apiVersion: tabby.dev/v1\nkind: IPAMBlock\nmetadata: {name: 10-1-0-64-28}\n\
         spec: {cidr: 10.1.0.64/28, affinity: 'host:worker-3'}\n",
    )
    .unwrap();
    cluster.runtime.block_on(async {
        cluster.store.create(&affinity).await.unwrap();
        cluster.store.create(&handle).await.unwrap();
        cluster.store.create(&block).await.unwrap();
    });
    let output = cluster.shell.run(&["ipam", "check", "-o", "-"]);
    assert_eq!(output.code, 1, "{output:?}");
    golden("ipam-check-problems.txt", &output.stderr);
    let report: serde_json::Value = serde_json::from_str(&output.stdout).unwrap();
    let kinds: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["problem"].as_str().unwrap())
        .collect();
    for expected in [
        "doubleOwnership",
        "handleWithoutAddresses",
        "blockWithoutAffinity",
    ] {
        assert!(kinds.contains(&expected), "{expected} not in {kinds:?}");
    }
}

#[test]
fn ipam_release_refuses_a_live_pods_address_unless_forced() {
    let cluster = Cluster::populated();
    let shell = &cluster.shell;
    let error = shell
        .run(&["ipam", "release", "--ip", "10.1.0.2"])
        .failed(1);
    assert_eq!(
        error,
        "error: IP 10.1.0.2 is in use by pod default/web-1 on node worker-1, which exists: \
         releasing it would let IPAM hand it out again; release it anyway with --force"
    );
    let held = shell.run(&["ipam", "show", "--ip", "10.1.0.2"]).ok();
    assert!(held.contains("in use by pod default/web-1"), "{held}");
    shell
        .run(&["ipam", "release", "--ip", "10.1.0.2", "--force"])
        .ok();
    let free = shell.run(&["ipam", "show", "--ip", "10.1.0.2"]).ok();
    assert!(free.contains("is not assigned"), "{free}");
    let missing = shell
        .run(&["ipam", "release", "--ip", "10.1.0.2"])
        .failed(1);
    assert_eq!(
        missing,
        "error: IP 10.1.0.2 is not assigned: nothing released"
    );
    assert_eq!(shell.run(&["ipam", "release"]).code, 2);
}

#[test]
fn deleting_a_pool_in_use_lists_who_holds_it_and_ipam_show_agrees() {
    let cluster = Cluster::populated();
    let shell = &cluster.shell;
    let error = shell.run(&["delete", "ippool", "old"]).failed(1);
    assert!(
        error.starts_with(
            "error: IPPool \"old\" (10.9.0.0/28) still holds 1 allocation (1 on worker-2)"
        ),
        "{error}"
    );
    shell
        .run(&[
            "patch",
            "ippool",
            "old",
            "-p",
            r#"{"spec":{"disabled":true}}"#,
        ])
        .ok();
    let allocations = shell
        .run(&["ipam", "show", "--pool", "old", "--show-allocations"])
        .ok();
    assert!(
        allocations.contains("pod default/legacy-0 on node worker-2"),
        "{allocations}"
    );
    shell
        .run(&["ipam", "release", "--ip", "10.9.0.4", "--force"])
        .ok();
    assert_eq!(
        shell.run(&["delete", "ippool", "old"]).ok(),
        "ippool/old deleted\n"
    );
}
