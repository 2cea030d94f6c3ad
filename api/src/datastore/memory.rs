//! The in-memory backend, for unit tests: the full contract, including revision
//! history (kept until [`MemoryStore::compact`]) and resync after compaction.
//!
//! A watch reads the history at its own pace, as an etcd watcher does: nothing is
//! queued per watcher, so a slow reader holds no memory and slows no writer; one
//! that falls behind a compaction gets a resync.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::watch;

use super::page::ContinueToken;
use super::{
    Backend, Error, Kind, List, ListOptions, Record, Result, WatchEvent, WatchStream, Write,
    selected,
};
use crate::resources::Revision;

#[derive(Debug)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// The revision of the last write, for watches waiting for the next one.
    written: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct State {
    revision: u64,
    objects: BTreeMap<(&'static str, String), Record>,
    /// Every change since the last compaction, in revision order.
    history: VecDeque<(Kind, WatchEvent<Record>)>,
    /// Changes up to this revision are forgotten.
    compacted: u64,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::default(),
                written: watch::Sender::new(0),
            }),
        }
    }
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
        self.shared.lock()
    }

    /// Runs one write and wakes the watches.
    fn write<T>(&self, write: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
        let mut state = self.lock();
        let written = write(&mut state)?;
        let revision = state.revision;
        drop(state);
        self.shared.written.send_replace(revision);
        Ok(written)
    }
}

impl Shared {
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
        self.history.push_back((kind, event));
        record
    }

    /// What a watch of `kind` that has seen everything up to `seen` reads next, and
    /// where it then stands: the next change, or a resync when the changes after
    /// `seen` were compacted away.
    fn next_after(&self, kind: Kind, seen: u64) -> Option<(WatchEvent<Record>, u64)> {
        if seen < self.compacted {
            let objects = self.all_of(kind).cloned().collect();
            let revision = Revision(self.revision);
            return Some((WatchEvent::Resync { objects, revision }, self.revision));
        }
        let first = self
            .history
            .partition_point(|(_, e)| event_revision(e).0 <= seen);
        self.history
            .range(first..)
            .find(|(k, _)| *k == kind)
            .map(|(_, event)| (event.clone(), event_revision(event).0))
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

    /// Fails as the write's single-object call would, without writing.
    fn check(&self, write: &Write) -> Result<()> {
        match write {
            Write::Create { kind, name, .. } => match self.stored(*kind, name) {
                Ok(_) => Err(Error::AlreadyExists {
                    kind: kind.name,
                    name: name.clone(),
                }),
                Err(_) => Ok(()),
            },
            Write::Update {
                kind,
                name,
                expected,
                ..
            } => self.check_revision(*kind, name, *expected),
        }
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
        self.write(|state| {
            if state.stored(kind, name).is_ok() {
                return Err(Error::AlreadyExists {
                    kind: kind.name,
                    name: name.to_owned(),
                });
            }
            Ok(state.commit(kind, name, Some(value)))
        })
    }

    async fn update_record(
        &self,
        kind: Kind,
        name: &str,
        value: Value,
        expected: Revision,
    ) -> Result<Record> {
        self.write(|state| {
            state.check_revision(kind, name, expected)?;
            Ok(state.commit(kind, name, Some(value)))
        })
    }

    async fn delete_record(
        &self,
        kind: Kind,
        name: &str,
        expected: Option<Revision>,
    ) -> Result<Record> {
        self.write(|state| {
            match expected {
                Some(expected) => state.check_revision(kind, name, expected)?,
                None => {
                    state.stored(kind, name)?;
                }
            }
            Ok(state.commit(kind, name, None))
        })
    }

    /// All or nothing under the one lock; each write gets its own revision (the
    /// history's watch reading wants one event per revision).
    async fn write_all(&self, writes: Vec<Write>) -> Vec<Result<Record>> {
        if let Some(duplicate) = Write::duplicate(&writes) {
            return Write::undone(&writes, vec![(0, duplicate)]);
        }
        let mut state = self.lock();
        let failed: Vec<(usize, Error)> = writes
            .iter()
            .enumerate()
            .filter_map(|(i, write)| state.check(write).err().map(|e| (i, e)))
            .collect();
        if !failed.is_empty() {
            return Write::undone(&writes, failed);
        }
        let records = writes
            .into_iter()
            .map(|write| match write {
                Write::Create { kind, name, value }
                | Write::Update {
                    kind, name, value, ..
                } => Ok(state.commit(kind, &name, Some(value))),
            })
            .collect();
        let revision = state.revision;
        drop(state);
        self.shared.written.send_replace(revision);
        records
    }

    async fn watch_records(&self, kind: Kind, from: Revision) -> Result<WatchStream<Record>> {
        // The stream holds the store weakly: it ends when the store is dropped.
        let shared: Weak<Shared> = Arc::downgrade(&self.shared);
        let written = self.shared.written.subscribe();
        let events = futures::stream::unfold((from.0, written), move |(seen, mut written)| {
            let shared = shared.clone();
            async move {
                loop {
                    let next = shared.upgrade()?.lock().next_after(kind, seen);
                    if let Some((event, seen)) = next {
                        return Some((Ok(event), (seen, written)));
                    }
                    written.changed().await.ok()?;
                }
            }
        });
        Ok(events.boxed())
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

#[cfg(test)]
mod watch_tests {
    use super::*;
    use crate::datastore::Datastore;
    use crate::resources::{IPAMHandle, IPAMHandleSpec, Resource};

    fn handle(name: &str) -> IPAMHandle {
        IPAMHandle::new(
            name,
            IPAMHandleSpec {
                handle_id: name.into(),
                block: Default::default(),
                deleted: false,
            },
        )
    }

    /// A watch nobody reads holds no copy of what it has not read: after a
    /// compaction, it reads a resync rather than thousands of queued events.
    #[tokio::test]
    async fn hardening_a_slow_watch_queues_nothing_and_resyncs_after_a_compaction() {
        let store = MemoryStore::new();
        let mut slow = store.watch::<IPAMHandle>(Revision(0)).await.unwrap();
        for i in 0..2000 {
            store.create(&handle(&format!("h{i}"))).await.unwrap();
        }
        store.compact(store.revision());
        match slow.next().await {
            Some(Ok(WatchEvent::Resync { objects, revision })) => {
                assert_eq!((objects.len(), revision), (2000, store.revision()));
            }
            other => panic!("expected a resync, got {other:?}"),
        }
        // And it follows on from there, at its own pace.
        store.create(&handle("after")).await.unwrap();
        match slow.next().await {
            Some(Ok(WatchEvent::Added(h))) => assert_eq!(h.name(), "after"),
            other => panic!("expected the next change, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_watch_ends_when_its_store_is_dropped() {
        let store = MemoryStore::new();
        let mut events = store.watch::<IPAMHandle>(Revision(0)).await.unwrap();
        drop(store);
        assert!(events.next().await.is_none());
    }
}
