//! Following Services and EndpointSlices in the API server: list (a page at a
//! time), then watch from the list's `resourceVersion` with bookmarks, resuming
//! from the last version seen when the server ends a watch; a 410 Gone lists
//! again. Every failure is sent as [`Event::Lost`] with what failed, then retried.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::core::WatchEvent;
use kube::core::params::{ListParams, WatchParams};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc::Sender;

use super::{ServiceFacts, SliceFacts, key, service_facts, slice_facts};

/// Objects per list page.
const PAGE: u32 = 500;
/// How long one watch request stays open (the server may end it sooner).
const WATCH_SECONDS: u32 = 290;
/// The wait before listing again after a failure.
const RETRY: Duration = Duration::from_secs(1);

/// One change to a followed kind, keyed `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<T> {
    /// Everything there is (the first list, and every list after a lost watch).
    Listed(BTreeMap<String, T>),
    Applied(String, T),
    Deleted(String),
    /// The list or watch failed (why); it is listed again shortly.
    Lost(String),
}

/// Follows every Service until `updates` is closed.
pub async fn services<U>(
    client: kube::Client,
    updates: Sender<U>,
    wrap: fn(Event<ServiceFacts>) -> U,
) {
    follow(
        Api::<Service>::all(client),
        "Services",
        service_facts,
        updates,
        wrap,
    )
    .await
}

/// Follows every EndpointSlice until `updates` is closed.
pub async fn endpoint_slices<U>(
    client: kube::Client,
    updates: Sender<U>,
    wrap: fn(Event<SliceFacts>) -> U,
) {
    let api = Api::<EndpointSlice>::all(client);
    follow(api, "EndpointSlices", slice_facts, updates, wrap).await
}

async fn follow<K, T, U>(
    api: Api<K>,
    kind: &str,
    facts: fn(&K) -> T,
    updates: Sender<U>,
    wrap: fn(Event<T>) -> U,
) where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    loop {
        let error = match follow_once(&api, facts, &updates, wrap).await {
            Ok(()) => return,
            Err(error) => error,
        };
        let lost = format!("{kind}: {error}");
        if updates.send(wrap(Event::Lost(lost))).await.is_err() {
            return;
        }
        tokio::time::sleep(RETRY).await;
    }
}

fn key_of<K: kube::Resource>(object: &K) -> String {
    let meta = object.meta();
    key(meta.namespace.as_deref(), meta.name.as_deref())
}

/// Lists, then watches until a failure (`Err`) or until `updates` closes (`Ok`).
async fn follow_once<K, T, U>(
    api: &Api<K>,
    facts: fn(&K) -> T,
    updates: &Sender<U>,
    wrap: fn(Event<T>) -> U,
) -> Result<(), String>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut params = ListParams::default().limit(PAGE);
    let mut listed = BTreeMap::new();
    let mut version = String::new();
    loop {
        let page = api
            .list(&params)
            .await
            .map_err(|e| format!("listing: {e}"))?;
        if version.is_empty() {
            version = page.metadata.resource_version.clone().unwrap_or_default();
        }
        listed.extend(page.items.iter().map(|o| (key_of(o), facts(o))));
        match page.metadata.continue_.filter(|token| !token.is_empty()) {
            Some(token) => params.continue_token = Some(token),
            None => break,
        }
    }
    if updates.send(wrap(Event::Listed(listed))).await.is_err() {
        return Ok(());
    }
    let params = WatchParams::default().timeout(WATCH_SECONDS);
    loop {
        let mut stream = Box::pin(
            api.watch(&params, &version)
                .await
                .map_err(|e| format!("watching from {version}: {e}"))?,
        );
        while let Some(event) = stream
            .try_next()
            .await
            .map_err(|e| format!("watching: {e}"))?
        {
            let event = match event {
                WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                    version = o.meta().resource_version.clone().unwrap_or(version);
                    Event::Applied(key_of(&o), facts(&o))
                }
                WatchEvent::Deleted(o) => {
                    version = o.meta().resource_version.clone().unwrap_or(version);
                    Event::Deleted(key_of(&o))
                }
                WatchEvent::Bookmark(bookmark) => {
                    version = bookmark.metadata.resource_version;
                    continue;
                }
                WatchEvent::Error(status) if status.code == 410 => {
                    return Err(format!("the watch expired ({})", status.message));
                }
                WatchEvent::Error(status) => {
                    return Err(format!("the watch failed: {}", status.message));
                }
            };
            if updates.send(wrap(event)).await.is_err() {
                return Ok(());
            }
        }
        // The server ended the watch, as it does every few minutes: resume.
    }
}
