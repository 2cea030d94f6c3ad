//! tabby-ipam and tabby-ipam-controller on the kubernetes datastore, run as their
//! binaries against the Kubernetes API double (`harness::kube_api`: no real API server
//! can be installed here) with `manifests/crds/crds.yaml` installed, reached through a
//! kubeconfig file as a node's CNI config and the controller's deployment reach a
//! cluster. Pods and nodes are the double's core Pods and Nodes, as on a cluster.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use api::datastore::{Backend, Datastore, ListOptions};
use api::resources::BlockAffinity;
use harness::conformance::{Fixture, KubeFixture};
use serde_json::{Value, json};
use support::{addresses_of_result, call, error_of, pool};

/// A kubeconfig for a server without authentication, as `kubectl config` writes one.
fn kubeconfig(dir: &Path, server: &str) -> PathBuf {
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\n\
         clusters:\n- name: double\n  cluster:\n    server: {server}\n\
         users:\n- name: nobody\n  user: {{}}\n\
         contexts:\n- name: double\n  context:\n    cluster: double\n    user: nobody\n\
         current-context: double\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn conf(kubeconfig: &Path, state: &Path, node: &str) -> Value {
    json!({
        "cniVersion": "1.0.0",
        "name": "k8s-pod-network",
        "type": "tabby-cni",
        "datastore_type": "kubernetes",
        "kubernetes": {"kubeconfig": kubeconfig},
        "nodename": node,
        "ipam": {
            "type": "tabby-ipam",
            "state_dir": state,
        }
    })
}

/// One controller pass with no grace; `KUBECONFIG` only as `env_kubeconfig` says.
fn controller(args: &[&str], env_kubeconfig: Option<&Path>) -> Output {
    let binary = harness::e2e::binary("tabby-ipam-controller").expect("the controller builds");
    let mut command = Command::new(binary);
    command
        .args(args)
        .args(["--once", "--grace", "0s"])
        .env_remove("KUBECONFIG");
    if let Some(path) = env_kubeconfig {
        command.env("KUBECONFIG", path);
    }
    command.output().expect("tabby-ipam-controller runs")
}

fn report_of(output: &Output) -> Value {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        report["errors"].as_array().unwrap().is_empty(),
        "{report:#}"
    );
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipam_kubernetes_plugin_and_controller_allocate_and_collect_through_a_kubeconfig() {
    let fixture = KubeFixture::start("ipam_kubernetes_plugin_and_controller").await;
    let store: &dyn Backend = fixture.kube_store();
    pool(store, "p", "10.244.0.0/24", 26).await;
    fixture.add_node("n1").await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig(dir.path(), &fixture.api().url());
    let on_n1 = conf(&kubeconfig, &dir.path().join("n1"), "n1");
    // `gone` is a node the cluster no longer has: its pod, its block, its affinity go.
    let on_gone = conf(&kubeconfig, &dir.path().join("gone"), "gone");

    let (live, dead, orphan, check) = tokio::task::block_in_place(|| {
        let live = call("ADD", "live", &on_n1);
        let dead = call("ADD", "dead", &on_n1);
        let orphan = call("ADD", "orphan", &on_gone);
        let mut with_prev = on_n1.clone();
        with_prev["prevResult"] = live.json.clone();
        (live, dead, orphan, call("CHECK", "live", &with_prev))
    });
    let live_ip = addresses_of_result(&live, "1.0.0")[0].addr();
    let dead_ip = addresses_of_result(&dead, "1.0.0")[0].addr();
    addresses_of_result(&orphan, "1.0.0");
    assert!(check.success && check.stdout.is_empty(), "{check:?}");
    // The kubelet reports the live pod's address; the dead one's pod never started.
    fixture
        .start_pod("default", "pod-live", "n1", live_ip)
        .await;

    // First pass: credentials from $KUBECONFIG (what an unconfigured controller
    // infers); later passes name the file. Passes until nothing is left to reclaim.
    let mut reclaimed = Vec::new();
    for pass in 0..4 {
        let output = tokio::task::block_in_place(|| match pass {
            0 => controller(&[], Some(&kubeconfig)),
            _ => controller(&["--kubeconfig", kubeconfig.to_str().unwrap()], None),
        });
        let report = report_of(&output);
        let this_pass = report["reclaimed"].as_array().unwrap().clone();
        if this_pass.is_empty() {
            break;
        }
        reclaimed.extend(this_pass);
    }
    let ips: Vec<&str> = reclaimed
        .iter()
        .filter(|t| t["target"] == "address")
        .filter_map(|t| t["ip"].as_str())
        .collect();
    assert_eq!(
        ips.len(),
        2,
        "the dead pod's and the orphan's: {reclaimed:#?}"
    );
    assert!(
        ips.contains(&dead_ip.to_string().as_str()),
        "{reclaimed:#?}"
    );
    assert!(
        !ips.contains(&live_ip.to_string().as_str()),
        "{reclaimed:#?}"
    );
    let affinities = store
        .list::<BlockAffinity>(&ListOptions::default())
        .await
        .unwrap()
        .items;
    let nodes: Vec<&str> = affinities.iter().map(|a| a.spec.node.as_str()).collect();
    assert_eq!(nodes, ["n1"], "the deleted node's affinity is gone");
    let report = ipam::check::check(store, true).await.unwrap();
    assert!(report.is_consistent(), "{:#?}", report.problems);
    assert_eq!(report.allocations, 1, "only the live pod holds an address");
    let held = ipam::handles::addresses_of(store, "k8s-pod-network.live", "n1")
        .await
        .unwrap();
    assert_eq!(held.iter().map(|a| a.ip).collect::<Vec<_>>(), [live_ip]);

    let (del, del_again, del_unknown) = tokio::task::block_in_place(|| {
        (
            call("DEL", "live", &on_n1),
            call("DEL", "live", &on_n1),
            call("DEL", "never-added", &on_n1),
        )
    });
    for del in [&del, &del_again, &del_unknown] {
        assert!(del.success && del.stdout.is_empty(), "{del:?}");
    }
    let report = ipam::check::check(store, false).await.unwrap();
    assert_eq!((report.allocations, report.handles), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipam_kubernetes_a_bad_kubeconfig_or_an_absent_server_is_an_error_saying_which() {
    let fixture = KubeFixture::start("ipam_kubernetes_errors").await;
    pool(fixture.kube_store(), "p", "10.244.0.0/24", 26).await;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-kubeconfig");
    let state = dir.path().join("state");
    let absent = format!("http://127.0.0.1:{}", harness::etcd::free_port().unwrap());
    let mut no_server = conf(&missing, &state, "n1");
    no_server["kubernetes"] = json!({"k8s_api_root": absent});
    let (bad_file, unreachable, controller_bad_file) = tokio::task::block_in_place(|| {
        (
            call("ADD", "c1", &conf(&missing, &state, "n1")),
            call("ADD", "c2", &no_server),
            controller(&["--kubeconfig", missing.to_str().unwrap()], None),
        )
    });
    let (code, msg) = error_of(&bad_file);
    assert_eq!(code, 7, "a configuration error: {msg}");
    assert!(
        msg.contains(&format!("kubeconfig {}", missing.display()))
            && msg.contains("check kubernetes.kubeconfig"),
        "{msg}"
    );
    let (code, msg) = error_of(&unreachable);
    assert_eq!(code, 11, "try again later: {msg}");
    assert!(msg.contains("the runtime retries"), "{msg}");
    assert!(!controller_bad_file.status.success());
    let stderr = String::from_utf8_lossy(&controller_bad_file.stderr);
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
}

/// A pod whose sandbox was replaced: the kubelet still reports the first sandbox's
/// address while the CNI plugin has recorded the new one's. The collector judges by
/// the recorded sandbox, not by the stale podIPs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hardening_gc_keeps_a_new_sandboxes_address_while_the_pods_ips_are_stale() {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use api::resources::{Cidr, WorkloadEndpointSpec};
    use ipam::gc::{Collector, Target};
    use ipam::table::attr;
    use ipam::{Allocator, AssignRequest};

    let fixture = KubeFixture::start("hardening_gc_keeps_a_new_sandboxes_address").await;
    let store: Arc<dyn Backend> = Arc::new(fixture.kube_store().clone());
    pool(&*store, "p", "10.244.0.0/24", 26).await;
    fixture.add_node("n1").await;
    let n1 = Allocator::new(store.clone(), "n1");
    let address = async |container: &str| {
        let mut request = AssignRequest::new(format!("k8s-pod-network.{container}"), 1, 0);
        request.attrs = BTreeMap::from([
            (attr::NAMESPACE.to_owned(), "default".to_owned()),
            (attr::POD.to_owned(), "web".to_owned()),
            (attr::NODE.to_owned(), "n1".to_owned()),
            (attr::CONTAINER_ID.to_owned(), container.to_owned()),
            (attr::INTERFACE.to_owned(), "eth0".to_owned()),
        ]);
        n1.auto_assign(&request).await.unwrap().addresses[0].ip
    };
    let first = address("c1").await;
    fixture.start_pod("default", "web", "n1", first).await;
    let second = address("c2").await;
    store
        .register_workload(WorkloadEndpointSpec {
            node: "n1".into(),
            namespace: "default".into(),
            pod: "web".into(),
            container_id: "c2".into(),
            endpoint: "eth0".into(),
            interface_name: "cali0123456789a".into(),
            mac: None,
            ip_networks: vec![Cidr(second.into())],
        })
        .await
        .unwrap();

    let mut gc = Collector::new(store.clone(), Duration::ZERO);
    let report = gc.run_once(Instant::now()).await.unwrap();
    let freed: Vec<_> = report
        .reclaimed
        .iter()
        .filter_map(|t| match t {
            Target::Address { ip, .. } => Some(*ip),
            _ => None,
        })
        .collect();
    assert_eq!(freed, [first], "{report:#?}");
}
