//! The in-memory backend, for unit tests: the full contract, including revision
//! history (kept until [`MemoryStore::compact`]) and resync after compaction.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::Mutex;

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;

use super::page::ContinueToken;
use super::{
    Backend, Error, Kind, List, ListOptions, Record, Result, WatchEvent, WatchStream, selected,
};
use crate::resources::Revision;

type Sender = mpsc::UnboundedSender<Result<WatchEvent<Record>>>;

#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    revision: u64,
    objects: BTreeMap<(&'static str, String), Record>,
    /// Every change since the last compaction, in revision order.
    history: VecDeque<(Kind, WatchEvent<Record>)>,
    /// Changes up to this revision are forgotten.
    compacted: u64,
    watchers: Vec<(Kind, Sender)>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets the history up to and including `revision`, as etcd's compaction does.
    pub fn compact(&self, revision: Revision) {
        let mut state = self.lock();
        state.compacted = state.compacted.max(revision.0);
        while let Some((_, event)) = state.history.front() {
            if event_revision(event) > revision {
                break;
            }
            state.history.pop_front();
        }
    }

    /// The revision of the last write.
    pub fn revision(&self) -> Revision {
        Revision(self.lock().revision)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated: every
        // mutation is a single insert or remove.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn event_revision(event: &WatchEvent<Record>) -> Revision {
    match event {
        WatchEvent::Added(r) | WatchEvent::Modified(r) | WatchEvent::Deleted(r) => r.revision,
        WatchEvent::Resync { revision, .. } => *revision,
    }
}

impl State {
    fn key(kind: Kind, name: &str) -> (&'static str, String) {
        (kind.plural, name.to_owned())
    }

    /// Applies one write: bumps the revision, records and publishes the change.
    fn commit(&mut self, kind: Kind, name: &str, value: Option<Value>) -> Record {
        self.revision += 1;
        let key = Self::key(kind, name);
        let (record, event) = match value {
            Some(value) => {
                let record = Record {
                    name: name.to_owned(),
                    revision: Revision(self.revision),
                    value,
                };
                let event = match self.objects.insert(key, record.clone()) {
                    Some(_) => WatchEvent::Modified(record.clone()),
                    None => WatchEvent::Added(record.clone()),
                };
                (record, event)
            }
            None => {
                let record = self.objects.remove(&key).expect("deleting a stored object");
                let deleted = Record {
                    revision: Revision(self.revision),
                    ..record.clone()
                };
                (record, WatchEvent::Deleted(deleted))
            }
        };
        self.watchers
            .retain(|(k, tx)| *k != kind || tx.send(Ok(event.clone())).is_ok());
        self.history.push_back((kind, event));
        record
    }

    fn stored(&self, kind: Kind, name: &str) -> Result<&Record> {
        self.objects
            .get(&Self::key(kind, name))
            .ok_or_else(|| Error::NotFound {
                kind: kind.name,
                name: name.to_owned(),
            })
    }

    fn check_revision(&self, kind: Kind, name: &str, expected: Revision) -> Result<()> {
        let actual = self.stored(kind, name)?.revision;
        if actual != expected {
            return Err(Error::Conflict {
                kind: kind.name,
                name: name.to_owned(),
                expected,
                actual: Some(actual),
            });
        }
        Ok(())
    }

    fn all_of(&self, kind: Kind) -> impl Iterator<Item = &Record> {
        let start = (kind.plural, String::new());
        self.objects
            .range(start..)
            .take_while(move |((plural, _), _)| *plural == kind.plural)
            .map(|(_, record)| record)
    }
}

#[async_trait]
impl Backend for MemoryStore {
    async fn get_record(&self, kind: Kind, name: &str) -> Result<Record> {
        self.lock().stored(kind, name).cloned()
    }

    async fn list_records(&self, kind: Kind, options: &ListOptions) -> Result<List<Record>> {
        let state = self.lock();
        // Pages continue from the current state, not a snapshot: objects that exist
        // throughout are still listed exactly once, which is the contract.
        let start = match &options.continue_token {
            Some(token) => Bound::Excluded(ContinueToken::decode(token)?.after),
            None => Bound::Included(String::new()),
        };
        let range = (
            start.map(|name| (kind.plural, name)),
            Bound::Unbounded::<(&'static str, String)>,
        );
        let limit = options.limit.unwrap_or(usize::MAX);
        let mut matching = state
            .objects
            .range(range)
            .take_while(|((plural, _), _)| *plural == kind.plural)
            .map(|(_, record)| record)
            .filter(|record| selected(options, &record.value));
        let items: Vec<Record> = matching.by_ref().take(limit).cloned().collect();
        let revision = Revision(state.revision);
        let continue_token = match (matching.next(), items.last()) {
            (Some(_), Some(last)) => Some(
                ContinueToken {
                    revision,
                    after: last.name.clone(),
                }
                .encode(),
            ),
            _ => None,
        };
        Ok(List::new(items, revision, continue_token))
    }

    async fn create_record(&self, kind: Kind, name: &str, value: Value) -> Result<Record> {
        let mut state = self.lock();
        if state.stored(kind, name).is_ok() {
            return Err(Error::AlreadyExists {
                kind: kind.name,
                name: name.to_owned(),
            });
        }
        Ok(state.commit(kind, name, Some(value)))
    }

    async fn update_record(
        &self,
        kind: Kind,
        name: &str,
        value: Value,
        expected: Revision,
    ) -> Result<Record> {
        let mut state = self.lock();
        state.check_revision(kind, name, expected)?;
        Ok(state.commit(kind, name, Some(value)))
    }

    async fn delete_record(
        &self,
        kind: Kind,
        name: &str,
        expected: Option<Revision>,
    ) -> Result<Record> {
        let mut state = self.lock();
        match expected {
            Some(expected) => state.check_revision(kind, name, expected)?,
            None => {
                state.stored(kind, name)?;
            }
        }
        Ok(state.commit(kind, name, None))
    }

    async fn watch_records(&self, kind: Kind, from: Revision) -> Result<WatchStream<Record>> {
        let mut state = self.lock();
        let (tx, mut rx) = mpsc::unbounded_channel();
        if from.0 < state.compacted {
            let objects = state.all_of(kind).cloned().collect();
            let revision = Revision(state.revision);
            let _ = tx.send(Ok(WatchEvent::Resync { objects, revision }));
        } else {
            for (_, event) in state
                .history
                .iter()
                .filter(|(k, e)| *k == kind && event_revision(e) > from)
            {
                let _ = tx.send(Ok(event.clone()));
            }
        }
        state.watchers.push((kind, tx));
        Ok(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datastore::Datastore;
    use crate::resources::{BlockAffinity, BlockAffinitySpec, IPPool, IPPoolSpec};

    #[tokio::test]
    async fn a_list_finds_its_kind_behind_objects_of_kinds_that_sort_first() {
        let store = MemoryStore::new();
        let cidr = "10.0.0.0/26".parse().unwrap();
        let affinity = BlockAffinitySpec {
            node: "n1".into(),
            cidr,
            state: Default::default(),
        };
        store
            .create(&BlockAffinity::new("n1-10-0-0-0-26", affinity))
            .await
            .unwrap();
        store
            .create(&IPPool::new("p", IPPoolSpec::new(cidr)))
            .await
            .unwrap();
        let pools = store.list::<IPPool>(&ListOptions::default()).await.unwrap();
        assert_eq!(pools.items.len(), 1);
    }
}
