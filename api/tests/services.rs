//! Following Services and EndpointSlices (`api::services::follow`) against the
//! Kubernetes API double (no kube-apiserver can be installed here): the first list,
//! changes as they happen, a watch that expires (410) answered by listing again.

use std::time::Duration;

use api::services::follow::{self, Event};
use api::services::{ServiceFacts, SliceFacts};
use harness::kube_api::objects::{self, Endpoint};
use harness::kube_api::{KubeApi, KubeApiOptions};
use serde_json::json;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);

async fn next<T>(events: &mut mpsc::Receiver<Event<T>>) -> Event<T> {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("an event in time")
        .expect("the follower runs")
}

fn web(external_ip: &str) -> serde_json::Value {
    json!({
        "metadata": {"namespace": "shop", "name": "web"},
        "spec": {"clusterIP": "10.96.0.10", "externalIPs": [external_ip],
                 "externalTrafficPolicy": "Local", "ports": [{"port": 80}]},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_are_listed_then_followed_and_a_lost_watch_lists_again() {
    // No bookmarks: the watch's version stays that of its last event.
    let options = KubeApiOptions {
        bookmark_interval: Duration::from_secs(3600),
        ..KubeApiOptions::default()
    };
    let api = KubeApi::start(options).await.unwrap();
    let client = api.client().unwrap();
    objects::put_service(&client, web("192.0.2.10"))
        .await
        .unwrap();
    let (sender, mut events) = mpsc::channel(16);
    let task = tokio::spawn(follow::services(client.clone(), sender, |e| e));

    let Event::Listed(listed) = next(&mut events).await else {
        panic!("the first event is the list");
    };
    let facts: &ServiceFacts = &listed["shop/web"];
    assert_eq!(
        facts.external_ips,
        ["192.0.2.10".parse::<std::net::IpAddr>().unwrap()]
    );
    assert!(facts.external_local);

    // A bad address is input: named, left out, the watch goes on.
    objects::put_service(&client, web("192.0.2.999"))
        .await
        .unwrap();
    let Event::Applied(key, facts) = next(&mut events).await else {
        panic!("a change is applied");
    };
    assert_eq!(key, "shop/web");
    assert!(facts.external_ips.is_empty());
    assert_eq!(facts.problems.len(), 1, "{:?}", facts.problems);
    assert!(
        facts.problems[0].contains("192.0.2.999"),
        "{:?}",
        facts.problems
    );

    objects::delete_service(&client, "shop", "web")
        .await
        .unwrap();
    assert_eq!(next(&mut events).await, Event::Deleted("shop/web".into()));

    // The history the watch would resume from is gone: 410, then a fresh list.
    objects::put_service(&client, web("192.0.2.11"))
        .await
        .unwrap();
    let Event::Applied(..) = next(&mut events).await else {
        panic!("the new Service is applied");
    };
    // Writes elsewhere move the revision past the watch's; then history goes.
    objects::put_secret(&client, "shop", "unrelated", &[("k", "v")])
        .await
        .unwrap();
    api.compact(api.revision());
    api.end_watches();
    let mut relisted = None;
    while relisted.is_none() {
        match next(&mut events).await {
            Event::Lost(why) => assert!(why.starts_with("Services: "), "{why}"),
            Event::Listed(all) => relisted = Some(all),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(relisted.unwrap().keys().collect::<Vec<_>>(), ["shop/web"]);
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_endpoint_slices_are_followed_with_their_ready_nodes() {
    let api = KubeApi::start(KubeApiOptions::default()).await.unwrap();
    let client = api.client().unwrap();
    let (sender, mut events) = mpsc::channel(16);
    let task = tokio::spawn(follow::endpoint_slices(client.clone(), sender, |e| e));
    assert_eq!(next(&mut events).await, Event::Listed(Default::default()));

    let endpoints = [
        Endpoint {
            address: "10.244.0.5".parse().unwrap(),
            node: "n1",
            ready: true,
        },
        Endpoint {
            address: "10.244.1.5".parse().unwrap(),
            node: "n2",
            ready: false,
        },
    ];
    objects::put_endpoint_slice(&client, "shop", "web-1", "web", &endpoints)
        .await
        .unwrap();
    let expected = SliceFacts {
        service: Some("shop/web".into()),
        ready_nodes: ["n1".to_owned()].into(),
    };
    assert_eq!(
        next(&mut events).await,
        Event::Applied("shop/web-1".into(), expected)
    );
    task.abort();
}
