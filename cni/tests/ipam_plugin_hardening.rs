//! tabby-ipam's node state under faults: the cached view is only a cache, and the
//! node's lock is not waited for forever. The plugin runs in-process on a memory
//! datastore, one call as one plugin process makes it.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use api::datastore::{Backend, Datastore, MemoryStore};
use api::resources::{Cidr, IPAMHandle, IPPool, IPPoolSpec};
use cni::Outcome;
use futures::FutureExt;
use serde_json::{Value, json};

fn conf(state: &Path) -> String {
    json!({
        "cniVersion": "1.0.0",
        "name": "net",
        "datastore_type": "etcdv3",
        "nodename": "n1",
        "ipam": {"type": "tabby-ipam", "state_dir": state, "lock_timeout": "1s"},
    })
    .to_string()
}

/// A memory datastore with a pool.
fn store() -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    let mut spec = IPPoolSpec::new("10.244.0.0/24".parse::<Cidr>().unwrap());
    spec.block_size = Some(28);
    harness::runtime()
        .block_on(store.create(&IPPool::new("p", spec)))
        .unwrap();
    store
}

/// One plugin call for container `c1`, on its own thread (a plugin process of its
/// own); `None` if it has not answered within `patience`.
fn call(
    store: &Arc<MemoryStore>,
    command: &str,
    conf: String,
    patience: Duration,
) -> Option<Outcome> {
    let store: Arc<dyn Backend> = store.clone();
    let command = command.to_owned();
    let (answered, answer) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let vars = [
            ("CNI_COMMAND", command.as_str()),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_NETNS", "/var/run/netns/c1"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_PATH", "/opt/cni/bin"),
        ];
        let var = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        };
        let connect = move |_: &api::datastore::DatastoreConfig| {
            let store = store.clone();
            async move { Ok(store) }.boxed()
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let outcome = runtime.block_on(cni::ipam_plugin::invoke(&var, conf.as_bytes(), &connect));
        let _ = answered.send(outcome);
    });
    answer.recv_timeout(patience).ok()
}

fn handle(store: &MemoryStore) -> Option<IPAMHandle> {
    harness::runtime()
        .block_on(store.get::<IPAMHandle>("net.c1"))
        .ok()
}

#[test]
fn hardening_a_cache_that_cannot_be_saved_fails_neither_add_nor_del() {
    let state = tempfile::tempdir().unwrap();
    // The view is written aside, then renamed in: a directory in the way makes
    // every save fail, as a full or read-only disk would.
    std::fs::create_dir_all(state.path().join("n1.json.new")).unwrap();
    let store = store();
    let patience = Duration::from_secs(30);

    let add = call(&store, "ADD", conf(state.path()), patience).expect("ADD answers");
    assert!(add.success, "the address is in the datastore: {add:?}");
    let result: Value = serde_json::from_str(&add.stdout).unwrap();
    assert!(result["ips"][0]["address"].is_string(), "{result}");
    assert!(handle(&store).is_some());

    let del = call(&store, "DEL", conf(state.path()), patience).expect("DEL answers");
    assert!(
        del.success,
        "the address is released in the datastore: {del:?}"
    );
    assert!(handle(&store).is_none());
}

#[test]
fn hardening_a_node_lock_held_too_long_is_a_clear_try_again_error() {
    let state = tempfile::tempdir().unwrap();
    // Another plugin process, stuck while it holds the node's lock.
    let held: File = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(state.path().join("lock"))
        .unwrap();
    held.lock().unwrap();
    let store = store();

    let add = call(&store, "ADD", conf(state.path()), Duration::from_secs(20))
        .expect("ADD gives up on the lock instead of waiting forever");
    assert!(!add.success);
    let error: Value = serde_json::from_str(&add.stdout).unwrap();
    assert_eq!(error["code"], 11, "try again later: {error}");
    let msg = error["msg"].as_str().unwrap();
    assert!(
        msg.contains(&state.path().join("lock").display().to_string())
            && msg.contains("still held after 1s"),
        "{msg}"
    );
    assert!(handle(&store).is_none(), "nothing was allocated");

    drop(held);
    let add = call(&store, "ADD", conf(state.path()), Duration::from_secs(20)).unwrap();
    assert!(add.success, "{add:?}");
}
