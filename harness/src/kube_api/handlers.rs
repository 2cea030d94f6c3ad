//! The API's verbs on one resource: get, list (limit, continue, labelSelector), create,
//! replace, patch, delete (with preconditions) and watch (resourceVersion, bookmarks,
//! timeoutSeconds), and get, replace and patch of the `status` subresource,
//! answering with the real API's status codes and `Status` bodies.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use futures::StreamExt;
use http::{Method, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::admission::UserInfo;
use super::labels::LabelSelector;
use super::patch::{PatchError, PatchType};
use super::store::{Key, Store, TooOld, WatchFilter, event_line, labels};
use super::{Resource, Shared};

pub type Body = BoxBody<Bytes, Infallible>;

/// What a request addresses: a resource, maybe a namespace, maybe one object,
/// maybe its `status` subresource.
#[derive(Debug)]
pub struct Target {
    pub resource: Resource,
    pub namespace: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// What a request asks of its target.
#[derive(Debug)]
pub struct Call<'a> {
    pub method: &'a Method,
    pub query: &'a BTreeMap<String, String>,
    pub content_type: &'a str,
    pub body: Bytes,
}

pub fn json_response(code: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())).boxed())
        .expect("a valid response")
}

/// A `Status` failure, as the API server sends them.
pub fn status(code: StatusCode, reason: &str, message: String, details: Value) -> Response<Body> {
    json_response(
        code,
        &json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "details": details,
            "code": code.as_u16(),
        }),
    )
}

impl Target {
    fn key(&self, name: &str) -> Key {
        Key {
            resource: self.resource.id(),
            namespace: self.namespace.clone(),
            name: name.to_owned(),
        }
    }

    fn details(&self, name: &str) -> Value {
        json!({"name": name, "group": self.resource.group, "kind": self.resource.plural})
    }

    fn qualified(&self) -> String {
        match self.resource.group.as_str() {
            "" => self.resource.plural.clone(),
            group => format!("{}.{group}", self.resource.plural),
        }
    }

    fn not_found(&self, name: &str) -> Response<Body> {
        status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{} {name:?} not found", self.qualified()),
            self.details(name),
        )
    }

    fn conflict(&self, name: &str, message: String) -> Response<Body> {
        status(
            StatusCode::CONFLICT,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} {name:?}: {message}",
                self.qualified()
            ),
            self.details(name),
        )
    }
}

pub async fn handle(
    shared: &Shared,
    user: &UserInfo,
    target: Target,
    call: Call<'_>,
) -> Response<Body> {
    let Call {
        method,
        query,
        content_type,
        body,
    } = call;
    let watching = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    let whole = target.subresource.is_none();
    match (method, &target.name) {
        (&Method::GET, None) if watching => watch(shared, &target, query),
        (&Method::GET, None) => list(shared, &target, query),
        (&Method::GET, Some(name)) => {
            let store = shared.store();
            match store.get(&target.key(name)) {
                Some(object) => json_response(StatusCode::OK, object),
                None => target.not_found(name),
            }
        }
        (&Method::POST, None) => create(shared, user, &target, &body),
        (&Method::PUT, Some(name)) => replace(shared, user, &target, name, &body),
        (&Method::PATCH, Some(name)) => patch(shared, user, &target, name, content_type, &body),
        (&Method::DELETE, Some(name)) if whole => delete(shared, user, &target, name, &body),
        _ => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("the server does not allow {method} here"),
            json!({}),
        ),
    }
}

/// A 400 Bad Request, built into a response where it is answered.
struct BadRequest(String);

impl BadRequest {
    fn response(self) -> Response<Body> {
        status(StatusCode::BAD_REQUEST, "BadRequest", self.0, json!({}))
    }
}

fn parse_object(body: &Bytes) -> Result<Value, BadRequest> {
    match serde_json::from_slice::<Value>(body) {
        Ok(value) if value.is_object() => Ok(value),
        _ => Err(BadRequest("the body is not a JSON object".into())),
    }
}

fn metadata_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object.get("metadata")?.get(field)?.as_str()
}

fn invalid(target: &Target, name: &str, field: &str, message: &str) -> Response<Body> {
    status(
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid",
        format!(
            "{} {name:?} is invalid: {field}: {message}",
            target.qualified()
        ),
        target.details(name),
    )
}

/// 422 Invalid with the policy's message when an installed policy denies the write.
fn admit(
    shared: &Shared,
    user: &UserInfo,
    target: &Target,
    operation: &str,
    name: &str,
    object: Option<&Value>,
    old_object: Option<&Value>,
) -> Option<Response<Body>> {
    let admission = shared.admission();
    let request = super::admission::Request {
        operation,
        group: &target.resource.group,
        version: &target.resource.version,
        resource: &target.resource.plural,
        subresource: target.subresource.as_deref().unwrap_or(""),
        name,
        namespace: &target.namespace,
        user,
        object,
        old_object,
    };
    let message = admission
        .policies
        .iter()
        .find_map(|policy| policy.admit(&request).err())?;
    Some(status(
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid",
        message,
        target.details(name),
    ))
}

/// Prunes a custom resource's write by its CRD's schema, as the API server does when
/// it decodes the body; notes what went.
fn prune(shared: &Shared, target: &Target, name: &str, object: &mut Value) -> Vec<String> {
    let Some(schema) = &target.resource.schema else {
        return Vec::new();
    };
    let dropped = super::pruning::prune(object, schema);
    let plural = &target.resource.plural;
    shared
        .pruned
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .extend(
            dropped
                .iter()
                .map(|field| format!("{plural}/{name}: {field}")),
        );
    dropped
}

/// `response` with the API server's warning for each field `dropped`.
fn warn(mut response: Response<Body>, dropped: &[String]) -> Response<Body> {
    for field in dropped {
        let warning = format!("299 - \"unknown field \\\"{field}\\\"\"");
        if let Ok(value) = http::HeaderValue::from_str(&warning) {
            response.headers_mut().append(http::header::WARNING, value);
        }
    }
    response
}

fn create(shared: &Shared, user: &UserInfo, target: &Target, body: &Bytes) -> Response<Body> {
    let mut object = match parse_object(body) {
        Ok(object) => object,
        Err(bad) => return bad.response(),
    };
    let Some(name) = metadata_str(&object, "name").map(str::to_owned) else {
        return invalid(
            target,
            "",
            "metadata.name",
            "Required value: name is required",
        );
    };
    let dropped = prune(shared, target, &name, &mut object);
    if metadata_str(&object, "resourceVersion").is_some_and(|rv| !rv.is_empty()) {
        return status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "resourceVersion should not be set on objects to be created".into(),
            json!({}),
        );
    }
    if let Some(denied) = admit(shared, user, target, "CREATE", &name, Some(&object), None) {
        return denied;
    }
    let mut store = shared.store();
    let key = target.key(&name);
    if store.get(&key).is_some() {
        return status(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("{} {name:?} already exists", target.qualified()),
            target.details(&name),
        );
    }
    let metadata = object["metadata"].as_object_mut().expect("checked above");
    metadata.insert("uid".into(), shared.next_uid().into());
    metadata.insert("creationTimestamp".into(), "2026-01-01T00:00:00Z".into());
    metadata.insert("generation".into(), 1.into());
    if target.resource.namespaced {
        metadata.insert("namespace".into(), target.namespace.clone().into());
    }
    warn(
        json_response(StatusCode::CREATED, &store.put(key, object)),
        &dropped,
    )
}

fn replace(
    shared: &Shared,
    user: &UserInfo,
    target: &Target,
    name: &str,
    body: &Bytes,
) -> Response<Body> {
    let mut object = match parse_object(body) {
        Ok(object) => object,
        Err(bad) => return bad.response(),
    };
    if metadata_str(&object, "name") != Some(name) {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "the name of the object does not match the name on the URL".into(),
            target.details(name),
        );
    }
    let dropped = prune(shared, target, name, &mut object);
    let mut store = shared.store();
    let Some(stored) = store.get(&target.key(name)).cloned() else {
        return target.not_found(name);
    };
    update(
        shared, &mut store, user, target, name, object, &stored, &dropped,
    )
}

/// Applies a patch to the stored object and writes the result as an update, under
/// one hold of the store, so no other write comes between (the API server retries
/// a patch that meets a concurrent write instead; the outcome is the same).
fn patch(
    shared: &Shared,
    user: &UserInfo,
    target: &Target,
    name: &str,
    content_type: &str,
    body: &Bytes,
) -> Response<Body> {
    let custom = target.resource.is_custom();
    let Some(patch_type) =
        PatchType::of(content_type).filter(|t| !(custom && *t == PatchType::Strategic))
    else {
        return status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types \
                 include: {}",
                PatchType::accepted(custom)
            ),
            json!({}),
        );
    };
    let Ok(patch) = serde_json::from_slice::<Value>(body) else {
        return BadRequest("the patch is not JSON".into()).response();
    };
    let mut store = shared.store();
    let Some(stored) = store.get(&target.key(name)).cloned() else {
        return target.not_found(name);
    };
    let mut object = match super::patch::apply(patch_type, &target.resource.kind, &stored, &patch) {
        Ok(object) => object,
        Err(PatchError::Bad(message)) => return BadRequest(message).response(),
        Err(PatchError::TestFailed(message)) => return invalid(target, name, "patch", &message),
    };
    if metadata_str(&object, "name") != Some(name) {
        return invalid(target, name, "metadata.name", "field is immutable");
    }
    // A patch without a resourceVersion applies to whatever is stored.
    if metadata_str(&object, "resourceVersion").is_none() {
        object["metadata"]["resourceVersion"] = stored["metadata"]["resourceVersion"].clone();
    }
    let dropped = prune(shared, target, name, &mut object);
    update(
        shared, &mut store, user, target, name, object, &stored, &dropped,
    )
}

/// Writes `object` over `stored`: the resourceVersion precondition, admission, and
/// the status subresource's split — a write to the object keeps the stored
/// `status`, a write to `status` keeps everything else — as the real API has it
/// for kinds with the subresource.
#[allow(clippy::too_many_arguments)] // One write's parts, each used once.
fn update(
    shared: &Shared,
    store: &mut Store,
    user: &UserInfo,
    target: &Target,
    name: &str,
    mut object: Value,
    stored: &Value,
    dropped: &[String],
) -> Response<Body> {
    match metadata_str(&object, "resourceVersion") {
        // Custom resources allow no unconditional update; Kubernetes' own kinds do.
        None if target.resource.is_custom() => {
            return invalid(
                target,
                name,
                "metadata.resourceVersion",
                "Invalid value: 0x0: must be specified for an update",
            );
        }
        Some(rv) if Some(rv) != metadata_str(stored, "resourceVersion") => {
            return target.conflict(
                name,
                "the object has been modified; please apply your changes to the latest version \
                 and try again"
                    .into(),
            );
        }
        _ => {}
    }
    if target.resource.status_subresource {
        let (mut kept, from) = match target.subresource {
            Some(_) => (stored.clone(), &object),
            None => (object.clone(), stored),
        };
        match from.get("status") {
            Some(status) => kept["status"] = status.clone(),
            None => {
                if let Some(fields) = kept.as_object_mut() {
                    fields.remove("status");
                }
            }
        }
        object = kept;
    }
    if let Some(denied) = admit(
        shared,
        user,
        target,
        "UPDATE",
        name,
        Some(&object),
        Some(stored),
    ) {
        return denied;
    }
    let generation = stored["metadata"]["generation"].as_u64().unwrap_or(1);
    let spec_changed = object.get("spec") != stored.get("spec");
    let metadata = object["metadata"].as_object_mut().expect("has a name");
    for kept in ["uid", "creationTimestamp", "namespace"] {
        match stored["metadata"].get(kept) {
            Some(value) => metadata.insert(kept.into(), value.clone()),
            None => metadata.remove(kept),
        };
    }
    metadata.insert(
        "generation".into(),
        (generation + u64::from(spec_changed)).into(),
    );
    warn(
        json_response(StatusCode::OK, &store.put(target.key(name), object)),
        dropped,
    )
}

fn delete(
    shared: &Shared,
    user: &UserInfo,
    target: &Target,
    name: &str,
    body: &Bytes,
) -> Response<Body> {
    let precondition = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|options| {
            options
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
    let mut store = shared.store();
    let key = target.key(name);
    let Some(stored) = store.get(&key) else {
        return target.not_found(name);
    };
    let actual = metadata_str(stored, "resourceVersion").unwrap_or_default();
    if let Some(expected) = precondition.filter(|expected| expected != actual) {
        return target.conflict(
            name,
            format!(
                "Precondition failed: ResourceVersion in precondition: {expected}, \
                 ResourceVersion in object meta: {actual}"
            ),
        );
    }
    if let Some(denied) = admit(shared, user, target, "DELETE", name, None, Some(stored)) {
        return denied;
    }
    let last = store.remove(&key).expect("present under the lock");
    json_response(StatusCode::OK, &last)
}

fn selector_of(query: &BTreeMap<String, String>) -> Result<LabelSelector, BadRequest> {
    LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str)).map_err(BadRequest)
}

/// A continue token as the API server writes them: base64 of
/// `{"v":"meta.k8s.io/v1","rv":<revision>,"start":"<position>\u0000"}`.
fn continue_token(revision: u64, after: &str) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": revision, "start": format!("{after}\u{0}")});
    BASE64.encode(token.to_string())
}

fn decode_continue(token: &str) -> Option<(u64, String)> {
    let token: Value = serde_json::from_slice(&BASE64.decode(token).ok()?).ok()?;
    if token.get("v")?.as_str()? != "meta.k8s.io/v1" {
        return None;
    }
    let start = token.get("start")?.as_str()?.to_owned();
    Some((token.get("rv")?.as_u64()?, start))
}

fn list(shared: &Shared, target: &Target, query: &BTreeMap<String, String>) -> Response<Body> {
    let selector = match selector_of(query) {
        Ok(selector) => selector,
        Err(bad) => return bad.response(),
    };
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let store = shared.store();
    let (revision, start) = match query.get("continue").filter(|c| !c.is_empty()) {
        None => (store.revision(), String::new()),
        Some(token) => match decode_continue(token) {
            Some(pinned) => pinned,
            None => {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "continue key is not valid".into(),
                    json!({}),
                );
            }
        },
    };
    let mut objects = match store.list_at(&target.resource.id(), &target.namespace, revision) {
        Ok(objects) => objects,
        Err(TooOld { .. }) => {
            return status(
                StatusCode::GONE,
                "Expired",
                "The provided continue parameter is too old to display a consistent list \
                 result. You can start a new list without the continue parameter."
                    .into(),
                json!({}),
            );
        }
    };
    // Keys order by namespace, then name: the order continue tokens count in.
    objects.sort_by_key(|(key, _)| key.position());
    let mut remaining = objects
        .into_iter()
        .filter(|(key, _)| key.position() >= start)
        .peekable();
    let mut items = Vec::new();
    let mut last = None;
    while items.len() < limit {
        let Some((key, object)) = remaining.next() else {
            break;
        };
        if selector.matches(&labels(&object)) {
            last = Some(key.position());
            items.push(object);
        }
    }
    let more = remaining.peek().is_some();
    let mut metadata = json!({"resourceVersion": revision.to_string()});
    if let (true, Some(last)) = (more, last) {
        metadata["continue"] = continue_token(revision, &last).into();
    }
    json_response(
        StatusCode::OK,
        &json!({
            "kind": format!("{}List", target.resource.kind),
            "apiVersion": target.resource.api_version(),
            "metadata": metadata,
            "items": items,
        }),
    )
}

fn watch(shared: &Shared, target: &Target, query: &BTreeMap<String, String>) -> Response<Body> {
    let selector = match selector_of(query) {
        Ok(selector) => selector,
        Err(bad) => return bad.response(),
    };
    let revision = match query.get("resourceVersion").map(String::as_str) {
        None | Some("") => 0,
        Some(text) => match text.parse() {
            Ok(revision) => revision,
            Err(_) => {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    format!("invalid resource version: {text:?}"),
                    json!({}),
                );
            }
        },
    };
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(shared.max_watch)
        .min(shared.max_watch);
    let bookmarks = query.get("allowWatchBookmarks").map(String::as_str) == Some("true");
    let (tx, rx) = mpsc::unbounded_channel();
    let filter = WatchFilter {
        resource: target.resource.id(),
        namespace: target.namespace.clone(),
        selector,
    };
    if let Err(TooOld { oldest }) = shared.store().watch(filter, revision, tx.clone()) {
        // The API server reports this inside a successful watch response.
        let gone = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("too old resource version: {revision} ({oldest})"),
            "reason": "Expired", "code": 410,
        });
        let _ = tx.send(event_line("ERROR", &gone));
        drop(tx);
        return stream_response(rx, timeout);
    }
    if bookmarks {
        spawn_bookmarks(shared, target, tx.downgrade());
    }
    drop(tx);
    stream_response(rx, timeout)
}

/// Sends a bookmark every interval while the watch is open.
fn spawn_bookmarks(shared: &Shared, target: &Target, lines: mpsc::WeakUnboundedSender<Bytes>) {
    let (state, interval) = (shared.clone_handle(), shared.bookmark_interval);
    let (api_version, kind) = (target.resource.api_version(), target.resource.kind.clone());
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            let Some(lines) = lines.upgrade() else { return };
            if lines.is_closed() {
                return;
            }
            state.store().bookmark(&lines, &api_version, &kind);
        }
    });
}

/// A chunked response of the watch's lines, ended after `timeout`.
fn stream_response(rx: mpsc::UnboundedReceiver<Bytes>, timeout: Duration) -> Response<Body> {
    let mut rx = rx;
    let lines = futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
        .take_until(tokio::time::sleep(timeout))
        .map(|line| Ok::<_, Infallible>(Frame::data(line)));
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(BodyExt::boxed(StreamBody::new(lines)))
        .expect("a valid response")
}
