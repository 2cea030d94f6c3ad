//! Settings kept current by watches, for a long-lived allocator (the agent's tunnel
//! addresses, a benchmark): its warm assignments then read nothing but write their
//! block and handle. A plugin process lives too briefly to watch and re-reads pools
//! and reservations with each assignment instead ([`crate::state::Settings::reread`]).
//!
//! One task per kind lists it, then follows a watch from the list's revision; when
//! a watch ends or fails the kind counts as unknown (and assignments go back to
//! reading) until it has been listed again.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use api::datastore::{Backend, Datastore, ListOptions, WatchEvent};
use api::resources::{IPAMConfig, IPPool, IPReservation, Node, Resource};
use futures::StreamExt;
use tokio::task::JoinHandle;

use crate::state::{IPAM_CONFIG, Settings};

/// Wait before listing a kind again after its watch broke.
const RELIST_AFTER: Duration = Duration::from_millis(500);

/// The four kinds an assignment depends on, each as last seen (`None`: not known).
#[derive(Debug, Default)]
struct Known {
    pools: Option<Vec<IPPool>>,
    reservations: Option<Vec<IPReservation>>,
    config: Option<Vec<IPAMConfig>>,
    node: Option<Vec<Node>>,
}

/// Watches of the settings for one node; the tasks stop when this is dropped.
#[derive(Debug)]
pub struct SettingsWatch {
    known: Arc<RwLock<Known>>,
    node: String,
    tasks: Vec<JoinHandle<()>>,
}

impl SettingsWatch {
    /// Starts following the settings of `node`.
    pub fn start(store: Arc<dyn Backend>, node: &str) -> Self {
        let known = Arc::new(RwLock::new(Known::default()));
        let tasks = vec![
            follow::<IPPool>(store.clone(), known.clone(), |k| &mut k.pools),
            follow::<IPReservation>(store.clone(), known.clone(), |k| &mut k.reservations),
            follow::<IPAMConfig>(store.clone(), known.clone(), |k| &mut k.config),
            follow::<Node>(store, known.clone(), |k| &mut k.node),
        ];
        Self {
            known,
            node: node.to_owned(),
            tasks,
        }
    }

    /// The settings, when every kind is known right now.
    pub fn current(&self) -> Option<Settings> {
        let known = self.known.read().unwrap_or_else(|p| p.into_inner());
        let config = known.config.as_ref()?;
        let nodes = known.node.as_ref()?;
        Some(Settings {
            pools: known.pools.clone()?,
            reservations: known.reservations.clone()?,
            config: config
                .iter()
                .find(|c| c.metadata.name == IPAM_CONFIG)
                .map(|c| c.spec.clone())
                .unwrap_or_default(),
            node_labels: nodes
                .iter()
                .find(|n| n.metadata.name == self.node)
                .map(|n| n.metadata.labels.clone())
                .unwrap_or_default(),
            node_read_at: u64::MAX,
        })
    }
}

impl Drop for SettingsWatch {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Keeps `slot(known)` equal to every object of kind `R`, or `None` while unknown.
fn follow<R: Resource>(
    store: Arc<dyn Backend>,
    known: Arc<RwLock<Known>>,
    slot: fn(&mut Known) -> &mut Option<Vec<R>>,
) -> JoinHandle<()> {
    let set = move |value: Option<&BTreeMap<String, R>>| {
        let mut known = known.write().unwrap_or_else(|p| p.into_inner());
        *slot(&mut known) = value.map(|objects| objects.values().cloned().collect());
    };
    tokio::spawn(async move {
        loop {
            if let Err(error) = follow_once(&*store, &set).await {
                tracing::warn!(kind = R::KIND, %error, "settings watch broke; listing again");
            }
            set(None);
            tokio::time::sleep(RELIST_AFTER).await;
        }
    })
}

/// Lists, then applies watch events until the watch ends or fails.
async fn follow_once<R: Resource>(
    store: &dyn Backend,
    set: &impl Fn(Option<&BTreeMap<String, R>>),
) -> api::datastore::Result<()> {
    let list = store.list::<R>(&ListOptions::default()).await?;
    let mut objects: BTreeMap<String, R> = list
        .items
        .into_iter()
        .map(|o| (o.name().to_owned(), o))
        .collect();
    set(Some(&objects));
    let mut events = store.watch::<R>(list.revision).await?;
    while let Some(event) = events.next().await {
        match event? {
            WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                objects.insert(o.name().to_owned(), o);
            }
            WatchEvent::Deleted(o) => {
                objects.remove(o.name());
            }
            WatchEvent::Resync { objects: all, .. } => {
                objects = all.into_iter().map(|o| (o.name().to_owned(), o)).collect();
            }
        }
        set(Some(&objects));
    }
    Ok(())
}
