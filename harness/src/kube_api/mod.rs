//! An API double for the kubernetes backend: a real HTTP server on a free loopback
//! port, speaking the Kubernetes API's JSON for the parts tabby uses.
//!
//! A real kube-apiserver cannot be installed on these machines (no package registry
//! reachable here ships one, and nothing may be downloaded from elsewhere), so the
//! kubernetes backend is tested against this double instead. kube's client talks to
//! it over plain `http://` exactly as to a cluster.
//!
//! What it models, following the real API's semantics:
//! - Custom resources, once their `CustomResourceDefinition` is created (`POST
//!   /apis/apiextensions.k8s.io/v1/customresourcedefinitions`, as `kubectl apply -k
//!   manifests/crds` does): cluster-scoped `/apis/<group>/<version>/<plural>`;
//!   an uninstalled kind is 404. Core `Node`s (`/api/v1/nodes`), `Pod`s
//!   (`/api/v1/namespaces/<ns>/pods`, `/api/v1/pods` across namespaces) and
//!   `Secret`s (`/api/v1/namespaces/<ns>/secrets`, `data` only: the real server
//!   merges write-only `stringData` into `data`, this double does not), core
//!   `Service`s (`/api/v1/namespaces/<ns>/services`; the double allocates no
//!   cluster IP: a test writes the one it wants) and `discovery.k8s.io/v1`
//!   `EndpointSlice`s (`/apis/discovery.k8s.io/v1/namespaces/<ns>/endpointslices`,
//!   as the EndpointSlice controller writes them), both across namespaces too.
//! - get, list, create (`POST`), replace (`PUT`), patch (`PATCH`: merge, JSON and
//!   strategic merge patch, see [`patch`]), delete with preconditions, watch.
//! - The `status` subresource (`<object>/status`: get, replace, patch) of core Nodes
//!   and Pods and of custom resources whose CRD version declares it: a write to the
//!   object keeps its stored `status`, a write to `status` changes nothing else.
//!   (Created objects keep the status they were created with, as kubelet's Node
//!   registration relies on.)
//! - `resourceVersion`: one counter for every object, as etcd's revision under a real
//!   server. Replace needs the stored one (custom resources allow no unconditional
//!   update: 422), otherwise 409 Conflict; create of a taken name is 409
//!   AlreadyExists; a delete precondition that does not hold is 409; a missing object
//!   is 404; errors are `Status` objects with `reason` and `details`. The server sets
//!   `uid`, `creationTimestamp` and `generation` (bumped when `spec` changes).
//! - Lists in key order with `limit` and `continue` tokens in the API server's format;
//!   every page of a list reads the revision of its first page; a token older than the
//!   kept history is 410 Expired, a malformed one 400.
//! - `labelSelector` on lists and watches, with the real grammar (a bad one is 400).
//! - Watches from a `resourceVersion` (0 or none: the current state as ADDED, then
//!   changes), with `BOOKMARK` events when `allowWatchBookmarks=true`, ended after
//!   `timeoutSeconds` (and at most [`KubeApi::set_max_watch`]), and a 410 `ERROR` event
//!   for a version older than the kept history. History is bounded
//!   ([`KubeApi::set_history_limit`]) and can be compacted by the test
//!   ([`KubeApi::compact`]); [`KubeApi::end_watches`] drops every open watch, as an API
//!   server restart does.
//!
//! - ValidatingAdmissionPolicies ([`KubeApi::install_policy`], see [`admission`]) on
//!   every create, replace and delete, for requests made as the user a test names
//!   ([`KubeApi::act_as`]; a cluster admin until then).
//! - Structural-schema pruning of custom resources' writes by their CRD's schema
//!   (see [`pruning`]), with the API server's `Warning` header per dropped field.
//! - Bearer tokens ([`KubeApi::add_token`]): a request carrying one is made as its
//!   user, an unknown one is 401.
//! - RBAC ([`KubeApi::authorize`], see [`authorization`]): once grants are
//!   installed, every request of a user outside `system:masters` needs one (403).
//! - Discovery (`/api`, `/apis`, each group version's resource list), `/version` and
//!   the health endpoints, so kubectl resolves names against it (see [`discovery`]).
//! - Run as a process (`tabby-kube-api`, started by [`process`]) for binaries that
//!   reach it over the network.
//!
//! What it does not model: TLS, anonymous requests (requests without a token are
//! the named user's, where a real server would make them `system:anonymous`), RBAC's
//! wildcards and aggregated ClusterRoles, other admission, OpenAPI schema
//! validation of custom resources' values (tabby validates before writing;
//! `crdgen`'s schemas are checked separately), server-side apply, subresources but
//! `status` (no `scale`, `log`, `exec`, …), field selectors, namespaced custom
//! resources, finalizers and graceful deletion, `resourceVersionMatch`, and the
//! DELETED events a label-selected watch sends for objects that stop matching (this
//! double sends the change as it happened to any watch either state matched).

pub mod admission;
mod authorization;
pub mod calls;
mod discovery;
mod handlers;
pub mod labels;
pub mod objects;
pub mod patch;
pub mod process;
pub mod pruning;
mod store;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use handlers::{Body, Target, json_response, status};
use store::Store;

/// Changes kept for watches and pinned lists unless a test says otherwise.
const HISTORY_LIMIT: usize = 100_000;
const BOOKMARK_INTERVAL: Duration = Duration::from_millis(200);
/// The longest a watch request stays open (the real server's default is minutes).
const MAX_WATCH: Duration = Duration::from_secs(300);

/// One kind the double serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Empty for the core group.
    pub group: String,
    pub version: String,
    pub plural: String,
    /// The lower-case singular name and short names, as discovery lists them.
    pub singular: String,
    pub short_names: Vec<String>,
    pub kind: String,
    pub namespaced: bool,
    /// A custom resource's `openAPIV3Schema`, which writes are pruned by.
    pub schema: Option<Arc<Value>>,
    /// Its `status` is written through the `status` subresource only.
    pub status_subresource: bool,
}

impl Resource {
    fn id(&self) -> String {
        format!("{}/{}", self.group, self.plural)
    }

    fn api_version(&self) -> String {
        match self.group.as_str() {
            "" => self.version.clone(),
            group => format!("{group}/{}", self.version),
        }
    }

    /// Defined by a CRD (not one of Kubernetes' own groups).
    fn is_custom(&self) -> bool {
        !self.group.is_empty() && !BUILT_IN_GROUPS.contains(&self.group.as_str())
    }

    fn core(plural: &str, short_name: Option<&str>, kind: &str, namespaced: bool) -> Self {
        Self {
            // Of the core kinds served, Secrets have no status.
            status_subresource: kind != "Secret",
            group: String::new(),
            version: "v1".into(),
            plural: plural.into(),
            singular: kind.to_lowercase(),
            short_names: short_name.into_iter().map(str::to_owned).collect(),
            kind: kind.into(),
            namespaced,
            schema: None,
        }
    }

    /// A namespaced kind of one of Kubernetes' own named groups.
    fn built_in(group: &str, plural: &str, short_name: &str, kind: &str) -> Self {
        Self {
            group: group.into(),
            short_names: vec![short_name.into()],
            ..Self::core(plural, None, kind, true)
        }
    }
}

/// Named API groups the double serves without a CRD.
const BUILT_IN_GROUPS: [&str; 1] = ["discovery.k8s.io"];

/// The installed policies, the user requests without credentials are made as, the
/// bearer tokens the double knows, and RBAC's grants by user once installed.
#[derive(Debug)]
struct Admission {
    policies: Vec<admission::Policy>,
    user: admission::UserInfo,
    tokens: BTreeMap<String, admission::UserInfo>,
    rbac: Option<BTreeMap<String, calls::Granted>>,
}

impl Default for Admission {
    fn default() -> Self {
        Self {
            policies: Vec::new(),
            user: admission::UserInfo::cluster_admin(),
            tokens: BTreeMap::new(),
            rbac: None,
        }
    }
}

/// What the server's connections share.
#[derive(Debug)]
struct Shared {
    store: Mutex<Store>,
    /// Served kinds by `(group, plural)`.
    resources: Mutex<BTreeMap<(String, String), Resource>>,
    requests: Mutex<Vec<String>>,
    /// `<plural>/<name>: <field>` of every field pruned from a write.
    pruned: Mutex<Vec<String>>,
    admission: Mutex<Admission>,
    uids: AtomicU64,
    bookmark_interval: Duration,
    max_watch: Duration,
    this: std::sync::Weak<Shared>,
}

impl Shared {
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn admission(&self) -> MutexGuard<'_, Admission> {
        self.admission.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn clone_handle(&self) -> Arc<Shared> {
        self.this.upgrade().expect("the server is running")
    }

    fn next_uid(&self) -> String {
        let n = self.uids.fetch_add(1, Ordering::SeqCst);
        format!("00000000-0000-4000-8000-{n:012x}")
    }

    fn resource(&self, group: &str, plural: &str) -> Option<Resource> {
        let resources = self.resources.lock().unwrap_or_else(|p| p.into_inner());
        resources
            .get(&(group.to_owned(), plural.to_owned()))
            .cloned()
    }
}

/// A running double; stops on drop.
#[derive(Debug)]
pub struct KubeApi {
    address: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

/// Settings of a double, before it starts.
#[derive(Debug, Clone)]
pub struct KubeApiOptions {
    pub bookmark_interval: Duration,
    pub max_watch: Duration,
    pub history_limit: usize,
}

impl Default for KubeApiOptions {
    fn default() -> Self {
        Self {
            bookmark_interval: BOOKMARK_INTERVAL,
            max_watch: MAX_WATCH,
            history_limit: HISTORY_LIMIT,
        }
    }
}

impl KubeApi {
    /// Starts serving on a free loopback port (inside a tokio runtime).
    pub async fn start(options: KubeApiOptions) -> Result<Self> {
        Self::start_on((Ipv4Addr::LOCALHOST, 0).into(), options).await
    }

    /// Starts serving on `address` (port 0: a free one; see [`KubeApi::address`]).
    pub async fn start_on(address: SocketAddr, options: KubeApiOptions) -> Result<Self> {
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("binding the API double to {address}"))?;
        let address = listener.local_addr()?;
        let resources = [
            Resource::core("nodes", Some("no"), "Node", false),
            Resource::core("pods", Some("po"), "Pod", true),
            Resource::core("secrets", None, "Secret", true),
            Resource::core("services", Some("svc"), "Service", true),
            Resource::built_in("discovery.k8s.io", "endpointslices", "eps", "EndpointSlice"),
        ]
        .into_iter()
        .map(|r| ((r.group.clone(), r.plural.clone()), r))
        .collect();
        let shared = Arc::new_cyclic(|this| Shared {
            store: Mutex::new(Store::new(options.history_limit)),
            resources: Mutex::new(resources),
            requests: Mutex::new(Vec::new()),
            pruned: Mutex::new(Vec::new()),
            admission: Mutex::new(Admission::default()),
            uids: AtomicU64::new(1),
            bookmark_interval: options.bookmark_interval,
            max_watch: options.max_watch,
            this: this.clone(),
        });
        let task = tokio::spawn(serve(listener, shared.clone()));
        Ok(Self {
            address,
            shared,
            task,
        })
    }

    /// `http://127.0.0.1:<port>`, the cluster URL for kube's client.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The double with tabby's CRDs from `manifests/crds` installed, and a
    /// kubernetes datastore talking to it.
    pub async fn with_tabby_crds() -> Result<(Self, Arc<dyn api::datastore::Backend>)> {
        let api = Self::start(KubeApiOptions::default()).await?;
        api.install_crds(&crate::manifests::crds()?)?;
        let store = Arc::new(api::datastore::KubeStore::at(&api.url())?);
        Ok((api, store))
    }

    /// Installs the CRDs of a manifest (YAML documents), as `kubectl apply` would.
    pub fn install_crds(&self, manifest: &str) -> Result<()> {
        for document in yaml_serde::Deserializer::from_str(manifest) {
            let crd: Value = serde::Deserialize::deserialize(document).context("CRD YAML")?;
            register_crd(&self.shared, &crd).map_err(anyhow::Error::msg)?;
        }
        Ok(())
    }

    /// Forgets history up to `revision`: older watches get 410, older continue
    /// tokens expire.
    pub fn compact(&self, revision: u64) {
        self.shared.store().compact(revision);
    }

    pub fn set_history_limit(&self, limit: usize) {
        self.shared.store().set_history_limit(limit);
    }

    /// Ends every open watch response.
    pub fn end_watches(&self) {
        self.shared.store().end_watches();
    }

    /// The current revision.
    pub fn revision(&self) -> u64 {
        self.shared.store().revision()
    }

    /// A client of the double, as kube's client talks to a cluster (its namespace
    /// is `default`).
    pub fn client(&self) -> Result<kube::Client> {
        let uri: http::Uri = self.url().parse()?;
        Ok(kube::Client::try_from(kube::Config::new(uri))?)
    }

    /// Creates or replaces the Secret `namespace/name` holding `data` (see
    /// [`objects::put_secret`]).
    pub async fn put_secret(
        &self,
        namespace: &str,
        name: &str,
        data: &[(&str, &str)],
    ) -> Result<()> {
        objects::put_secret(&self.client()?, namespace, name, data).await
    }

    /// Registers the core Node `name` (see [`objects::put_node`]).
    pub async fn put_node(&self, name: &str, internal_ips: &[std::net::IpAddr]) -> Result<()> {
        objects::put_node(&self.client()?, name, internal_ips).await
    }

    /// Deletes the core Node `name`, as `kubectl delete node` does.
    pub async fn delete_node(&self, name: &str) -> Result<()> {
        objects::delete_node(&self.client()?, name).await
    }

    /// Judges every later write by `policy`, as an API server with the policy and
    /// its binding applied does.
    pub fn install_policy(&self, policy: admission::Policy) {
        self.shared.admission().policies.push(policy);
    }

    /// Makes every later request without credentials as `user` (what a token
    /// would authenticate as).
    pub fn act_as(&self, user: admission::UserInfo) {
        self.shared.admission().user = user;
    }

    /// Authenticates `Authorization: Bearer <token>` as `user`, as the API server's
    /// token authenticators do; an unknown token is 401 Unauthorized.
    pub fn add_token(&self, token: &str, user: admission::UserInfo) {
        self.shared
            .admission()
            .tokens
            .insert(token.to_owned(), user);
    }

    /// Authorizes `username`'s requests by `granted`, as RBAC with the user's Roles
    /// and bindings applied does. From the first call on, every user outside
    /// `system:masters` is authorized (one never named has no grant: 403).
    pub fn authorize(&self, username: &str, granted: calls::Granted) {
        self.shared
            .admission()
            .rbac
            .get_or_insert_default()
            .insert(username.to_owned(), granted);
    }

    /// The fields pruned from writes so far (`<plural>/<name>: <field path>`),
    /// taken: a second call returns only later ones.
    pub fn take_pruned(&self) -> Vec<String> {
        std::mem::take(&mut *self.shared.pruned.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// `METHOD /path?query` of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        self.task.abort();
        self.shared.store().end_watches();
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    while let Ok((stream, _)) = listener.accept().await {
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let shared = shared.clone();
                async move { Ok::<_, std::convert::Infallible>(route(&shared, request).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route(shared: &Shared, request: Request<Incoming>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let query = parse_query(parts.uri.query().unwrap_or(""));
    shared
        .requests
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(format!("{} {}", parts.method, parts.uri));
    let Some(user) = authenticate(shared, &parts.headers) else {
        return status(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Unauthorized".into(),
            json!({}),
        );
    };
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    if let Some(denied) = authorize(shared, &user, &parts.method, &parts.uri, &segments) {
        return denied;
    }
    if segments[..]
        == [
            "apis",
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
        ]
        && parts.method == Method::POST
    {
        return match serde_json::from_slice(&body)
            .map_err(|e| e.to_string())
            .and_then(|crd| register_crd(shared, &crd))
        {
            Ok(crd) => json_response(StatusCode::CREATED, &crd),
            Err(e) => status(StatusCode::BAD_REQUEST, "BadRequest", e, json!({})),
        };
    }
    if parts.method == Method::GET
        && let Some(answer) = discovery::answer(shared, &segments)
    {
        return answer;
    }
    match target(shared, &segments) {
        Some(target) => {
            let content_type = parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("");
            let request = handlers::Call {
                method: &parts.method,
                query: &query,
                content_type,
                body,
            };
            handlers::handle(shared, &user, target, request).await
        }
        None => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource".into(),
            json!({}),
        ),
    }
}

/// 403 Forbidden when RBAC is installed and no grant of `user` covers the request;
/// requests no resource verb covers (discovery, `/version`, health) pass.
fn authorize(
    shared: &Shared,
    user: &admission::UserInfo,
    method: &Method,
    uri: &http::Uri,
    segments: &[&str],
) -> Option<Response<Body>> {
    let admission = shared.admission();
    let rbac = admission.rbac.as_ref()?;
    let call = calls::call_of(&format!("{method} {uri}")).ok()?;
    let rest = match segments {
        ["api", _, rest @ ..] | ["apis", _, _, rest @ ..] => rest,
        _ => return None,
    };
    let (namespace, name) = match rest {
        ["namespaces", namespace, _, name, ..] => (*namespace, Some(*name)),
        ["namespaces", namespace, _] => (*namespace, None),
        [_, name, ..] => ("", Some(*name)),
        _ => ("", None),
    };
    let message = authorization::forbidden(rbac, user, &call, namespace, name)?;
    Some(status(
        StatusCode::FORBIDDEN,
        "Forbidden",
        message,
        json!({"name": name.unwrap_or_default(), "group": call.group, "kind": call.resource}),
    ))
}

/// The user a request is made as: its bearer token's (401 for a token the double
/// does not know), else the one [`KubeApi::act_as`] names. A real server would
/// treat a request without credentials as `system:anonymous`; the in-process tests
/// rely on it being the named user.
fn authenticate(shared: &Shared, headers: &http::HeaderMap) -> Option<admission::UserInfo> {
    let admission = shared.admission();
    let Some(authorization) = headers.get(http::header::AUTHORIZATION) else {
        return Some(admission.user.clone());
    };
    authorization
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Bearer "))
        .and_then(|token| admission.tokens.get(token.trim()))
        .cloned()
}

/// Resolves `/api/v1/...` and `/apis/<group>/<version>/...` to a served resource.
fn target(shared: &Shared, segments: &[&str]) -> Option<Target> {
    let (group, version, rest) = match segments {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let (namespace, plural, name) = match rest {
        ["namespaces", namespace, plural, name @ ..] => (*namespace, *plural, name),
        [plural, name @ ..] => ("", *plural, name),
        _ => return None,
    };
    // `<name>/status`, for kinds that have the subresource.
    let (name, subresource) = match name {
        [name, "status"] if resource_has_status(shared, group, plural) => {
            (std::slice::from_ref(name), Some("status".to_owned()))
        }
        name => (name, None),
    };
    let resource = shared.resource(group, plural)?;
    let namespaced_path = !namespace.is_empty();
    let allowed = resource.version == version
        && name.len() <= 1
        // A namespaced kind's object lives under its namespace; a list may span all.
        && (resource.namespaced || !namespaced_path)
        && (namespaced_path || !resource.namespaced || name.is_empty());
    allowed.then(|| Target {
        resource,
        namespace: namespace.to_owned(),
        name: name.first().map(|n| n.to_string()),
        subresource,
    })
}

fn resource_has_status(shared: &Shared, group: &str, plural: &str) -> bool {
    shared
        .resource(group, plural)
        .is_some_and(|r| r.status_subresource)
}

/// Serves the kind a CRD defines (served version `v1` and others alike).
fn register_crd(shared: &Shared, crd: &Value) -> Result<Value, String> {
    let spec = crd.get("spec").ok_or("a CRD needs a spec")?;
    let text = |pointer: &str| {
        spec.pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(format!("a CRD needs spec{}", pointer.replace('/', ".")))
    };
    let (group, plural, kind) = (
        text("/group")?,
        text("/names/plural")?,
        text("/names/kind")?,
    );
    let namespaced = text("/scope")? == "Namespaced";
    let singular = text("/names/singular").unwrap_or_else(|_| kind.to_lowercase());
    let short_names: Vec<String> = spec
        .pointer("/names/shortNames")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|name| Some(name.as_str()?.to_owned()))
        .collect();
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .ok_or("a CRD needs spec.versions")?;
    let mut resources = shared.resources.lock().unwrap_or_else(|p| p.into_inner());
    for version in versions {
        if version.get("served").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let name = version
            .get("name")
            .and_then(Value::as_str)
            .ok_or("a CRD version needs a name")?;
        resources.insert(
            (group.clone(), plural.clone()),
            Resource {
                group: group.clone(),
                version: name.to_owned(),
                plural: plural.clone(),
                singular: singular.clone(),
                short_names: short_names.clone(),
                kind: kind.clone(),
                namespaced,
                schema: version
                    .pointer("/schema/openAPIV3Schema")
                    .cloned()
                    .map(Arc::new),
                status_subresource: version.pointer("/subresources/status").is_some(),
            },
        );
    }
    Ok(crd.clone())
}

/// `a=b&c=d` with percent-decoding (and `+` as space), as kube's client encodes it.
fn parse_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| std::str::from_utf8(&bytes[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[i], escaped) {
            (_, Some(byte)) => {
                out.push(byte);
                i += 2;
            }
            (b'+', None) => out.push(b' '),
            (byte, None) => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
