//! tabby-ipam run exactly as a container runtime (or tabby-cni delegating to it)
//! runs it: the binary, the CNI environment, the network config on stdin, against a
//! real etcd; results and errors checked against the CNI spec's formats.

mod support;

use std::net::IpAddr;
use std::path::Path;

use api::datastore::{Backend, Datastore};
use api::resources::{IPAMConfig, IPAMConfigSpec, IPAMHandle, IPPool};
use harness::conformance::EtcdFixture;
use ipnet::IpNet;
use serde_json::{Value, json};
use support::{Reply, addresses_of_result, error_of, pool};

struct Runtime<'a> {
    endpoint: String,
    state: &'a Path,
    node: &'a str,
}

impl Runtime<'_> {
    fn conf(&self, version: &str) -> Value {
        json!({
            "cniVersion": version,
            "name": "k8s-pod-network",
            "type": "tabby-cni",
            "mtu": 1440,
            "datastore_type": "etcdv3",
            "etcd_endpoints": self.endpoint,
            "nodename": self.node,
            "ipam": {
                "type": "tabby-ipam",
                "state_dir": self.state,
            },
            "runtimeConfig": {"portMappings": []}
        })
    }

    fn call(&self, command: &str, container: &str, conf: &Value) -> Reply {
        support::call(command, container, conf)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipam_cni_add_check_del_as_a_runtime_calls_them() {
    let fixture = EtcdFixture::start("ipam_cni_add_check_del").await;
    let store: &dyn Backend = fixture.etcd_store();
    pool(store, "p", "10.244.0.0/24", 26).await;
    let state = tempfile::tempdir().unwrap();
    let runtime = Runtime {
        endpoint: fixture.etcd().endpoint(),
        state: state.path(),
        node: "n1",
    };
    let conf = runtime.conf("1.0.0");
    let (add, again, check) = tokio::task::block_in_place(|| {
        let add = runtime.call("ADD", "c1", &conf);
        let again = runtime.call("ADD", "c1", &conf);
        let mut with_prev = conf.clone();
        with_prev["prevResult"] = add.json.clone();
        let check = runtime.call("CHECK", "c1", &with_prev);
        (add, again, check)
    });
    let addresses = addresses_of_result(&add, "1.0.0");
    assert_eq!(addresses.len(), 1);
    assert_eq!(addresses[0].prefix_len(), 32, "a pod address is a /32");
    assert!(
        "10.244.0.0/24"
            .parse::<IpNet>()
            .unwrap()
            .contains(&addresses[0])
    );
    assert_eq!(
        addresses_of_result(&again, "1.0.0"),
        addresses,
        "a repeated ADD returns the first one's address"
    );
    assert!(check.success && check.stdout.is_empty(), "{check:?}");
    let handle: IPAMHandle = store.get("k8s-pod-network.c1").await.unwrap();
    assert_eq!(
        handle.spec.block.values().sum::<u32>(),
        1,
        "one address, counted once"
    );

    let (del, del_again, del_unknown, check_after) = tokio::task::block_in_place(|| {
        let mut with_prev = conf.clone();
        with_prev["prevResult"] = add.json.clone();
        (
            runtime.call("DEL", "c1", &conf),
            runtime.call("DEL", "c1", &conf),
            runtime.call("DEL", "never-added", &conf),
            runtime.call("CHECK", "c1", &with_prev),
        )
    });
    for del in [&del, &del_again, &del_unknown] {
        assert!(del.success && del.stdout.is_empty(), "{del:?}");
    }
    let (code, msg) = error_of(&check_after);
    assert_eq!(code, 102);
    assert!(
        msg.contains("holds no address") && msg.contains("re-add the pod"),
        "{msg}"
    );
    let report = ipam::check::check(store, false).await.unwrap();
    assert_eq!((report.allocations, report.handles), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipam_cni_speaks_each_supported_version_and_reports_them() {
    let fixture = EtcdFixture::start("ipam_cni_versions").await;
    let store: &dyn Backend = fixture.etcd_store();
    pool(store, "v4", "10.244.0.0/24", 26).await;
    pool(store, "v6", "fd00:244::/120", 122).await;
    let state = tempfile::tempdir().unwrap();
    let runtime = Runtime {
        endpoint: fixture.etcd().endpoint(),
        state: state.path(),
        node: "n1",
    };
    let mut dual = runtime.conf("0.4.0");
    dual["ipam"]["assign_ipv6"] = json!("true");
    let (legacy, version) = tokio::task::block_in_place(|| {
        let version = runtime.call("VERSION", "", &json!({"cniVersion": "0.4.0"}));
        (runtime.call("ADD", "c1", &dual), version)
    });
    let addresses = addresses_of_result(&legacy, "0.4.0");
    let families: Vec<bool> = addresses.iter().map(|a| a.addr().is_ipv4()).collect();
    assert_eq!(families, [true, false]);
    assert_eq!(addresses[1].prefix_len(), 128);
    assert_eq!(legacy.json["ips"][0]["version"], "4");
    assert_eq!(legacy.json["ips"][1]["version"], "6");
    assert_eq!(
        version.json,
        json!({"cniVersion": "0.4.0", "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipam_cni_errors_carry_the_specs_codes_and_say_what_to_do() {
    let fixture = EtcdFixture::start("ipam_cni_errors").await;
    let store: &dyn Backend = fixture.etcd_store();
    pool(store, "tiny", "10.244.0.0/31", 31).await;
    let strict = IPAMConfigSpec {
        strict_affinity: true,
        ..IPAMConfigSpec::default()
    };
    store
        .create(&IPAMConfig::new("default", strict))
        .await
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let runtime = Runtime {
        endpoint: fixture.etcd().endpoint(),
        state: state.path(),
        node: "n3",
    };
    let conf = runtime.conf("1.0.0");
    let mut typo = conf.clone();
    typo["ipam"]["etcd_endpoint"] = json!("http://127.0.0.1:1");
    let mut unreachable = conf.clone();
    unreachable["etcd_endpoints"] = json!(format!(
        "http://127.0.0.1:{}",
        harness::etcd::free_port().unwrap()
    ));
    let replies = tokio::task::block_in_place(|| {
        [
            runtime.call("ADD", "c1", &conf),
            runtime.call("ADD", "c2", &conf),
            runtime.call("ADD", "c3", &conf),
            runtime.call("ADD", "c4", &typo),
            runtime.call("ADD", "c5", &unreachable),
            runtime.call("ADD", "c6", &json!({"cniVersion": "0.1.0", "name": "x"})),
        ]
    });
    addresses_of_result(&replies[0], "1.0.0");
    addresses_of_result(&replies[1], "1.0.0");
    let (code, msg) = error_of(&replies[2]);
    assert_eq!(code, 100);
    assert!(
        msg.starts_with(
            "pool 10.244.0.0/31 has no free block for node n3 and strictAffinity forbids borrowing"
        ),
        "{msg}"
    );
    assert!(msg.contains("add an IPPool"), "{msg}");
    let (code, msg) = error_of(&replies[3]);
    assert_eq!(code, 7);
    assert!(msg.contains("ipam: unknown field `etcd_endpoint`"), "{msg}");
    let (code, msg) = error_of(&replies[4]);
    assert_eq!(code, 11, "try again later: {msg}");
    assert!(msg.contains("check etcd_endpoints"), "{msg}");
    let (code, msg) = error_of(&replies[5]);
    assert_eq!(code, 1);
    assert!(
        msg.contains("set the network config's cniVersion to one of"),
        "{msg}"
    );
    assert_eq!(replies[5].json["cniVersion"], "1.0.0");
    // A pool exists only in the datastore; the plugin changes nothing on failure.
    let pools = ipam::cas::list_all::<IPPool>(store).await.unwrap();
    assert_eq!(pools.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipam_cni_gives_a_requested_address_and_gc_drops_unlisted_attachments() {
    let fixture = EtcdFixture::start("ipam_cni_requested_and_gc").await;
    let store: &dyn Backend = fixture.etcd_store();
    pool(store, "p", "10.244.0.0/24", 26).await;
    let state = tempfile::tempdir().unwrap();
    let runtime = Runtime {
        endpoint: fixture.etcd().endpoint(),
        state: state.path(),
        node: "n1",
    };
    let mut requested = runtime.conf("1.0.0");
    requested["runtimeConfig"]["ips"] = json!(["10.244.0.77/32"]);
    let mut gc = runtime.conf("1.1.0");
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "keep", "ifname": "eth0"}]);
    let (explicit, keep, drop, status, collected) = tokio::task::block_in_place(|| {
        let explicit = runtime.call("ADD", "fixed", &requested);
        let keep = runtime.call("ADD", "keep", &runtime.conf("1.0.0"));
        let drop = runtime.call("ADD", "drop", &runtime.conf("1.0.0"));
        let status = runtime.call("STATUS", "", &runtime.conf("1.1.0"));
        let collected = runtime.call("GC", "", &gc);
        (explicit, keep, drop, status, collected)
    });
    let ip: IpAddr = "10.244.0.77".parse().unwrap();
    assert_eq!(addresses_of_result(&explicit, "1.0.0")[0].addr(), ip);
    addresses_of_result(&keep, "1.0.0");
    addresses_of_result(&drop, "1.0.0");
    assert!(status.success, "{status:?}");
    assert!(collected.success, "{collected:?}");
    let held = async |handle: &str| {
        ipam::handles::addresses_of(store, handle, "n1")
            .await
            .unwrap()
            .len()
    };
    assert_eq!(held("k8s-pod-network.keep").await, 1);
    assert_eq!(held("k8s-pod-network.drop").await, 0);
    assert_eq!(held("k8s-pod-network.fixed").await, 0, "not listed either");
}
