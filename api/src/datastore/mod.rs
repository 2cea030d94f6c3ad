//! The datastore: one contract for every backend.
//!
//! [`Backend`] is what a backend implements: object-safe, over JSON records keyed by
//! kind and name. [`Datastore`] is what callers use: typed over any [`Resource`],
//! validating before every write and applying defaults after every read, so nothing
//! invalid is ever stored. It is implemented once for every backend.
//!
//! What is read back is input: [`stored`] says how unknown fields and invalid objects
//! are handled; lists and watches skip an object that cannot be read and report it
//! ([`skipped`]) rather than fail.
//!
//! Semantics every backend keeps (the conformance suite in `tests` checks them):
//! - Every write gets a new, larger revision; a resource's revision is that of its last
//!   write. `update` and `delete` with an expected revision are compare-and-swap.
//! - `list` pages in name order; every object that exists throughout the pagination
//!   is returned exactly once. A list's revision is where a watch can start.
//! - `delete` returns the object as it was last stored (with the revision of that
//!   write, as Kubernetes does); the watch's `Deleted` event carries the deletion's
//!   revision.
//! - `watch(from)` delivers every change after `from`, in revision order. When those
//!   changes are no longer known (history compacted), it first delivers
//!   [`WatchEvent::Resync`] with the full current state, then changes after it.
//! - `write_all` is all or nothing where the backend has multi-object
//!   transactions (etcd, memory); on Kubernetes each write stands alone (the API
//!   has no multi-object transaction), see [`Backend::write_all`].
//! - `update` is one round trip (the compare-and-swap) for kinds without immutable
//!   fields, which are all the IPAM kinds; kinds with some ([`Resource::IMMUTABLE`],
//!   only `IPPool`) read the stored object first to check them.
//!
//! Which pods and nodes exist is asked the same way on every backend; see
//! [`workloads`].

#[cfg(feature = "cli")]
pub mod args;
pub mod config;
mod connect;
mod etcd;
pub mod explain;
mod kubernetes;
mod memory;
mod page;
pub mod secrets;
pub mod skipped;
pub mod stored;
pub mod workloads;
mod write;

use std::fmt::Debug;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::Value;
use tracing::Instrument;

use crate::resources::{
    Node, Resource, Revision, ValidationError, WorkloadEndpoint, WorkloadEndpointSpec,
};
use crate::selector::Selector;
use stored::{decode, encode};

pub use config::DatastoreConfig;
pub use connect::{ConnectError, connect, connect_lazily, kube_client};
pub use etcd::{DEFAULT_PREFIX as ETCD_DEFAULT_PREFIX, EtcdStore};
pub use kubernetes::KubeStore;
pub use memory::MemoryStore;
pub use secrets::{SecretKey, Secrets};
pub use skipped::{Skipped, skip, skipped_total};
pub use stored::Unreadable;
pub use workloads::{Attachment, Inventory, NetworkCondition, Workload};
pub use write::{Write, write_each};

/// The datastore layer's errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{kind} {name:?} not found")]
    NotFound { kind: &'static str, name: String },
    #[error("{kind} {name:?} already exists")]
    AlreadyExists { kind: &'static str, name: String },
    /// The compare-and-swap failed: someone wrote in between. Re-read and retry.
    #[error("{kind} {name:?} changed: expected revision {expected}, it is at {}",
        actual.map_or("a newer one".to_owned(), |a| a.to_string()))]
    Conflict {
        kind: &'static str,
        name: String,
        expected: Revision,
        /// The stored revision, when the backend says (Kubernetes does not).
        actual: Option<Revision>,
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
    /// A stored object that does not decode or is not valid; see [`stored`].
    #[error("stored {kind} {name:?} is unreadable: {problem}")]
    Corrupt {
        kind: &'static str,
        name: String,
        problem: Unreadable,
    },
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    #[error("kubernetes: {0}")]
    Kubernetes(#[from] kube::Error),
    /// tabby compares revisions as numbers, which every etcd-backed API server gives.
    #[error("kubernetes: resourceVersion {0:?} is not a number")]
    UnsupportedRevision(String),
    #[error("datastore configuration: {0}")]
    Config(String),
    /// A write of a [`Backend::write_all`] left undone because another of its
    /// transaction's writes failed its condition.
    #[error("{kind} {name:?} not written: another write of its transaction failed")]
    NotWritten { kind: &'static str, name: String },
}

impl Error {
    /// True for failures a later retry may not meet: the store unreachable,
    /// overloaded or failing, or a write lost to another writer; not a refusal
    /// (401, 403, 422, an invalid object), which the same request would meet again.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Conflict { .. } | Self::NotWritten { .. } | Self::Etcd(_) => true,
            Self::Kubernetes(kube::Error::Api(status)) => status.code == 429 || status.code >= 500,
            Self::Kubernetes(kube::Error::HyperError(_) | kube::Error::Service(_)) => true,
            _ => false,
        }
    }

    /// True when the API server refused the call for want of a grant (403).
    pub fn is_forbidden(&self) -> bool {
        matches!(self, Self::Kubernetes(kube::Error::Api(status)) if status.code == 403)
    }
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
    /// Objects of this page left out because they cannot be read (already reported).
    pub skipped: Vec<Skipped>,
}

impl<T> List<T> {
    /// A page with nothing skipped.
    pub fn new(items: Vec<T>, revision: Revision, continue_token: Option<String>) -> Self {
        Self {
            items,
            revision,
            continue_token,
            skipped: Vec::new(),
        }
    }
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

impl<R: Resource> WatchEvent<R> {
    /// Applies the event to a cache of the kind's objects by name.
    pub fn apply_to(self, objects: &mut std::collections::BTreeMap<String, R>) {
        match self {
            WatchEvent::Added(object) | WatchEvent::Modified(object) => {
                objects.insert(object.name().to_owned(), object);
            }
            WatchEvent::Deleted(object) => {
                objects.remove(object.name());
            }
            WatchEvent::Resync { objects: all, .. } => {
                *objects = all
                    .into_iter()
                    .map(|object| (object.name().to_owned(), object))
                    .collect();
            }
        }
    }
}

impl WatchEvent<Record> {
    /// The event as resources. An object that cannot be read is skipped and
    /// reported (`None`), except the last state of a deleted one: that is an error,
    /// so the follower lists again rather than keep a version it read earlier.
    fn decode<R: Resource>(self) -> Option<Result<WatchEvent<R>>> {
        let readable = |record| match stored::decode(record) {
            Ok(resource) => Some(Ok(resource)),
            Err(e) => skipped::skip(e).err().map(Err),
        };
        Some(match self {
            WatchEvent::Added(r) => readable(r)?.map(WatchEvent::Added),
            WatchEvent::Modified(r) => readable(r)?.map(WatchEvent::Modified),
            WatchEvent::Deleted(r) => stored::decode(r).map(WatchEvent::Deleted),
            WatchEvent::Resync { objects, revision } => objects
                .into_iter()
                .filter_map(readable)
                .collect::<Result<_>>()
                .map(|objects| WatchEvent::Resync { objects, revision }),
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

    /// Several writes in one round trip, the results in their order: an IPAM
    /// assignment's block and handle. Where the backend has multi-object
    /// transactions (etcd: one `Txn`; memory) they are all or nothing: when a
    /// write's condition fails, it carries its error (`Conflict`, `AlreadyExists`,
    /// `NotFound`), every other [`Error::NotWritten`], and nothing is stored.
    /// Without them (Kubernetes) each is its own request, all sent at once
    /// ([`write_each`]), and each result says what happened to that write alone.
    /// Either way, an `Ok` is stored and an `Err` is not, except that a transaction
    /// left unanswered (its error on the first write, `NotWritten` on the others)
    /// may have been applied, as any unanswered write may. Each object at most once.
    /// The default is [`write_each`] (wrappers in tests keep it).
    async fn write_all(&self, writes: Vec<Write>) -> Vec<Result<Record>> {
        write_each(self, writes).await
    }

    /// The cluster's own record of pods and nodes, where it has one (Kubernetes' core
    /// API). Without it, `WorkloadEndpoint`s and tabby `Node`s are that record.
    fn inventory(&self) -> Option<&dyn Inventory> {
        None
    }

    /// Secrets in the component's own namespace, where the backend has them
    /// (Kubernetes); see [`secrets`].
    fn secrets(&self) -> Option<&dyn Secrets> {
        None
    }

    /// A client of the Kubernetes API the backend lives in, for the core objects
    /// tabby follows beside its own (Services and EndpointSlices, see
    /// [`crate::services`]).
    fn kube_client(&self) -> Option<kube::Client> {
        None
    }
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
    /// Deletes (only at `expected`, when given); returns the last stored state.
    async fn delete<R: Resource>(&self, name: &str, expected: Option<Revision>) -> Result<R>;
    async fn watch<R: Resource>(&self, from: Revision) -> Result<WatchStream<R>>;

    /// The pod `namespace/pod`, if it exists; see [`workloads`].
    async fn workload(&self, namespace: &str, pod: &str) -> Result<Option<Workload>>;
    /// Every pod that exists.
    async fn workloads(&self) -> Result<Vec<Workload>>;
    async fn node_exists(&self, node: &str) -> Result<bool>;
    /// The names of every node that exists.
    async fn nodes(&self) -> Result<Vec<String>>;
    /// CNI ADD: records the pod's endpoint (creating or replacing it).
    async fn register_workload(&self, endpoint: WorkloadEndpointSpec) -> Result<WorkloadEndpoint>;
    /// CNI DEL: removes the pod's endpoint if it is the one `container_id` added;
    /// returns what was removed. Idempotent, as CNI DEL must be.
    async fn unregister_workload(
        &self,
        namespace: &str,
        pod: &str,
        container_id: &str,
    ) -> Result<Option<WorkloadEndpoint>>;
}

#[async_trait]
impl<B: Backend + ?Sized> Datastore for B {
    async fn get<R: Resource>(&self, name: &str) -> Result<R> {
        let span = tracing::debug_span!(target: "stage", "datastore.get", kind = R::KIND);
        decode(
            self.get_record(Kind::of::<R>(), name)
                .instrument(span)
                .await?,
        )
    }

    async fn list<R: Resource>(&self, options: &ListOptions) -> Result<List<R>> {
        let span = tracing::debug_span!(target: "stage", "datastore.list", kind = R::KIND);
        let list = self
            .list_records(Kind::of::<R>(), options)
            .instrument(span)
            .await?;
        let mut items = Vec::with_capacity(list.items.len());
        let mut skipped = list.skipped;
        for record in list.items {
            match decode(record) {
                Ok(resource) => items.push(resource),
                Err(e) => skipped.push(skipped::skip(e)?),
            }
        }
        Ok(List {
            items,
            revision: list.revision,
            continue_token: list.continue_token,
            skipped,
        })
    }

    async fn create<R: Resource>(&self, resource: &R) -> Result<R> {
        let span = tracing::debug_span!(target: "stage", "datastore.create", kind = R::KIND);
        create(self, resource).instrument(span).await
    }

    async fn update<R: Resource>(&self, resource: &R) -> Result<R> {
        let span = tracing::debug_span!(target: "stage", "datastore.update", kind = R::KIND);
        update(self, resource).instrument(span).await
    }

    async fn delete<R: Resource>(&self, name: &str, expected: Option<Revision>) -> Result<R> {
        let span = tracing::debug_span!(target: "stage", "datastore.delete", kind = R::KIND);
        let deleted = self.delete_record(Kind::of::<R>(), name, expected);
        decode(deleted.instrument(span).await?)
    }

    async fn watch<R: Resource>(&self, from: Revision) -> Result<WatchStream<R>> {
        let records = self.watch_records(Kind::of::<R>(), from).await?;
        Ok(records
            .filter_map(|event| {
                futures::future::ready(match event {
                    Ok(event) => event.decode(),
                    Err(e) => Some(Err(e)),
                })
            })
            .boxed())
    }

    async fn workload(&self, namespace: &str, pod: &str) -> Result<Option<Workload>> {
        let recorded = workloads::endpoint(self, namespace, pod).await?;
        let Some(core) = self.inventory() else {
            return Ok(recorded);
        };
        let mut pods: Vec<Workload> = core.pod(namespace, pod).await?.into_iter().collect();
        workloads::attach(&mut pods, recorded.into_iter().collect());
        Ok(pods.pop())
    }

    async fn workloads(&self) -> Result<Vec<Workload>> {
        let recorded = workloads::endpoints(self).await?;
        let Some(core) = self.inventory() else {
            return Ok(recorded);
        };
        let mut pods = core.pods().await?;
        workloads::attach(&mut pods, recorded);
        Ok(pods)
    }

    async fn node_exists(&self, node: &str) -> Result<bool> {
        match self.inventory() {
            Some(core) => core.node_exists(node).await,
            None => exists(self.get::<Node>(node).await),
        }
    }

    async fn nodes(&self) -> Result<Vec<String>> {
        match self.inventory() {
            Some(core) => core.nodes().await,
            None => Ok(list_all::<Node, _>(self, None)
                .await?
                .items
                .into_iter()
                .map(|node| node.metadata.name)
                .collect()),
        }
    }

    async fn register_workload(&self, endpoint: WorkloadEndpointSpec) -> Result<WorkloadEndpoint> {
        workloads::register(self, endpoint).await
    }

    async fn unregister_workload(
        &self,
        namespace: &str,
        pod: &str,
        container_id: &str,
    ) -> Result<Option<WorkloadEndpoint>> {
        workloads::unregister(self, namespace, pod, container_id).await
    }
}

/// [`Datastore::create`]: the overlap check around the write for disjoint kinds.
async fn create<R: Resource, B: Backend + ?Sized>(store: &B, resource: &R) -> Result<R> {
    let value = encode(resource)?;
    if R::DISJOINT {
        refuse_overlap(store, resource).await?;
    }
    let (kind, name) = (Kind::of::<R>(), resource.name());
    let created: R = decode(store.create_record(kind, name, value).await?)?;
    if R::DISJOINT
        && let Err(overlap) = refuse_overlap(store, &created).await
    {
        // Another one was created meanwhile: withdraw ours (see refuse_overlap).
        match store.delete_record(kind, name, None).await {
            Ok(_) | Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        return Err(overlap);
    }
    Ok(created)
}

/// [`Datastore::update`]: immutable fields checked against the stored object.
async fn update<R: Resource, B: Backend + ?Sized>(store: &B, resource: &R) -> Result<R> {
    let (kind, name) = (Kind::of::<R>(), resource.name());
    let expected = resource.revision().ok_or_else(|| Error::MissingRevision {
        kind: kind.name,
        name: name.to_owned(),
    })?;
    let value = encode(resource)?;
    if !R::IMMUTABLE.is_empty() {
        let old: R = store.get(name).await?;
        let actual = old.revision().expect("decode sets the revision");
        if actual != expected {
            return Err(Error::Conflict {
                kind: kind.name,
                name: name.to_owned(),
                expected,
                actual: Some(actual),
            });
        }
        // Checked against the state at `expected`; the swap fails if it moved on.
        resource
            .validate_update(&old)
            .map_err(|source| invalid::<R>(name, source))?;
    }
    decode(store.update_record(kind, name, value, expected).await?)
}

/// `Ok(true)` for a found object, `Ok(false)` for a missing one.
fn exists<T>(found: Result<T>) -> Result<bool> {
    match found {
        Ok(_) => Ok(true),
        Err(Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Every object of a kind whose labels match `selector` (all without one), page by
/// page, with every page's skipped objects. The list's revision is the first page's:
/// a watch from it replays whatever changed while the later pages were read.
/// `continue_token` is always `None`.
pub async fn list_all<R: Resource, D: Datastore + Sync + ?Sized>(
    store: &D,
    selector: Option<Selector>,
) -> Result<List<R>> {
    let mut options = ListOptions {
        selector,
        limit: Some(LIST_ALL_PAGE),
        continue_token: None,
    };
    let mut all = store.list::<R>(&options).await?;
    while let Some(token) = all.continue_token.take() {
        options.continue_token = Some(token);
        let page = store.list::<R>(&options).await?;
        all.items.extend(page.items);
        all.skipped.extend(page.skipped);
        all.continue_token = page.continue_token;
    }
    Ok(all)
}

/// Fails when `resource` overlaps another object of its kind ([`Resource::DISJOINT`]).
///
/// `create` asks before writing and again after: of two overlapping objects created
/// at once, each writes and then lists, and the list of the later writer sees the
/// earlier one (every backend's lists are linearizable: memory, etcd, the API
/// server's default list). So at most one stays; both may withdraw. Objects
/// written past tabby (kubectl, etcdctl) are not checked here: the IPAM claim keeps
/// blocks apart on its own.
async fn refuse_overlap<R: Resource, D: Datastore + Sync + ?Sized>(
    store: &D,
    resource: &R,
) -> Result<()> {
    let others = list_all::<R, D>(store, None).await?.items;
    let overlap = others
        .iter()
        .filter(|other| other.name() != resource.name())
        .find_map(|other| resource.overlap(other));
    match overlap {
        Some(source) => Err(invalid::<R>(resource.name(), source)),
        None => Ok(()),
    }
}

/// Page size of [`list_all`].
const LIST_ALL_PAGE: usize = 500;

fn invalid<R: Resource>(name: &str, source: ValidationError) -> Error {
    Error::Invalid {
        kind: R::KIND,
        name: name.to_owned(),
        source,
    }
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
