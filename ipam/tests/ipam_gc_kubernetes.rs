//! The garbage collector on the kubernetes datastore, against the API double (no
//! kube-apiserver exists here; `harness::kube_api`): which nodes exist is the
//! core Nodes' business there, and a deleted Kubernetes Node takes its tabby
//! `Node`, tunnel address, blocks and affinities with it, as Calico's
//! kube-controllers do. The double has no finalizers or graceful deletion: a
//! deleted Node is gone at once, as one without finalizers is on a real server.

mod support;

use std::time::{Duration, Instant};

use api::datastore::Datastore;
use api::resources::{EncapsulationMode, Node};
use harness::kube_api::KubeApi;
use ipam::check::check;
use ipam::gc::Collector;
use ipam::{Allocator, Family, Tunnel};
use support::{node, pool};

const GRACE: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_a_deleted_kubernetes_node_loses_its_tabby_node_blocks_and_tunnel_address() {
    let (api, store) = KubeApi::with_tabby_crds().await.unwrap();
    pool(&*store, "p", "10.0.0.0/24", 26, |p| {
        p.ipip_mode = EncapsulationMode::Always
    })
    .await;
    for name in ["n1", "n2"] {
        api.put_node(name, &[]).await.unwrap();
        node(&*store, name, true).await;
        let tunnel = Allocator::new(store.clone(), name)
            .ensure_tunnel_address(Tunnel::Ipip, Family::V4)
            .await
            .unwrap();
        assert!(tunnel.is_some());
    }

    api.delete_node("n2").await.unwrap();
    let mut gc = Collector::new(store.clone(), GRACE);
    let t0 = Instant::now();
    let seen = gc.run_once(t0).await.unwrap();
    assert!(seen.reclaimed.is_empty(), "nothing before the grace period");
    let due = gc.run_once(t0 + GRACE).await.unwrap();
    let mut kinds: Vec<&str> = due.reclaimed.iter().map(|t| t.kind()).collect();
    kinds.sort();
    assert_eq!(kinds, ["node", "node_block", "tunnel_address"], "{due:#?}");
    assert!(due.errors.is_empty(), "{:?}", due.errors);

    // n1 keeps everything; n2 is gone from tabby, so the mesh drops it.
    let nodes: Vec<String> = api::datastore::list_all::<Node, _>(&*store, None)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|n| n.metadata.name)
        .collect();
    assert_eq!(nodes, ["n1"]);
    let report = check(&*store, true).await.unwrap();
    assert_eq!(
        (report.blocks, report.affinities, report.allocations),
        (1, 1, 1)
    );
    assert!(report.is_consistent(), "{:#?}", report.problems);
    // Nothing more to do.
    let after = gc.run_once(t0 + GRACE * 2).await.unwrap();
    assert!(after.reclaimed.is_empty(), "{after:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_a_tabby_node_whose_kubernetes_node_exists_is_never_collected() {
    let (api, store) = KubeApi::with_tabby_crds().await.unwrap();
    api.put_node("n1", &[]).await.unwrap();
    node(&*store, "n1", true).await;
    let mut gc = Collector::new(store.clone(), Duration::ZERO);
    let report = gc.run_once(Instant::now()).await.unwrap();
    assert!(report.candidates.is_empty(), "{report:#?}");
    assert!(store.get::<Node>("n1").await.is_ok());
}
