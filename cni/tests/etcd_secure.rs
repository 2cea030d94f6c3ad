//! Both plugins against etcd as production clusters set it up, named in the CNI
//! config with Calico's keys: TLS with client certificates (`etcd_ca_cert_file`,
//! `etcd_cert_file`, `etcd_key_file`), and authentication with a user that may
//! touch tabby's keys only (`etcd_username`, `etcd_password`).

mod support;

use harness::cni::{HostLocal, one_node_lab, pod_ip, v4_range};
use harness::etcd::Etcd;
use harness::logs::LogDir;
use serde_json::{Value, json};
use support::{addresses_of_result, call, error_of};

const USER: &str = "tabby";
const PASSWORD: &str = "a-long-etcd-password";

/// The datastore keys of a plugin config for `etcd`: its certificates when it
/// speaks TLS, else the user.
fn datastore_keys(etcd: &Etcd) -> Value {
    let mut keys = json!({
        "datastore_type": "etcdv3",
        "etcd_endpoints": etcd.endpoint(),
        "nodename": "n1",
    });
    match etcd.tls() {
        Some(files) => {
            let (cert, key) = files.client();
            keys["etcd_ca_cert_file"] = json!(files.ca());
            keys["etcd_cert_file"] = json!(cert);
            keys["etcd_key_file"] = json!(key);
        }
        None => {
            keys["etcd_username"] = json!(USER);
            keys["etcd_password"] = json!(PASSWORD);
        }
    }
    keys
}

fn with_auth(etcd: &mut Etcd) -> &Etcd {
    etcd.enable_auth(USER, PASSWORD, "/tabby").unwrap();
    etcd
}

/// A pool, written with etcdctl as an operator bootstraps a cluster.
fn pool(etcd: &Etcd) {
    let pool = json!({
        "apiVersion": "tabby.dev/v1", "kind": "IPPool",
        "metadata": {"name": "p"},
        "spec": {"cidr": "10.244.0.0/24", "blockSize": 28},
    });
    etcd.etcdctl(&["put", "/tabby/v1/ippools/p", &pool.to_string()])
        .unwrap();
}

/// ADD, then DEL, through tabby-ipam; the address it gave.
fn add_and_del(etcd: &Etcd, state: &std::path::Path) {
    let mut conf = json!({
        "cniVersion": "1.0.0",
        "name": "k8s-pod-network",
        "type": "tabby-cni",
        "ipam": {"type": "tabby-ipam", "state_dir": state},
    });
    for (key, value) in datastore_keys(etcd).as_object().unwrap() {
        conf[key] = value.clone();
    }
    let add = call("ADD", "c1", &conf);
    let address = addresses_of_result(&add, "1.0.0")[0];
    let handle = etcd
        .etcdctl(&[
            "get",
            "/tabby/v1/ipamhandles/k8s-pod-network.c1",
            "--print-value-only",
        ])
        .unwrap();
    assert!(handle.contains("k8s-pod-network.c1"), "{handle}");
    assert!(call("DEL", "c1", &conf).success);
    let gone = etcd
        .etcdctl(&["get", "/tabby/v1/ipamhandles/k8s-pod-network.c1"])
        .unwrap();
    assert_eq!(gone, "", "DEL released {address}");
    // A wrong secret is a try-again-later naming what to check, not a panic.
    let mut wrong = conf.clone();
    match etcd.tls() {
        Some(_) => wrong["etcd_cert_file"] = json!("/nonexistent/etcd.pem"),
        None => wrong["etcd_password"] = json!("wrong"),
    }
    let (code, msg) = error_of(&call("ADD", "c2", &wrong));
    match etcd.tls() {
        Some(_) => assert_eq!(code, 7, "a file that does not read: {msg}"),
        None => {
            assert_eq!(code, 11, "{msg}");
            assert!(msg.contains("refused user \"tabby\""), "{msg}");
        }
    }
}

#[test]
fn ipam_plugin_allocates_over_etcd_with_tls_client_certificates() {
    let etcd = Etcd::start_tls(LogDir::new("ipam_plugin_etcd_tls").unwrap()).unwrap();
    pool(&etcd);
    add_and_del(&etcd, tempfile::tempdir().unwrap().path());
}

#[test]
fn ipam_plugin_allocates_over_etcd_with_a_user_and_password() {
    let mut etcd = Etcd::start(LogDir::new("ipam_plugin_etcd_auth").unwrap()).unwrap();
    let etcd = with_auth(&mut etcd);
    pool(etcd);
    add_and_del(etcd, tempfile::tempdir().unwrap().path());
}

/// tabby-cni records the pod over the secure connection (its addresses come from
/// host-local here, so that only tabby-cni talks to etcd).
fn records_the_pod(lab: &harness::Lab, etcd: &Etcd) {
    let node = lab.node("n1");
    let mut runtime = HostLocal::new(lab, node, v4_range(), env!("CARGO_BIN_EXE_tabby-cni"));
    for (key, value) in datastore_keys(etcd).as_object().unwrap() {
        runtime.conf[key] = value.clone();
    }
    let web = lab.pod("web").unwrap();
    let ip = pod_ip(&runtime.add("web", &web), 0);
    let key = format!("/tabby/v1/workloadendpoints/{}.web", runtime.namespace());
    let stored: Value =
        serde_json::from_str(&etcd.etcdctl(&["get", &key, "--print-value-only"]).unwrap()).unwrap();
    assert_eq!(stored["spec"]["ipNetworks"], json!([format!("{ip}/32")]));
    assert!(runtime.del("web", Some(&web)).success);
    assert_eq!(etcd.etcdctl(&["get", &key]).unwrap(), "");
}

#[test]
#[ignore = "needs root"]
fn cni_records_the_pod_over_etcd_with_tls_client_certificates() {
    harness::require_root();
    let lab = one_node_lab("cni_etcd_tls");
    let etcd = Etcd::start_local_in(lab.logs(), lab.node("n1").netns(), true).unwrap();
    records_the_pod(&lab, &etcd);
}

#[test]
#[ignore = "needs root"]
fn cni_records_the_pod_over_etcd_with_a_user_and_password() {
    harness::require_root();
    let lab = one_node_lab("cni_etcd_auth");
    let mut etcd = Etcd::start_local_in(lab.logs(), lab.node("n1").netns(), false).unwrap();
    records_the_pod(&lab, with_auth(&mut etcd));
}
