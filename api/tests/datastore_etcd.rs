//! What the etcd backend does beyond the shared contract: its key layout, snapshot
//! pagination that expires with compaction, and watches that survive a broken
//! connection.

use std::net::SocketAddr;
use std::time::Duration;

use api::datastore::{Datastore, Error, EtcdStore, ListOptions, WatchEvent};
use api::resources::{IPAMHandle, Resource};
use futures::StreamExt;
use harness::conformance::EtcdFixture;
use harness::conformance::cases::{handle, revision_now};
use harness::tcp_proxy::TcpProxy;

const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

fn etcd_address(fixture: &EtcdFixture) -> SocketAddr {
    let endpoint = fixture.etcd().endpoint();
    endpoint
        .trim_start_matches("http://")
        .parse()
        .expect("an http://ip:port endpoint")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_keeps_one_key_per_resource_holding_json_without_its_revision() {
    let fixture = EtcdFixture::start("etcd_keeps_one_key_per_resource").await;
    let stored = fixture.etcd_store().create(&handle("pod-a")).await.unwrap();
    let (plain, json) = tokio::task::block_in_place(|| {
        let etcd = fixture.etcd();
        (
            etcd.etcdctl(&["get", "--prefix", "/tabby/v1/"]).unwrap(),
            etcd.etcdctl(&["get", "/tabby/v1/ipamhandles/pod-a", "-w", "json"])
                .unwrap(),
        )
    });
    let lines: Vec<&str> = plain.lines().collect();
    assert_eq!(lines.len(), 2, "one key and its value: {plain}");
    assert_eq!(lines[0], "/tabby/v1/ipamhandles/pod-a");
    let response: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        response["kvs"][0]["mod_revision"].as_u64(),
        stored.revision().map(|r| r.0)
    );
    let value: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(value["metadata"], serde_json::json!({"name": "pod-a"}));
    assert_eq!(value["spec"]["handleID"], "pod-a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_a_paginated_list_reads_one_snapshot_until_it_is_compacted() {
    let fixture = EtcdFixture::start("etcd_a_paginated_list_reads_one_snapshot").await;
    let store = fixture.etcd_store();
    for i in 0..6 {
        store.create(&handle(&format!("h{i}"))).await.unwrap();
    }
    let options = ListOptions {
        limit: Some(2),
        ..Default::default()
    };
    let first = store.list::<IPAMHandle>(&options).await.unwrap();
    // A change after the first page is not seen by the rest of this list.
    let mut h4: IPAMHandle = store.get("h4").await.unwrap();
    h4.spec.block.insert("10.0.0.0/26".into(), 9);
    let changed = store.update(&h4).await.unwrap();
    let next = ListOptions {
        continue_token: first.continue_token.clone(),
        ..options.clone()
    };
    let second = store.list::<IPAMHandle>(&next).await.unwrap();
    let third = store
        .list::<IPAMHandle>(&ListOptions {
            continue_token: second.continue_token.clone(),
            ..options.clone()
        })
        .await
        .unwrap();
    assert_eq!(second.revision, first.revision);
    assert_eq!(third.items[0].name(), "h4");
    assert!(third.items[0].spec.block.is_empty(), "read at the snapshot");
    assert!(changed.revision() > Some(first.revision));

    store.compact(changed.revision().unwrap()).await.unwrap();
    let expired = store.list::<IPAMHandle>(&next).await;
    assert!(
        matches!(expired, Err(Error::Expired(r)) if r == first.revision),
        "{expired:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_a_watch_reconnects_after_its_connection_breaks_and_loses_nothing() {
    let fixture = EtcdFixture::start("etcd_a_watch_reconnects").await;
    let direct = fixture.etcd_store();
    let proxy = TcpProxy::start(etcd_address(&fixture)).await.unwrap();
    let through_proxy = EtcdStore::connect(&[format!("http://{}", proxy.address())])
        .await
        .unwrap();
    let start = revision_now(direct).await;
    let mut watch = through_proxy.watch::<IPAMHandle>(start).await.unwrap();
    let mut written = Vec::new();
    for round in 0..3 {
        for i in 0..5 {
            let name = format!("r{round}-{i}");
            written.push(direct.create(&handle(&name)).await.unwrap());
        }
        // Everything written so far arrives; then the connection breaks, and what is
        // written while it is down arrives after the reconnection.
        if round < 2 {
            let seen = next_added(&mut watch, 5).await;
            assert_eq!(seen, written[round * 5..round * 5 + 5]);
            proxy.cut();
        }
    }
    let seen = next_added(&mut watch, 5).await;
    assert_eq!(seen, written[10..15]);
    assert!(proxy.accepted() >= 3, "{} connections", proxy.accepted());
}

async fn next_added(
    watch: &mut api::datastore::WatchStream<IPAMHandle>,
    n: usize,
) -> Vec<IPAMHandle> {
    let mut added = Vec::new();
    while added.len() < n {
        match tokio::time::timeout(EVENT_TIMEOUT, watch.next()).await {
            Ok(Some(Ok(WatchEvent::Added(h)))) => added.push(h),
            other => panic!("expected an Added event, got {other:?}"),
        }
    }
    added
}
