//! Agents run in-process on lab nodes against one shared in-memory datastore, and
//! an IPAM double that writes what tabby's IPAM writes (blocks claimed with a
//! confirmed affinity, one allocation per pod with its node, namespace and name).
//!
//! The double stands in until the ipam crate's allocator lands; the end-to-end
//! tests (`e2e_*`) use the real one through `tabby-ipam` and etcd.

#![allow(dead_code)] // each test file uses part of it

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use std::time::Duration;

use std::path::PathBuf;

use agent::daemon::{self, Options, Status};
use agent::grpc;
use api::datastore::{Backend, Datastore, Error, MemoryStore};
use api::resources::{
    AffinityState, AllocationAttribute, BlockAffinity, BlockAffinitySpec, Cidr, EncapsulationMode,
    IPAMBlock, IPAMBlockSpec, IPPool, IPPoolSpec, Resource, cidr_name,
};
use harness::routes::routes;
use harness::{Netns, Node};
use ipnet::IpNet;

use harness::cni::{HostLocal as Runtime, pod_ip};
use tokio::sync::{oneshot, watch};

/// The tabby-cni binary (the `cni` package's), which attaches the tests' pods.
pub fn tabby_cni() -> PathBuf {
    harness::e2e::binary("tabby-cni").expect("tabby-cni builds")
}

/// Async work running on its own thread inside a node's namespace until stopped.
pub struct Background<T: Send + 'static> {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<T, String>>>,
}

impl<T: Send + 'static> Background<T> {
    /// Runs `work(stopped)` in `node`; `stopped` completes when [`Self::stop`] is
    /// called or the value drops.
    pub fn start<F>(
        node: &Node,
        work: impl FnOnce(oneshot::Receiver<()>) -> F + Send + 'static,
    ) -> Self
    where
        F: Future<Output = Result<T, String>>,
    {
        let netns = std::fs::File::open(node.path()).expect("the node's namespace");
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("entering the node's namespace: {e}"))?;
            harness::runtime().block_on(work(stopped))
        });
        Self {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Stops the work and waits for it.
    pub fn stop(mut self) -> Result<T, String> {
        self.halt().expect("stopped once")
    }

    fn halt(&mut self) -> Option<Result<T, String>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let thread = self.thread.take()?;
        Some(thread.join().unwrap_or_else(|_| Err("it panicked".into())))
    }
}

impl<T: Send + 'static> Drop for Background<T> {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

/// An agent running on a lab node, serving its status API on a socket.
pub struct RunningAgent {
    work: Background<()>,
    pub status: watch::Receiver<Status>,
    _dir: tempfile::TempDir,
    pub socket: PathBuf,
}

impl RunningAgent {
    pub fn start(node: &Node, store: Arc<MemoryStore>, options: Options) -> Self {
        let (reporting, handle) = daemon::channels();
        let status = handle.status.clone();
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agent.sock");
        let api_socket = socket.clone();
        let work = Background::start(node, move |stopped| async move {
            let (bound, metrics) = grpc::bind(api_socket, None)
                .await
                .map_err(|e| e.to_string())?;
            let (stop, api_stopped) = watch::channel(false);
            let api = tokio::spawn(grpc::serve(handle, bound, metrics, api_stopped));
            let store: Arc<dyn Backend> = store;
            let result = daemon::run(options, store, reporting, async {
                let _ = stopped.await;
            })
            .await
            .map_err(|e| e.to_string());
            let _ = stop.send(true);
            let _ = api.await;
            result
        });
        Self {
            work,
            status,
            _dir: dir,
            socket,
        }
    }

    /// A gRPC channel to the agent's status API, for `runtime`.
    pub fn channel(&self, runtime: &tokio::runtime::Runtime) -> tonic::transport::Channel {
        runtime
            .block_on(proto::client::connect_unix(&self.socket))
            .expect("the agent's status socket")
    }

    /// Stops the agent as SIGTERM does: sessions drop without a Cease.
    pub fn stop(self) -> Result<(), String> {
        self.work.stop()
    }

    /// Waits until the agent is ready (listed, BGP re-learned, kernel reconciled).
    pub fn wait_ready(&self) {
        self.wait("the agent to be ready", Status::ready);
    }

    /// Waits until the agent's status satisfies `condition`.
    pub fn wait(&self, what: &str, condition: impl Fn(&Status) -> bool) {
        harness::wait_until(Duration::from_secs(30), what, || {
            let status = self.status.borrow().clone();
            anyhow::Ok(if condition(&status) {
                Ok(())
            } else {
                Err(format!("{status:?}"))
            })
        })
        .unwrap();
    }
}

/// Options for an agent on `node`, speaking from its lab address, with quick
/// resyncs so tests see repairs soon.
pub fn options(node: &Node) -> Options {
    let mut options = Options::new(node.name());
    let address = format!("{}/24", node.address()).parse().unwrap();
    options.ipv4 = agent::node::AddressChoice::Explicit(address);
    options.resync = std::time::Duration::from_secs(2);
    options
}

/// Pool `pool` with the given encapsulation modes.
pub fn pool(store: &MemoryStore, cidr: &str, ipip: EncapsulationMode, vxlan: EncapsulationMode) {
    let mut spec = IPPoolSpec::new(Cidr(cidr.parse().unwrap()));
    spec.ipip_mode = ipip;
    spec.vxlan_mode = vxlan;
    run(store.create(&IPPool::new("pool", spec))).unwrap();
}

/// A pod on `node`, attached by tabby-cni and recorded in IPAM as tabby-ipam
/// records it.
pub fn pod(
    store: &MemoryStore,
    runtime: &Runtime<'_>,
    node: &Node,
    name: &str,
    netns: &Netns,
) -> IpAddr {
    let address = pod_ip(&runtime.add(name, netns), 0);
    record_pod(store, address, node.name(), runtime.namespace(), name);
    address
}

/// host-local's ranges for addresses of one block.
pub fn block_range(block: &str) -> serde_json::Value {
    serde_json::json!([[{"subnet": block}]])
}

/// Waits until `node`'s tabby routes are exactly `expected`.
pub fn wait_for_routes(node: &Node, expected: &BTreeSet<String>) {
    harness::wait_until(
        Duration::from_secs(30),
        &format!("{}'s routes", node.name()),
        || {
            let actual = routes(node, "84")?;
            anyhow::Ok(if &actual == expected {
                Ok(())
            } else {
                Err(format!("{actual:#?}"))
            })
        },
    )
    .unwrap();
}

pub fn run<T>(future: impl Future<Output = T>) -> T {
    harness::runtime().block_on(future)
}

/// Claims `cidr` for `node` as IPAM does: the block, then the confirmed affinity.
pub fn claim_block(store: &MemoryStore, node: &str, cidr: &str) {
    let cidr = Cidr(cidr.parse().unwrap());
    let block = ipam::claim::new_block(cidr, Some(node));
    let affinity = BlockAffinity::new(
        ipam::claim::affinity_name(node, &cidr),
        BlockAffinitySpec {
            node: node.into(),
            cidr,
            state: AffinityState::Confirmed,
        },
    );
    run(async {
        store.create(&block).await.unwrap();
        store.create(&affinity).await.unwrap();
    });
}

/// Records `address` as held by pod `namespace/pod` on `node`.
pub fn record_pod(store: &MemoryStore, address: IpAddr, node: &str, namespace: &str, pod: &str) {
    let attribute = AllocationAttribute {
        handle_id: Some(format!("k8s-pod-network.ctr-{pod}")),
        secondary: BTreeMap::from([
            ("node".to_owned(), node.to_owned()),
            ("namespace".to_owned(), namespace.to_owned()),
            ("pod".to_owned(), pod.to_owned()),
        ]),
    };
    update_block(store, address, |spec, ordinal| {
        spec.allocations[ordinal] = Some(spec.attributes.len());
        spec.unallocated.retain(|o| *o != ordinal);
        spec.attributes.push(attribute.clone());
        spec.sequence_number_for_allocation
            .insert(ordinal.to_string(), spec.sequence_number);
        spec.sequence_number += 1;
    });
}

/// Frees `address` in its block.
pub fn release(store: &MemoryStore, address: IpAddr) {
    update_block(store, address, |spec, ordinal| {
        spec.allocations[ordinal] = None;
        spec.unallocated.push(ordinal);
        spec.sequence_number_for_allocation
            .remove(&ordinal.to_string());
    });
}

/// Releases an empty block as IPAM does: the affinity, then the block.
pub fn release_block(store: &MemoryStore, node: &str, cidr: &str) {
    let cidr = Cidr(cidr.parse().unwrap());
    run(async {
        store
            .delete::<BlockAffinity>(&ipam::claim::affinity_name(node, &cidr), None)
            .await
            .unwrap();
        store
            .delete::<IPAMBlock>(&cidr_name(&cidr), None)
            .await
            .unwrap();
    });
}

/// Changes the block holding `address`, retrying on conflict as IPAM does.
fn update_block(store: &MemoryStore, address: IpAddr, change: impl Fn(&mut IPAMBlockSpec, usize)) {
    run(async {
        loop {
            let blocks = store.list::<IPAMBlock>(&Default::default()).await.unwrap();
            let mut block = blocks
                .items
                .into_iter()
                .find(|b| b.spec.cidr.0.contains(&address))
                .unwrap_or_else(|| panic!("no block holds {address}"));
            let ordinal = offset(block.spec.cidr.0, address);
            change(&mut block.spec, ordinal);
            match store.update(&block).await {
                Ok(_) => return,
                Err(Error::Conflict { .. }) => continue,
                Err(other) => panic!("updating block {}: {other}", block.name()),
            }
        }
    });
}

fn offset(block: IpNet, address: IpAddr) -> usize {
    match (block.addr(), address) {
        (IpAddr::V4(base), IpAddr::V4(a)) => (u32::from(a) - u32::from(base)) as usize,
        (IpAddr::V6(base), IpAddr::V6(a)) => (u128::from(a) - u128::from(base)) as usize,
        _ => panic!("{address} is not in {block}"),
    }
}
