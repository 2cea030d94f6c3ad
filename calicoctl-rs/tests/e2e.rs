//! End to end against a real etcd, as the Verify list has it: apply a pool
//! from YAML, see it in `get -o wide`, allocate through the CNI IPAM plugin
//! (tabby-ipam, run as a container runtime runs it), `ipam show` counts it, `ipam
//! check` is clean; a pod whose ADD went through IPAM but never came up leaves a
//! leak, `ipam check` finds it with exit 1, `ipam release` fixes it.
//!
//! tabby-cni registers a pod's WorkloadEndpoint after its interface is up (the api
//! crate's workload inventory); tabby-cni itself needs a pod network namespace, so
//! this test registers the endpoint of each pod that "came up" the way tabby-cni does
//! and calls only the IPAM plugin.

mod support;

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Output};

use api::datastore::{Datastore, EtcdStore};
use api::resources::WorkloadEndpointSpec;
use harness::cni::CniCall;
use harness::etcd::Etcd;
use harness::logs::LogDir;
use serde_json::{Value, json};
use support::stdout_of;

struct Cluster {
    etcd: Etcd,
    plugin: PathBuf,
    state: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
}

impl Cluster {
    fn calicoctl(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_calicoctl-rs"))
            .args(["--etcd-endpoints", &self.etcd.endpoint()])
            .args(args)
            .output()
            .expect("calicoctl-rs runs")
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        stdout_of(self.calicoctl(args))
    }

    /// CNI ADD through tabby-ipam for pod `pod` on `node`; the address it gave.
    fn add(&self, node: &str, pod: &str) -> IpAddr {
        let conf = json!({
            "cniVersion": "1.0.0",
            "name": "k8s-pod-network",
            "type": "tabby-cni",
            "datastore_type": "etcdv3",
            "etcd_endpoints": self.etcd.endpoint(),
            "nodename": node,
            "ipam": {
                "type": "tabby-ipam",
                "state_dir": self.state.path().join(node),
            },
        });
        let call = CniCall {
            command: "ADD",
            container: &format!("ctr-{pod}"),
            netns: &format!("/var/run/netns/{pod}"),
            args: &format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod}"),
        };
        let output = harness::cni::run(&self.plugin, call, &conf).expect("tabby-ipam runs");
        let result: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        assert!(output.status.success(), "ADD {pod}: {result} {output:?}");
        let address = result["ips"][0]["address"].as_str().expect("an address");
        let network: ipnet::IpNet = address.parse().unwrap();
        network.addr()
    }

    /// What tabby-cni records once the pod's interface is up.
    fn came_up(&self, node: &str, pod: &str, ip: IpAddr) {
        let endpoint = WorkloadEndpointSpec {
            node: node.into(),
            namespace: "default".into(),
            pod: pod.into(),
            container_id: format!("ctr-{pod}"),
            endpoint: "eth0".into(),
            interface_name: agent_veth(pod),
            mac: None,
            ip_networks: vec![format!("{ip}/32").parse().unwrap()],
        };
        self.runtime.block_on(async {
            let store = EtcdStore::connect(&[self.etcd.endpoint()]).await.unwrap();
            store.register_workload(endpoint).await.unwrap();
        });
    }
}

/// A host-side veth name of the `cali` form tabby-cni uses.
fn agent_veth(pod: &str) -> String {
    format!("cali{:0>11}", &pod[..pod.len().min(11)])
}

#[test]
fn e2e_apply_allocate_check_leak_and_release_against_real_etcd() {
    let logs = LogDir::new("e2e_apply_allocate_check_leak_and_release").unwrap();
    let cluster = Cluster {
        etcd: Etcd::start(&logs).expect("etcd starts"),
        plugin: harness::e2e::binary("tabby-ipam").expect("tabby-ipam builds"),
        state: tempfile::tempdir().unwrap(),
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
    };
    let dir = tempfile::tempdir().unwrap();
    let pool = dir.path().join("pool.yaml");
    std::fs::write(
        &pool,
        "apiVersion: tabby.dev/v1\nkind: IPPool\nmetadata:\n  name: pods\nspec:\n  \
         cidr: 10.66.0.0/24\n  blockSize: 28\n  vxlanMode: CrossSubnet\n  natOutgoing: true\n",
    )
    .unwrap();
    assert_eq!(
        cluster.ok(&["apply", "-f", pool.to_str().unwrap()]),
        "ippool/pods created\n"
    );
    let wide = cluster.ok(&["get", "ippools", "-o", "wide"]);
    assert!(
        wide.lines()
            .nth(1)
            .unwrap()
            .starts_with("pods   10.66.0.0/24   true   Never      CrossSubnet   false      false"),
        "{wide}"
    );

    let web = cluster.add("worker-1", "web-0");
    cluster.came_up("worker-1", "web-0", web);
    let api = cluster.add("worker-1", "api-0");
    cluster.came_up("worker-1", "api-0", api);
    let show = cluster.ok(&["ipam", "show"]);
    assert!(
        show.contains("| IP Pool  | 10.66.0.0/24 | 256       | 2 (1%)"),
        "{show}"
    );
    let held = cluster.ok(&["ipam", "show", "--ip", &web.to_string()]);
    assert!(
        held.contains("in use by pod default/web-0 on node worker-1"),
        "{held}"
    );
    let clean = cluster.ok(&["ipam", "check"]);
    assert!(clean.ends_with("no problems found.\n"), "{clean}");

    // A pod that got its address but never came up: its address leaked.
    let ghost = cluster.add("worker-1", "ghost-0");
    let report = dir.path().join("report.json");
    let report_path = report.to_str().unwrap();
    let check = cluster.calicoctl(&["ipam", "check", "--show-problem-ips", "-o", report_path]);
    assert_eq!(check.status.code(), Some(1));
    let found = String::from_utf8_lossy(&check.stdout);
    assert!(found.contains("1 problem found"), "{found}");
    assert!(found.contains(&format!("{ghost} is leaked")), "{found}");

    // A live pod's address is refused; the leak is released.
    let refused = cluster.calicoctl(&["ipam", "release", "--ip", &web.to_string()]);
    assert_eq!(refused.status.code(), Some(1));
    let released = cluster.ok(&["ipam", "release", "--ip", &ghost.to_string()]);
    assert!(
        released.starts_with(&format!("released {ghost}")),
        "{released}"
    );
    let clean = cluster.ok(&["ipam", "check"]);
    assert!(clean.ends_with("no problems found.\n"), "{clean}");
    let show = cluster.ok(&["ipam", "show"]);
    assert!(show.contains("| 2 (1%)"), "{show}");

    // The pool still holds addresses: deleting it is refused, naming the node.
    let delete = cluster.calicoctl(&["delete", "ippool", "pods"]);
    assert_eq!(delete.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&delete.stderr);
    assert!(
        stderr.contains("still holds 2 allocations (2 on worker-1)"),
        "{stderr}"
    );
}
