//! The datastore: one contract for every backend.
//!
//! [`Backend`] is what a backend implements: object-safe, over JSON records keyed by
//! kind and name. [`Datastore`] is what callers use: typed over any [`Resource`],
//! validating before every write and applying defaults after every read, so nothing
//! invalid is ever stored. It is implemented once for every backend.
//!
//! Semantics every backend keeps (the conformance suite in `tests` checks them):
//! - Every write gets a new, larger revision; a resource's revision is that of its last
//!   write. `update` and `delete` with an expected revision are compare-and-swap.
//! - `list` pages in name order; every object that exists throughout the pagination
//!   is returned exactly once. A list's revision is where a watch can start.
//! - `watch(from)` delivers every change after `from`, in revision order. When those
//!   changes are no longer known (history compacted), it first delivers
//!   [`WatchEvent::Resync`] with the full current state, then changes after it.

mod memory;
mod page;

use std::fmt::Debug;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::Value;

use crate::resources::{Resource, Revision, ValidationError};
use crate::selector::Selector;

pub use memory::MemoryStore;

/// The datastore layer's errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{kind} {name:?} not found")]
    NotFound { kind: &'static str, name: String },
    #[error("{kind} {name:?} already exists")]
    AlreadyExists { kind: &'static str, name: String },
    /// The compare-and-swap failed: someone wrote in between. Re-read and retry.
    #[error("{kind} {name:?} changed: expected revision {expected}, it is at {actual}")]
    Conflict {
        kind: &'static str,
        name: String,
        expected: Revision,
        actual: Revision,
    },
    #[error("{kind} {name:?}: {source}")]
    Invalid {
        kind: &'static str,
        name: String,
        source: ValidationError,
    },
    #[error("{kind} {name:?}: an update needs metadata.resourceVersion from a read")]
    MissingRevision { kind: &'static str, name: String },
    #[error("continue token {0:?} was not issued by this datastore")]
    BadContinueToken(String),
    /// A paginated list outlived the history it reads from; list again from the start.
    #[error("the list's revision {0} has been compacted; list again")]
    Expired(Revision),
    #[error("stored {kind} {name:?} does not decode: {source}")]
    Corrupt {
        kind: &'static str,
        name: String,
        source: serde_json::Error,
    },
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which kind a backend call is about: its name for errors, its plural for keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kind {
    pub name: &'static str,
    pub plural: &'static str,
}

impl Kind {
    pub fn of<R: Resource>() -> Self {
        Self {
            name: R::KIND,
            plural: R::PLURAL,
        }
    }
}

/// A stored object as backends see it: the JSON of the resource without its
/// `resourceVersion`, which is the record's revision.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub name: String,
    pub revision: Revision,
    pub value: Value,
}

#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Only objects whose labels match.
    pub selector: Option<Selector>,
    /// At most this many objects per page; all when unset.
    pub limit: Option<usize>,
    /// Where the previous page ended.
    pub continue_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct List<T> {
    pub items: Vec<T>,
    /// The datastore revision the list reflects; watch from here to follow on.
    pub revision: Revision,
    /// Set when more objects follow.
    pub continue_token: Option<String>,
}

/// One change seen by a watch.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent<T> {
    Added(T),
    Modified(T),
    /// The last state of the object; its revision is that of the deletion.
    Deleted(T),
    /// The watch could not replay the changes asked for: here is everything that
    /// exists at `revision`. Replace what you know; changes after it follow.
    Resync {
        objects: Vec<T>,
        revision: Revision,
    },
}

impl<T> WatchEvent<T> {
    fn try_map<U>(self, f: impl Fn(T) -> Result<U>) -> Result<WatchEvent<U>> {
        Ok(match self {
            WatchEvent::Added(t) => WatchEvent::Added(f(t)?),
            WatchEvent::Modified(t) => WatchEvent::Modified(f(t)?),
            WatchEvent::Deleted(t) => WatchEvent::Deleted(f(t)?),
            WatchEvent::Resync { objects, revision } => WatchEvent::Resync {
                objects: objects.into_iter().map(f).collect::<Result<_>>()?,
                revision,
            },
        })
    }
}

pub type WatchStream<T> = BoxStream<'static, Result<WatchEvent<T>>>;

/// What a backend implements: storage of JSON records with revisions.
#[async_trait]
pub trait Backend: Send + Sync + Debug {
    async fn get_record(&self, kind: Kind, name: &str) -> Result<Record>;
    async fn list_records(&self, kind: Kind, options: &ListOptions) -> Result<List<Record>>;
    /// Fails with `AlreadyExists` when the name is taken.
    async fn create_record(&self, kind: Kind, name: &str, value: Value) -> Result<Record>;
    /// Writes only if the stored revision is `expected`.
    async fn update_record(
        &self,
        kind: Kind,
        name: &str,
        value: Value,
        expected: Revision,
    ) -> Result<Record>;
    /// Deletes (only at `expected`, when given); returns the last state, with the
    /// deletion's revision.
    async fn delete_record(
        &self,
        kind: Kind,
        name: &str,
        expected: Option<Revision>,
    ) -> Result<Record>;
    async fn watch_records(&self, kind: Kind, from: Revision) -> Result<WatchStream<Record>>;
}

/// The typed datastore every component uses; implemented for every [`Backend`].
#[async_trait]
pub trait Datastore {
    async fn get<R: Resource>(&self, name: &str) -> Result<R>;
    async fn list<R: Resource>(&self, options: &ListOptions) -> Result<List<R>>;
    /// Stores a new resource (its `resourceVersion` is ignored); returns it as stored.
    async fn create<R: Resource>(&self, resource: &R) -> Result<R>;
    /// Replaces a resource if it is still at the revision it was read at.
    async fn update<R: Resource>(&self, resource: &R) -> Result<R>;
    async fn delete<R: Resource>(&self, name: &str, expected: Option<Revision>) -> Result<R>;
    async fn watch<R: Resource>(&self, from: Revision) -> Result<WatchStream<R>>;
}

#[async_trait]
impl<B: Backend + ?Sized> Datastore for B {
    async fn get<R: Resource>(&self, name: &str) -> Result<R> {
        decode(self.get_record(Kind::of::<R>(), name).await?)
    }

    async fn list<R: Resource>(&self, options: &ListOptions) -> Result<List<R>> {
        let list = self.list_records(Kind::of::<R>(), options).await?;
        Ok(List {
            items: list.items.into_iter().map(decode).collect::<Result<_>>()?,
            revision: list.revision,
            continue_token: list.continue_token,
        })
    }

    async fn create<R: Resource>(&self, resource: &R) -> Result<R> {
        let value = encode(resource)?;
        decode(
            self.create_record(Kind::of::<R>(), resource.name(), value)
                .await?,
        )
    }

    async fn update<R: Resource>(&self, resource: &R) -> Result<R> {
        let (kind, name) = (Kind::of::<R>(), resource.name());
        let expected = resource.revision().ok_or_else(|| Error::MissingRevision {
            kind: kind.name,
            name: name.to_owned(),
        })?;
        let value = encode(resource)?;
        let old: R = self.get(name).await?;
        let actual = old.revision().expect("decode sets the revision");
        if actual != expected {
            return Err(Error::Conflict {
                kind: kind.name,
                name: name.to_owned(),
                expected,
                actual,
            });
        }
        // Checked against the state at `expected`; the swap fails if it moved on.
        resource
            .validate_update(&old)
            .map_err(|source| invalid::<R>(name, source))?;
        decode(self.update_record(kind, name, value, expected).await?)
    }

    async fn delete<R: Resource>(&self, name: &str, expected: Option<Revision>) -> Result<R> {
        decode(self.delete_record(Kind::of::<R>(), name, expected).await?)
    }

    async fn watch<R: Resource>(&self, from: Revision) -> Result<WatchStream<R>> {
        let records = self.watch_records(Kind::of::<R>(), from).await?;
        Ok(records
            .map(|event| event.and_then(|e| e.try_map(decode)))
            .boxed())
    }
}

fn invalid<R: Resource>(name: &str, source: ValidationError) -> Error {
    Error::Invalid {
        kind: R::KIND,
        name: name.to_owned(),
        source,
    }
}

/// Defaults, validation, then JSON without the revision (the backend owns it).
fn encode<R: Resource>(resource: &R) -> Result<Value> {
    let mut resource = resource.clone();
    resource.apply_defaults();
    resource
        .validate()
        .map_err(|source| invalid::<R>(resource.name(), source))?;
    resource.metadata_mut().resource_version = None;
    serde_json::to_value(&resource).map_err(|source| Error::Corrupt {
        kind: R::KIND,
        name: resource.name().to_owned(),
        source,
    })
}

/// The resource a record holds, at the record's revision, defaults applied.
fn decode<R: Resource>(record: Record) -> Result<R> {
    let mut resource: R =
        serde_json::from_value(record.value).map_err(|source| Error::Corrupt {
            kind: R::KIND,
            name: record.name,
            source,
        })?;
    resource.metadata_mut().resource_version = Some(record.revision);
    resource.apply_defaults();
    Ok(resource)
}

/// The labels of a stored object, for selector matching in backends.
fn labels_of(value: &Value) -> std::collections::BTreeMap<String, String> {
    value
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

fn selected(options: &ListOptions, value: &Value) -> bool {
    options
        .selector
        .as_ref()
        .is_none_or(|selector| selector.matches(&labels_of(value)))
}
