//! Datastore doubles around a real backend: one that injects write conflicts (a
//! competing writer bumps the object's revision just before the caller's
//! compare-and-swap lands), one that counts calls and round trips. Both pass
//! everything else through. And what the IPAM tests share: pools, nodes, churn.

#![allow(dead_code)] // each test binary uses part of this module

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use api::datastore::{
    Backend, Datastore, Kind, List, ListOptions, MemoryStore, Record, Result, WatchStream, Write,
};
use api::resources::{Cidr, IPAMConfig, IPAMConfigSpec, IPPool, IPPoolSpec, Resource, Revision};
use async_trait::async_trait;
use serde_json::Value;

/// Injects a real conflict into one in `every` CAS writes (updates and deletes at a
/// revision): the object is rewritten unchanged first, so its revision moves on.
#[derive(Debug)]
pub struct Conflicting<B> {
    inner: B,
    every: u64,
    writes: AtomicU64,
    pub injected: AtomicU64,
}

impl<B: Backend> Conflicting<B> {
    pub fn new(inner: B, every: u64) -> Self {
        Self {
            inner,
            every,
            writes: AtomicU64::new(0),
            injected: AtomicU64::new(0),
        }
    }

    async fn maybe_conflict(&self, kind: Kind, name: &str) {
        if self.writes.fetch_add(1, Ordering::Relaxed) % self.every != self.every - 1 {
            return;
        }
        if let Ok(current) = self.inner.get_record(kind, name).await
            && self
                .inner
                .update_record(kind, name, current.value, current.revision)
                .await
                .is_ok()
        {
            self.injected.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[async_trait]
impl<B: Backend> Backend for Conflicting<B> {
    async fn get_record(&self, kind: Kind, name: &str) -> Result<Record> {
        self.inner.get_record(kind, name).await
    }
    async fn list_records(&self, kind: Kind, options: &ListOptions) -> Result<List<Record>> {
        self.inner.list_records(kind, options).await
    }
    async fn create_record(&self, kind: Kind, name: &str, value: Value) -> Result<Record> {
        self.inner.create_record(kind, name, value).await
    }
    async fn update_record(
        &self,
        kind: Kind,
        name: &str,
        value: Value,
        expected: Revision,
    ) -> Result<Record> {
        self.maybe_conflict(kind, name).await;
        self.inner.update_record(kind, name, value, expected).await
    }
    async fn delete_record(
        &self,
        kind: Kind,
        name: &str,
        expected: Option<Revision>,
    ) -> Result<Record> {
        if expected.is_some() {
            self.maybe_conflict(kind, name).await;
        }
        self.inner.delete_record(kind, name, expected).await
    }
    async fn watch_records(&self, kind: Kind, from: Revision) -> Result<WatchStream<Record>> {
        self.inner.watch_records(kind, from).await
    }
}

/// Creates node `name`, with a BGP address when `bgp` (IPIP needs one).
pub async fn node(store: &dyn Backend, name: &str, bgp: bool) {
    let spec = api::resources::NodeSpec {
        bgp: bgp.then(|| api::resources::NodeBgpSpec {
            ipv4_address: Some("192.0.2.1/24".parse().unwrap()),
            ..Default::default()
        }),
        ..Default::default()
    };
    store
        .create(&api::resources::Node::new(name, spec))
        .await
        .unwrap();
}

pub fn memory() -> Arc<dyn Backend> {
    Arc::new(MemoryStore::new())
}

/// Creates pool `name` with `cidr` and block size `block`, edited by `edit`.
pub async fn pool(
    store: &dyn Backend,
    name: &str,
    cidr: &str,
    block: u8,
    edit: impl FnOnce(&mut IPPoolSpec),
) -> IPPool {
    let mut spec = IPPoolSpec::new(cidr.parse::<Cidr>().unwrap());
    spec.block_size = Some(block);
    edit(&mut spec);
    store.create(&IPPool::new(name, spec)).await.unwrap()
}

/// Writes the IPAMConfig, edited from the defaults.
pub async fn ipam_config(store: &dyn Backend, edit: impl FnOnce(&mut IPAMConfigSpec)) {
    let mut spec = IPAMConfigSpec::default();
    edit(&mut spec);
    match store.get::<IPAMConfig>("default").await {
        Ok(mut config) => {
            config.spec = spec;
            store.update(&config).await.unwrap();
        }
        Err(_) => {
            store
                .create(&IPAMConfig::new("default", spec))
                .await
                .unwrap();
        }
    }
}

/// Re-reads `resource` and applies `edit` with a CAS write.
pub async fn edit<R: Resource>(store: &dyn Backend, name: &str, edit: impl FnOnce(&mut R)) {
    let mut current: R = store.get(name).await.unwrap();
    edit(&mut current);
    store.update(&current).await.unwrap();
}

/// What [`churn`] did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Churned {
    pub assigned: usize,
    pub released: usize,
    pub borrowed: usize,
}

/// Who holds which address right now, as the allocators' callers see it: a second
/// holder of one address is a duplicate.
pub trait Holders: Send + Sync {
    /// Records `handle` holding `ip`; the other holder when there is one.
    fn hold(&self, ip: std::net::IpAddr, handle: &str) -> Result<(), String>;
    /// Called before the address is freed: from then on another may get it.
    fn forget(&self, ip: std::net::IpAddr);
}

/// Holders within one process.
#[derive(Debug, Default)]
pub struct HeldHere(Mutex<BTreeMap<std::net::IpAddr, String>>);

impl Holders for HeldHere {
    fn hold(&self, ip: std::net::IpAddr, handle: &str) -> Result<(), String> {
        match self.0.lock().unwrap().insert(ip, handle.to_owned()) {
            Some(other) => Err(other),
            None => Ok(()),
        }
    }
    fn forget(&self, ip: std::net::IpAddr) {
        self.0.lock().unwrap().remove(&ip);
    }
}

/// Holders across processes: one file per held address in a shared directory,
/// created exclusively, so a second holder anywhere fails to create it.
#[derive(Debug)]
pub struct HeldInDir(pub std::path::PathBuf);

impl Holders for HeldInDir {
    fn hold(&self, ip: std::net::IpAddr, handle: &str) -> Result<(), String> {
        use std::io::Write;
        let path = self.0.join(ip.to_string());
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut file) => {
                file.write_all(handle.as_bytes()).unwrap();
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(std::fs::read_to_string(&path).unwrap_or_default())
            }
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
    fn forget(&self, ip: std::net::IpAddr) {
        std::fs::remove_file(self.0.join(ip.to_string())).unwrap();
    }
}

/// Every allocator runs `rounds` steps at once: assign one IPv4 address to a new
/// handle (as pod `churn/<handle>`), or (at random, and always once `live` are
/// held) release one it holds. Every address handed out is recorded in `held`,
/// which fails on a duplicate. At the end everything is released.
pub async fn churn(
    allocators: Vec<Arc<ipam::Allocator>>,
    rounds: usize,
    live: usize,
    tag: &str,
    held: Arc<dyn Holders>,
) -> Churned {
    use rand::Rng;
    let tasks = allocators.into_iter().enumerate().map(|(i, allocator)| {
        let held = held.clone();
        let tag = tag.to_owned();
        tokio::spawn(async move {
            let mut mine: Vec<(String, std::net::IpAddr)> = Vec::new();
            let mut done = Churned::default();
            for round in 0..rounds + live {
                let release = round >= rounds
                    || mine.len() >= live
                    || (!mine.is_empty() && rand::rng().random_bool(0.3));
                if release {
                    let Some((handle, ip)) = mine.pop() else {
                        break;
                    };
                    held.forget(ip);
                    let freed = allocator.release_handle(&handle).await.unwrap();
                    assert_eq!(freed.len(), 1, "{handle} held {ip}");
                    done.released += 1;
                } else {
                    let handle = format!("{tag}-a{i}-{round}");
                    let mut request = ipam::AssignRequest::new(&handle, 1, 0);
                    request.attrs = BTreeMap::from([
                        ("namespace".to_owned(), "churn".to_owned()),
                        ("pod".to_owned(), handle.clone()),
                        ("node".to_owned(), allocator.node().to_owned()),
                    ]);
                    let got = allocator
                        .auto_assign(&request)
                        .await
                        .unwrap_or_else(|e| panic!("{handle}: {e}"));
                    let address = &got.addresses[0];
                    if let Err(other) = held.hold(address.ip, &handle) {
                        panic!("{} handed to {handle} while {other} holds it", address.ip);
                    }
                    done.borrowed += usize::from(address.borrowed);
                    mine.push((handle, address.ip));
                    done.assigned += 1;
                }
            }
            done
        })
    });
    let mut total = Churned::default();
    for task in futures::future::join_all(tasks).await {
        let done = task.unwrap();
        total.assigned += done.assigned;
        total.released += done.released;
        total.borrowed += done.borrowed;
    }
    total
}

/// A handle that counts an address its block never got (a crash between writes).
pub async fn empty_handle(store: &dyn Backend, id: &str) {
    let spec = api::resources::IPAMHandleSpec {
        handle_id: id.to_owned(),
        block: BTreeMap::from([("10.0.0.0/26".to_owned(), 1)]),
        deleted: false,
    };
    store
        .create(&api::resources::IPAMHandle::new(id, spec))
        .await
        .unwrap();
}

/// A real etcd for one test, and the etcd backend on it.
pub struct EtcdStoreFixture {
    pub store: Arc<api::datastore::EtcdStore>,
    pub etcd: harness::etcd::Etcd,
}

impl EtcdStoreFixture {
    /// Starts etcd (needs a multi-threaded runtime: the start blocks).
    pub async fn start(test: &str) -> Self {
        let etcd = tokio::task::block_in_place(|| {
            let logs = harness::logs::LogDir::new(test).expect("a log directory");
            harness::etcd::Etcd::start(&logs).expect("etcd starts")
        });
        let store = api::datastore::EtcdStore::connect(&[etcd.endpoint()])
            .await
            .expect("connecting to etcd");
        Self {
            store: Arc::new(store),
            etcd,
        }
    }

    pub fn backend(&self) -> Arc<dyn Backend> {
        self.store.clone()
    }
}

/// Counts datastore round trips as a caller waits for them: the longest chain of
/// calls each issued after the previous one answered. A call's depth is one more
/// than the deepest call answered before it started, so calls issued together
/// share a depth, and with every round trip equally long the deepest call is the
/// caller's latency in round trips. Every call yields once before it is served, so
/// calls joined in one future all start before the first answers.
#[derive(Debug)]
pub struct Rounds<B> {
    inner: B,
    /// (deepest answered, deepest started)
    depth: Mutex<(usize, usize)>,
    /// Calls by operation and kind (`"get ipamblocks"`).
    calls: Mutex<BTreeMap<String, usize>>,
}

impl<B: Backend> Rounds<B> {
    pub fn new(inner: B) -> Self {
        Self {
            inner,
            depth: Mutex::new((0, 0)),
            calls: Mutex::new(BTreeMap::new()),
        }
    }

    /// Round trips and calls since the last take.
    pub fn take(&self) -> (usize, BTreeMap<String, usize>) {
        let (_, deepest) = std::mem::take(&mut *self.depth.lock().unwrap());
        (deepest, std::mem::take(&mut *self.calls.lock().unwrap()))
    }

    async fn call<T>(&self, op: &str, kind: Kind, call: impl std::future::Future<Output = T>) -> T {
        self.count(format!("{op} {}", kind.plural), call).await
    }

    async fn count<T>(&self, name: String, call: impl std::future::Future<Output = T>) -> T {
        *self.calls.lock().unwrap().entry(name).or_default() += 1;
        let depth = {
            let mut state = self.depth.lock().unwrap();
            let depth = state.0 + 1;
            state.1 = state.1.max(depth);
            depth
        };
        tokio::task::yield_now().await;
        let result = call.await;
        let mut state = self.depth.lock().unwrap();
        state.0 = state.0.max(depth);
        result
    }
}

#[async_trait]
impl<B: Backend> Backend for Rounds<B> {
    async fn get_record(&self, kind: Kind, name: &str) -> Result<Record> {
        self.call("get", kind, self.inner.get_record(kind, name))
            .await
    }
    async fn list_records(&self, kind: Kind, options: &ListOptions) -> Result<List<Record>> {
        self.call("list", kind, self.inner.list_records(kind, options))
            .await
    }
    async fn create_record(&self, kind: Kind, name: &str, value: Value) -> Result<Record> {
        self.call("create", kind, self.inner.create_record(kind, name, value))
            .await
    }
    async fn update_record(
        &self,
        kind: Kind,
        name: &str,
        value: Value,
        expected: Revision,
    ) -> Result<Record> {
        self.call(
            "update",
            kind,
            self.inner.update_record(kind, name, value, expected),
        )
        .await
    }
    async fn delete_record(
        &self,
        kind: Kind,
        name: &str,
        expected: Option<Revision>,
    ) -> Result<Record> {
        self.call(
            "delete",
            kind,
            self.inner.delete_record(kind, name, expected),
        )
        .await
    }
    async fn write_all(&self, writes: Vec<Write>) -> Vec<Result<Record>> {
        // One request, named by the kinds it writes.
        let kinds: Vec<&str> = writes.iter().map(|w| w.kind().plural).collect();
        let name = format!("write_all {}", kinds.join("+"));
        self.count(name, self.inner.write_all(writes)).await
    }

    async fn watch_records(&self, kind: Kind, from: Revision) -> Result<WatchStream<Record>> {
        self.inner.watch_records(kind, from).await
    }
}
