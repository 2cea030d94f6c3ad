//! The double's storage: objects keyed by resource, namespace and name; one revision
//! counter for all of them (as etcd's under a real API server); a bounded history of
//! changes that serves watches, and lists pinned to an older revision (continue
//! tokens), until it is compacted.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::labels::LabelSelector;

/// Where an object lives: `resource` is `<group>/<plural>` (`core/pods`), namespace
/// empty for cluster-scoped ones.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub resource: String,
    pub namespace: String,
    pub name: String,
}

impl Key {
    /// The position in list order, as continue tokens name it.
    pub fn position(&self) -> String {
        if self.namespace.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.namespace, self.name)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    Added,
    Modified,
    Deleted,
}

impl ChangeType {
    fn name(self) -> &'static str {
        match self {
            ChangeType::Added => "ADDED",
            ChangeType::Modified => "MODIFIED",
            ChangeType::Deleted => "DELETED",
        }
    }
}

#[derive(Debug, Clone)]
struct Change {
    revision: u64,
    key: Key,
    change: ChangeType,
    /// The state after the change; for a deletion, the last state at the deletion's
    /// revision.
    object: Value,
    previous: Option<Value>,
}

/// What a watch request asked for.
#[derive(Debug, Clone)]
pub struct WatchFilter {
    pub resource: String,
    /// Empty: every namespace.
    pub namespace: String,
    pub selector: LabelSelector,
}

impl WatchFilter {
    fn wants(&self, key: &Key, object: &Value) -> bool {
        key.resource == self.resource
            && (self.namespace.is_empty() || key.namespace == self.namespace)
            && self.selector.matches(&labels(object))
    }
}

#[derive(Debug)]
struct Watcher {
    filter: WatchFilter,
    /// JSON lines of the watch response; closing it ends the response.
    lines: mpsc::UnboundedSender<Bytes>,
}

/// Why a read at an old revision failed.
#[derive(Debug, PartialEq, Eq)]
pub struct TooOld {
    pub oldest: u64,
}

#[derive(Debug)]
pub struct Store {
    revision: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<Change>,
    /// Changes kept for watches and pinned lists; older ones are forgotten.
    history_limit: usize,
    /// Every change after this revision is in `history`.
    compacted: u64,
    watchers: Vec<Watcher>,
}

impl Store {
    pub fn new(history_limit: usize) -> Self {
        Self {
            revision: 1,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            history_limit,
            compacted: 1,
            watchers: Vec::new(),
        }
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn get(&self, key: &Key) -> Option<&Value> {
        self.objects.get(key)
    }

    /// Stores `object` (already carrying its metadata but for `resourceVersion`) and
    /// tells the watchers; returns it as stored.
    pub fn put(&mut self, key: Key, mut object: Value) -> Value {
        self.revision += 1;
        set_revision(&mut object, self.revision);
        let previous = self.objects.insert(key.clone(), object.clone());
        let change = match previous {
            Some(_) => ChangeType::Modified,
            None => ChangeType::Added,
        };
        self.record(key, change, object.clone(), previous);
        object
    }

    /// Removes the object; returns its last stored state.
    pub fn remove(&mut self, key: &Key) -> Option<Value> {
        let last = self.objects.remove(key)?;
        self.revision += 1;
        let mut tombstone = last.clone();
        set_revision(&mut tombstone, self.revision);
        self.record(
            key.clone(),
            ChangeType::Deleted,
            tombstone,
            Some(last.clone()),
        );
        Some(last)
    }

    fn record(&mut self, key: Key, change: ChangeType, object: Value, previous: Option<Value>) {
        let line = event_line(change.name(), &object);
        self.watchers.retain(|w| {
            // A watcher of a label selector sees the change if either state matches.
            let wanted = w.filter.wants(&key, &object)
                || previous.as_ref().is_some_and(|p| w.filter.wants(&key, p));
            !wanted || w.lines.send(line.clone()).is_ok()
        });
        self.history.push_back(Change {
            revision: self.revision,
            key,
            change,
            object,
            previous,
        });
        while self.history.len() > self.history_limit {
            let forgotten = self.history.pop_front().expect("a non-empty history");
            self.compacted = forgotten.revision;
        }
    }

    /// Forgets the history up to `revision`.
    pub fn compact(&mut self, revision: u64) {
        while self.history.front().is_some_and(|c| c.revision <= revision) {
            self.history.pop_front();
        }
        self.compacted = self.compacted.max(revision.min(self.revision));
    }

    pub fn set_history_limit(&mut self, limit: usize) {
        self.history_limit = limit;
    }

    /// The objects of `resource` (in `namespace`, or all) as they were at `revision`,
    /// in list order.
    pub fn list_at(
        &self,
        resource: &str,
        namespace: &str,
        revision: u64,
    ) -> Result<Vec<(Key, Value)>, TooOld> {
        if revision < self.compacted {
            return Err(TooOld {
                oldest: self.compacted,
            });
        }
        let in_scope = |key: &Key| {
            key.resource == resource && (namespace.is_empty() || key.namespace == namespace)
        };
        let mut state: BTreeMap<Key, Value> = self
            .objects
            .iter()
            .filter(|(key, _)| in_scope(key))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        for change in self
            .history
            .iter()
            .rev()
            .take_while(|c| c.revision > revision)
        {
            if !in_scope(&change.key) {
                continue;
            }
            match &change.previous {
                Some(previous) => state.insert(change.key.clone(), previous.clone()),
                None => state.remove(&change.key),
            };
        }
        Ok(state.into_iter().collect())
    }

    /// Registers a watch from `revision` (0: start with the current state as ADDED
    /// events); the changes after it are sent at once. Fails when they are forgotten.
    pub fn watch(
        &mut self,
        filter: WatchFilter,
        revision: u64,
        lines: mpsc::UnboundedSender<Bytes>,
    ) -> Result<(), TooOld> {
        if revision == 0 {
            for (key, object) in &self.objects {
                if filter.wants(key, object) {
                    let _ = lines.send(event_line("ADDED", object));
                }
            }
        } else {
            if revision < self.compacted {
                return Err(TooOld {
                    oldest: self.compacted,
                });
            }
            for change in self.history.iter().filter(|c| c.revision > revision) {
                let wanted = filter.wants(&change.key, &change.object)
                    || change
                        .previous
                        .as_ref()
                        .is_some_and(|p| filter.wants(&change.key, p));
                if wanted {
                    let _ = lines.send(event_line(change.change.name(), &change.object));
                }
            }
        }
        self.watchers.push(Watcher { filter, lines });
        Ok(())
    }

    /// Sends each watcher of `resource` a bookmark at the current revision. Sent under
    /// the same lock as events, so every event up to it is already in the stream.
    pub fn bookmark(&self, lines: &mpsc::UnboundedSender<Bytes>, api_version: &str, kind: &str) {
        let bookmark = json!({
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {"resourceVersion": self.revision.to_string()},
        });
        let _ = lines.send(event_line("BOOKMARK", &bookmark));
    }

    /// Ends every open watch, as an API server restart (or its timeout) does.
    pub fn end_watches(&mut self) {
        self.watchers.clear();
    }
}

pub fn event_line(change: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": change, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

fn set_revision(object: &mut Value, revision: u64) {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert("resourceVersion".into(), revision.to_string().into());
    }
}

pub fn labels(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}
