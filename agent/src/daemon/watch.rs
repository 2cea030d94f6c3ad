//! Following the datastore: per kind, list everything (the agent's first view and
//! its resync), then watch from the list's revision; a failed watch lists again.
//! Each kind runs in its own task and sends typed updates to the agent's loop over
//! one bounded channel: a busy loop makes the watch tasks wait (and the datastore
//! watches behind them, which keep their own place), so nothing piles up and
//! nothing is dropped.
//!
//! Kubernetes Services and EndpointSlices come from the Kubernetes API
//! ([`api::services::follow`]) on the same channel; they are not among the
//! [`KINDS`] the agent waits for before converging (a Kubernetes API that cannot be
//! reached must not keep pods from their routes).

use std::sync::Arc;
use std::time::Duration;

use api::datastore::{Backend, Datastore, List, WatchEvent, list_all};
use api::resources::{
    BGPConfiguration, BGPFilter, BGPPeer, BlockAffinity, IPAMBlock, IPPool, Node, Resource,
};
use api::services::follow::{self as kube_follow, Event};
use api::services::{ServiceFacts, SliceFacts};
use futures::StreamExt;
use tokio::sync::mpsc::{self, Receiver, Sender};
use tokio::task::JoinHandle;

use crate::desired::{Cluster, cluster};

/// The wait before listing again after a failure.
const RETRY: Duration = Duration::from_secs(1);
/// Updates in flight between the watch tasks and the agent's loop.
pub const UPDATES: usize = 256;

/// The channel [`follow_all`] sends on.
pub fn channel() -> (Sender<Update>, Receiver<Update>) {
    mpsc::channel(UPDATES)
}

/// One change to the agent's view of the datastore.
#[derive(Debug)]
pub enum Update {
    Pools(WatchEvent<IPPool>),
    Blocks(WatchEvent<IPAMBlock>),
    Affinities(WatchEvent<BlockAffinity>),
    Nodes(WatchEvent<Node>),
    BgpConfigurations(WatchEvent<BGPConfiguration>),
    BgpPeers(WatchEvent<BGPPeer>),
    BgpFilters(WatchEvent<BGPFilter>),
    /// Kubernetes Services, from the Kubernetes API.
    Services(Event<ServiceFacts>),
    EndpointSlices(Event<SliceFacts>),
    /// A kind's list or watch failed; it is listed again shortly.
    Lost {
        kind: &'static str,
        error: String,
    },
}

/// The kinds the agent follows.
pub const KINDS: [&str; 7] = [
    IPPool::KIND,
    IPAMBlock::KIND,
    BlockAffinity::KIND,
    Node::KIND,
    BGPConfiguration::KIND,
    BGPPeer::KIND,
    BGPFilter::KIND,
];

impl Update {
    /// Applies the update; returns the kind when it is a full listing (the kind is
    /// then in sync).
    pub fn apply(self, view: &mut Cluster) -> Option<&'static str> {
        fn one<R: Resource>(
            objects: &mut cluster::Objects<R>,
            event: WatchEvent<R>,
        ) -> Option<&'static str> {
            let listing = matches!(event, WatchEvent::Resync { .. });
            event.apply_to(objects);
            listing.then_some(R::KIND)
        }
        match self {
            Self::Pools(e) => one(&mut view.pools, e),
            Self::Blocks(e) => one(&mut view.blocks, e),
            Self::Affinities(e) => one(&mut view.affinities, e),
            Self::Nodes(e) => one(&mut view.nodes, e),
            Self::BgpConfigurations(e) => one(&mut view.bgp_configurations, e),
            Self::BgpPeers(e) => one(&mut view.bgp_peers, e),
            Self::BgpFilters(e) => one(&mut view.bgp_filters, e),
            Self::Services(e) => kube(&mut view.services, e),
            Self::EndpointSlices(e) => kube(&mut view.endpoint_slices, e),
            Self::Lost { kind, error } => {
                tracing::warn!(kind, %error, "datastore watch lost; listing again");
                None
            }
        }
    }
}

/// Applies an event of a kind followed in the Kubernetes API.
fn kube<T>(objects: &mut cluster::Objects<T>, event: Event<T>) -> Option<&'static str> {
    match event {
        Event::Listed(all) => *objects = all,
        Event::Applied(key, facts) => {
            objects.insert(key, facts);
        }
        Event::Deleted(key) => {
            objects.remove(&key);
        }
        Event::Lost(error) => {
            tracing::warn!(%error, "Kubernetes API watch lost; listing again");
        }
    }
    None
}

/// Starts following Services and EndpointSlices through `client`; the tasks end
/// when `updates` is dropped.
pub fn follow_services(client: kube::Client, updates: Sender<Update>) -> Vec<JoinHandle<()>> {
    vec![
        tokio::spawn(kube_follow::services(
            client.clone(),
            updates.clone(),
            Update::Services,
        )),
        tokio::spawn(kube_follow::endpoint_slices(
            client,
            updates,
            Update::EndpointSlices,
        )),
    ]
}

/// Starts following every kind; the tasks end when `updates` is dropped.
pub fn follow_all(store: Arc<dyn Backend>, updates: Sender<Update>) -> Vec<JoinHandle<()>> {
    vec![
        tokio::spawn(follow(store.clone(), updates.clone(), Update::Pools)),
        tokio::spawn(follow(store.clone(), updates.clone(), Update::Blocks)),
        tokio::spawn(follow(store.clone(), updates.clone(), Update::Affinities)),
        tokio::spawn(follow(store.clone(), updates.clone(), Update::Nodes)),
        tokio::spawn(follow(
            store.clone(),
            updates.clone(),
            Update::BgpConfigurations,
        )),
        tokio::spawn(follow(store.clone(), updates.clone(), Update::BgpPeers)),
        tokio::spawn(follow(store, updates, Update::BgpFilters)),
    ]
}

async fn follow<R: Resource>(
    store: Arc<dyn Backend>,
    updates: Sender<Update>,
    wrap: fn(WatchEvent<R>) -> Update,
) {
    loop {
        let error = match follow_once(&*store, &updates, wrap).await {
            // The agent is gone.
            Ok(()) => return,
            Err(error) => error,
        };
        let lost = Update::Lost {
            kind: R::KIND,
            error,
        };
        if updates.send(lost).await.is_err() {
            return;
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Lists, then watches until the watch fails (`Err`, why) or the agent goes (`Ok`).
async fn follow_once<R: Resource>(
    store: &dyn Backend,
    updates: &Sender<Update>,
    wrap: fn(WatchEvent<R>) -> Update,
) -> Result<(), String> {
    let List {
        items: objects,
        revision,
        ..
    } = list_all::<R, _>(store, None)
        .await
        .map_err(|e| format!("listing: {e}"))?;
    if updates
        .send(wrap(WatchEvent::Resync { objects, revision }))
        .await
        .is_err()
    {
        return Ok(());
    }
    let mut stream = store
        .watch::<R>(revision)
        .await
        .map_err(|e| format!("watching from revision {revision}: {e}"))?;
    while let Some(event) = stream.next().await {
        let event = event.map_err(|e| format!("watching: {e}"))?;
        if updates.send(wrap(event)).await.is_err() {
            return Ok(());
        }
    }
    Err("the watch ended".into())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use api::datastore::MemoryStore;
    use api::resources::BlockAffinitySpec;

    use super::*;

    fn affinity(i: u32) -> BlockAffinity {
        let cidr: api::resources::Cidr =
            format!("10.0.{}.{}/32", i / 256, i % 256).parse().unwrap();
        let name = format!("n1-{}", api::resources::cidr_name(&cidr));
        let spec = BlockAffinitySpec {
            node: "n1".into(),
            cidr,
            state: Default::default(),
        };
        BlockAffinity::new(name, spec)
    }

    /// A loop that does not keep up holds the watch tasks back: at most a channel's
    /// worth of updates waits, and every change still arrives.
    #[tokio::test]
    async fn hardening_updates_wait_for_a_busy_agent_instead_of_piling_up() {
        const WRITES: u32 = 1000;
        let store = Arc::new(MemoryStore::new());
        let (sender, mut updates) = channel();
        let watchers = follow_all(store.clone(), sender);
        // Every kind listed (one resync each), then the writes, each given a chance
        // to travel.
        while updates.len() < KINDS.len() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for i in 0..WRITES {
            store.create(&affinity(i)).await.unwrap();
            tokio::task::yield_now().await;
        }
        // The watch tasks run as far as they can while the loop is busy elsewhere.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(updates.len() <= UPDATES, "{} updates queued", updates.len());
        let mut seen = BTreeSet::new();
        while seen.len() < WRITES as usize {
            let update = tokio::time::timeout(Duration::from_secs(10), updates.recv())
                .await
                .expect("updates keep coming")
                .expect("the watch tasks run");
            match update {
                Update::Affinities(WatchEvent::Added(a)) => {
                    seen.insert(a.metadata.name);
                }
                Update::Affinities(WatchEvent::Resync { objects, .. }) => {
                    seen.extend(objects.into_iter().map(|a| a.metadata.name));
                }
                Update::Lost { kind, error } => panic!("{kind}: {error}"),
                _ => {}
            }
        }
        for watcher in watchers {
            watcher.abort();
        }
    }
}
