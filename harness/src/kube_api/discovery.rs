//! What a client asks before it names a resource, as the API server answers it: the
//! health endpoints (`/healthz`, `/livez`, `/readyz`), `/version`, and the legacy
//! discovery documents kubectl and client-go resolve names with (`/api`,
//! `/api/v1`, `/apis`, `/apis/<group>/<version>`). Aggregated discovery (the
//! `apidiscovery.k8s.io/v2` form a client may ask for in `Accept`) is not served:
//! the documents come back as plain `application/json`, which clients take as the
//! legacy form, as they do from servers before Kubernetes 1.26.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

use super::handlers::{Body, json_response};
use super::{Resource, Shared};

/// The verbs every served kind takes.
const VERBS: [&str; 6] = ["create", "delete", "get", "list", "update", "watch"];

/// The answer to a `GET` of `segments` when it is a discovery or health path.
pub fn answer(shared: &Shared, segments: &[&str]) -> Option<Response<Body>> {
    let resources: Vec<Resource> = shared
        .resources
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .cloned()
        .collect();
    let document = match segments {
        ["healthz" | "livez" | "readyz"] => return Some(ok()),
        ["version"] => json!({
            "major": "1", "minor": "32", "gitVersion": "v1.32.0-tabby-api-double",
            "platform": "linux/amd64",
        }),
        ["api"] => json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [],
        }),
        ["apis"] => groups(&resources),
        ["api", version] => resource_list("", version, &resources)?,
        ["apis", group, version] => resource_list(group, version, &resources)?,
        _ => return None,
    };
    Some(json_response(StatusCode::OK, &document))
}

fn ok() -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from_static(b"ok")).boxed())
        .expect("a valid response")
}

/// `APIGroupList`: every named group with the version it serves.
fn groups(resources: &[Resource]) -> Value {
    let versions: BTreeMap<&str, &str> = resources
        .iter()
        .filter(|r| !r.group.is_empty())
        .map(|r| (r.group.as_str(), r.version.as_str()))
        .collect();
    let groups: Vec<Value> = versions
        .into_iter()
        .map(|(group, version)| {
            let version = json!({"groupVersion": format!("{group}/{version}"), "version": version});
            json!({"name": group, "versions": [version], "preferredVersion": version})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `APIResourceList` of `group/version`; `None` when nothing is served there.
fn resource_list(group: &str, version: &str, resources: &[Resource]) -> Option<Value> {
    let served: Vec<Value> = resources
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .map(|r| {
            json!({
                "name": r.plural,
                "singularName": r.singular,
                "shortNames": r.short_names,
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": VERBS,
            })
        })
        .collect();
    let group_version = match group {
        "" => version.to_owned(),
        group => format!("{group}/{version}"),
    };
    (!served.is_empty()).then(|| {
        json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": served,
        })
    })
}
