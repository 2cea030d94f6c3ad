//! The kubernetes backend: tabby's kinds as custom resources (group `tabby.dev`,
//! version `v1`, cluster-scoped; `manifests/crds/crds.yaml` installs them), read and
//! written through the API server with kube's client.
//!
//! - A resource's revision is its `metadata.resourceVersion`. Kubernetes calls it
//!   opaque; every API server backed by etcd writes etcd's revision there, and tabby
//!   relies on that (a non-numeric one is [`Error::UnsupportedRevision`]).
//! - Create is `POST` (409 AlreadyExists → [`Error::AlreadyExists`]); update is `PUT`
//!   carrying the expected `resourceVersion` (409 Conflict → [`Error::Conflict`], without
//!   the actual revision, which the API does not say); delete carries it as a
//!   precondition. The server-set metadata (uid, timestamps, generation, managed
//!   fields) is dropped on read: tabby's objects hold name, labels and annotations.
//! - Lists page with the server's `limit` and `continue`; a continue token the server
//!   no longer honours (410) is [`Error::Expired`]. Selectors that are a conjunction of
//!   label terms go to the server as a `labelSelector`; others (`||`, negated groups)
//!   are evaluated here, over server pages, so they cost more reads on large kinds.
//! - Watches ask for bookmarks and resume from the last revision seen (event or
//!   bookmark) when the server ends the stream, as it does every few minutes. A 410
//!   Gone (the revision left the server's window) is answered by listing, delivering
//!   [`WatchEvent::Resync`](super::WatchEvent::Resync), and following on from the list.
//! - `write_all` cannot be a transaction: the Kubernetes API has none across objects
//!   (each object is its own resource; no batch or multi-object precondition exists).
//!   The best it allows is one round trip of latency: every write is its own request,
//!   all sent at once, each succeeding or failing alone ([`super::write_each`]).
//! - Pods and nodes are the core `Pod`s and `Node`s, read-only ([`Inventory`]).
//! - BGP passwords' `secretKeyRef`s are core `Secret`s in the client's namespace
//!   (in a pod, its own), read by name ([`Secrets`]).

mod inventory;
mod secrets;
mod selector;
mod watch;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use kube::core::Request;
use kube::core::params::{DeleteParams, ListParams, PostParams, Preconditions};
use serde_json::{Map, Value, json};

use super::{
    Backend, Error, Inventory, Kind, List, ListOptions, Record, Result, Secrets, WatchStream,
    Write, selected, write_each,
};
use crate::resources::{API_VERSION, Revision};

/// Objects per request when the client filters or reads a whole kind.
const CHUNK: u32 = 500;

/// A datastore in the Kubernetes API.
#[derive(Clone)]
pub struct KubeStore {
    client: kube::Client,
}

impl std::fmt::Debug for KubeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeStore").finish_non_exhaustive()
    }
}

impl KubeStore {
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }

    /// The client it talks through.
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// The cluster a pod's service account, or else `$KUBECONFIG`, points at.
    pub async fn infer() -> Result<Self> {
        Ok(Self::new(kube::Client::try_default().await?))
    }

    /// An API server at `url` without credentials (`http://127.0.0.1:<port>`): a
    /// local proxy such as `kubectl proxy`, or the test double.
    pub fn at(url: &str) -> Result<Self> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| Error::Config(format!("{url:?} is not a URL: {e}")))?;
        let config = kube::Config::new(uri);
        Ok(Self::new(kube::Client::try_from(config)?))
    }

    fn request(kind: Kind) -> Request {
        Request::new(format!("/apis/{API_VERSION}/{}", kind.plural))
    }

    async fn call(&self, request: http::Request<Vec<u8>>) -> Result<Value> {
        Ok(self.client.request::<Value>(request).await?)
    }

    /// One server page, as records.
    async fn server_page(&self, kind: Kind, params: &ListParams) -> Result<List<Record>> {
        let request = Self::request(kind).list(params).map_err(request_error)?;
        let mut list = self.call(request).await.map_err(|e| match api_code(&e) {
            Some(410) => Error::Expired(
                params
                    .continue_token
                    .as_deref()
                    .and_then(token_revision)
                    .unwrap_or(Revision(0)),
            ),
            Some(400) if params.continue_token.is_some() => {
                Error::BadContinueToken(params.continue_token.clone().unwrap_or_default())
            }
            _ => e,
        })?;
        let revision = revision_at(&list, "/metadata/resourceVersion")?;
        let continue_token = list
            .pointer("/metadata/continue")
            .and_then(Value::as_str)
            .filter(|token| !token.is_empty())
            .map(str::to_owned);
        let items = match list.get_mut("items").map(Value::take) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        let items = items
            .into_iter()
            .map(|item| record(kind, item))
            .collect::<Result<_>>()?;
        Ok(List::new(items, revision, continue_token))
    }

    /// Every object of a kind at one revision, for a resync.
    async fn snapshot(&self, kind: Kind) -> Result<List<Record>> {
        self.list_records(kind, &ListOptions::default()).await
    }
}

#[async_trait]
impl Backend for KubeStore {
    async fn get_record(&self, kind: Kind, name: &str) -> Result<Record> {
        let request = Self::request(kind)
            .get(name, &Default::default())
            .map_err(request_error)?;
        let value = self
            .call(request)
            .await
            .map_err(|e| not_found_as(e, kind, name))?;
        record(kind, value)
    }

    async fn list_records(&self, kind: Kind, options: &ListOptions) -> Result<List<Record>> {
        let limit = options.limit.unwrap_or(usize::MAX).max(1);
        let server_side = options
            .selector
            .as_ref()
            .map(|s| selector::label_selector(s.expr()));
        let mut params = ListParams {
            continue_token: options.continue_token.clone(),
            ..ListParams::default()
        };
        if let Some(Some(labels)) = &server_side {
            params.label_selector = Some(labels.clone()).filter(|l| !l.is_empty());
        }
        let filtering = matches!(server_side, Some(None));
        let mut items = Vec::new();
        loop {
            // Ask for no more than the page still needs, so the server's continue
            // token is exactly where this page ends.
            let wanted = limit - items.len();
            params.limit = Some(u32::try_from(wanted).unwrap_or(CHUNK).min(CHUNK));
            let page = self.server_page(kind, &params).await?;
            items.extend(
                page.items
                    .into_iter()
                    .filter(|record| !filtering || selected(options, &record.value)),
            );
            match page.continue_token {
                Some(token) if items.len() < limit => params.continue_token = Some(token),
                continue_token => {
                    return Ok(List::new(items, page.revision, continue_token));
                }
            }
        }
    }

    async fn create_record(&self, kind: Kind, name: &str, value: Value) -> Result<Record> {
        let body = to_object(kind, name, value, None);
        let request = Self::request(kind)
            .create(&PostParams::default(), body.to_string().into_bytes())
            .map_err(request_error)?;
        match self.call(request).await {
            Ok(created) => record(kind, created),
            Err(e) if api_code(&e) == Some(409) => Err(Error::AlreadyExists {
                kind: kind.name,
                name: name.to_owned(),
            }),
            Err(e) => Err(e),
        }
    }

    async fn update_record(
        &self,
        kind: Kind,
        name: &str,
        value: Value,
        expected: Revision,
    ) -> Result<Record> {
        let body = to_object(kind, name, value, Some(expected));
        let request = Self::request(kind)
            .replace(name, &PostParams::default(), body.to_string().into_bytes())
            .map_err(request_error)?;
        match self.call(request).await {
            Ok(updated) => record(kind, updated),
            Err(e) => Err(conflict_as(
                not_found_as(e, kind, name),
                kind,
                name,
                expected,
            )),
        }
    }

    async fn delete_record(
        &self,
        kind: Kind,
        name: &str,
        expected: Option<Revision>,
    ) -> Result<Record> {
        let params = DeleteParams {
            preconditions: expected.map(|revision| Preconditions {
                resource_version: Some(revision.to_string()),
                uid: None,
            }),
            ..DeleteParams::default()
        };
        let request = Self::request(kind)
            .delete(name, &params)
            .map_err(request_error)?;
        match self.call(request).await {
            // Without finalizers, the API server answers with the object as it was.
            Ok(deleted) => record(kind, deleted),
            Err(e) => {
                let e = not_found_as(e, kind, name);
                Err(match expected {
                    Some(expected) => conflict_as(e, kind, name, expected),
                    None => e,
                })
            }
        }
    }

    /// Not atomic: the API has no multi-object transaction (see the module's notes).
    async fn write_all(&self, writes: Vec<Write>) -> Vec<Result<Record>> {
        write_each(self, writes).await
    }

    async fn watch_records(&self, kind: Kind, from: Revision) -> Result<WatchStream<Record>> {
        watch::start(self.clone(), kind, from).await
    }

    fn inventory(&self) -> Option<&dyn Inventory> {
        Some(self)
    }

    fn secrets(&self) -> Option<&dyn Secrets> {
        Some(self)
    }

    fn kube_client(&self) -> Option<kube::Client> {
        Some(self.client())
    }
}

/// A stored custom resource as a record: tabby's metadata fields only, the
/// revision taken out.
fn record(kind: Kind, mut object: Value) -> Result<Record> {
    let revision = revision_at(&object, "/metadata/resourceVersion")?;
    let metadata = object
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .map(std::mem::take)
        .unwrap_or_default();
    let name = metadata
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut kept = Map::new();
    for field in ["name", "labels", "annotations"] {
        if let Some(value) = metadata.get(field).filter(|v| !is_empty(v)) {
            kept.insert(field.to_owned(), value.clone());
        }
    }
    let mut value = Map::new();
    value.insert("apiVersion".into(), API_VERSION.into());
    value.insert("kind".into(), kind.name.into());
    value.insert("metadata".into(), Value::Object(kept));
    if let Some(spec) = object.get_mut("spec").map(Value::take) {
        value.insert("spec".into(), spec);
    }
    Ok(Record {
        name,
        revision,
        value: Value::Object(value),
    })
}

fn is_empty(value: &Value) -> bool {
    value.as_object().is_some_and(Map::is_empty) || value.is_null()
}

/// The custom resource to send: the record's JSON, with the expected revision.
fn to_object(kind: Kind, name: &str, mut value: Value, expected: Option<Revision>) -> Value {
    if let Some(object) = value.as_object_mut() {
        object.insert("apiVersion".into(), API_VERSION.into());
        object.insert("kind".into(), kind.name.into());
        let metadata = object
            .entry("metadata")
            .or_insert_with(|| json!({}))
            .as_object_mut();
        if let Some(metadata) = metadata {
            metadata.insert("name".into(), name.into());
            if let Some(expected) = expected {
                metadata.insert("resourceVersion".into(), expected.to_string().into());
            }
        }
    }
    value
}

fn revision_at(value: &Value, pointer: &str) -> Result<Revision> {
    let text = value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default();
    text.parse()
        .map(Revision)
        .map_err(|_| Error::UnsupportedRevision(text.to_owned()))
}

/// The revision a Kubernetes continue token pins its list to. Tokens are base64
/// JSON, `{"v":"meta.k8s.io/v1","rv":123,"start":"..."}`; read only to name the
/// revision in [`Error::Expired`].
fn token_revision(token: &str) -> Option<Revision> {
    let bytes = BASE64.decode(token).ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    value.get("rv")?.as_u64().map(Revision)
}

fn api_code(error: &Error) -> Option<u16> {
    match error {
        Error::Kubernetes(kube::Error::Api(status)) => Some(status.code),
        _ => None,
    }
}

fn not_found_as(error: Error, kind: Kind, name: &str) -> Error {
    match api_code(&error) {
        Some(404) => Error::NotFound {
            kind: kind.name,
            name: name.to_owned(),
        },
        _ => error,
    }
}

fn conflict_as(error: Error, kind: Kind, name: &str, expected: Revision) -> Error {
    match api_code(&error) {
        Some(409) => Error::Conflict {
            kind: kind.name,
            name: name.to_owned(),
            expected,
            actual: None,
        },
        _ => error,
    }
}

fn request_error(error: kube::core::request::Error) -> Error {
    Error::Config(format!("building a request: {error}"))
}
