//! The double's requests as RBAC authorizes them: API group, resource and verb,
//! resolved from method, path and query the way the API server's request info
//! does (`GET` of a collection is `list`, or `watch` with `watch=true`; `PUT` is
//! `update`; `DELETE` of a collection is `deletecollection`; a request to an
//! object's `status` is one on the resource `<plural>/status`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use api::rbac::{ApiCall, Verb};

use super::{KubeApi, parse_query};

/// One kind of request, with owned names (from a request line or a Role's rule).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Call {
    pub group: String,
    pub resource: String,
    pub verb: Verb,
}

impl Call {
    pub fn new(group: &str, resource: &str, verb: Verb) -> Self {
        Self {
            group: group.to_owned(),
            resource: resource.to_owned(),
            verb,
        }
    }
}

impl From<&ApiCall> for Call {
    fn from(call: &ApiCall) -> Self {
        Self::new(call.group, call.resource, call.verb)
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.group.as_str() {
            "" => write!(f, "{} {}", self.verb, self.resource),
            group => write!(f, "{} {}.{group}", self.verb, self.resource),
        }
    }
}

/// A call a Role's rule grants; `names` empty for every object of the resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    pub call: Call,
    pub names: BTreeSet<String>,
}

/// What a subject is granted: cluster-wide under `""` (a ClusterRoleBinding), and
/// per namespace (RoleBindings).
pub type Granted = BTreeMap<String, BTreeSet<Grant>>;

/// The calls of a list kept next to the code.
pub fn calls_of(lists: &[&[ApiCall]]) -> BTreeSet<Call> {
    lists
        .iter()
        .flat_map(|list| list.iter().map(Call::from))
        .collect()
}

/// The call a request line (`METHOD /path?query`, as [`KubeApi::requests`] records
/// it) makes, or why it is none the API server would authorize as a resource call.
pub fn call_of(request: &str) -> Result<Call, String> {
    let unknown = |why: &str| format!("{request:?}: {why}");
    let (method, uri) = request
        .split_once(' ')
        .ok_or_else(|| unknown("no method"))?;
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match segments.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return Err(unknown("not an API path")),
    };
    let (resource, tail) = match rest {
        ["namespaces", _namespace, resource, tail @ ..] => (*resource, tail),
        [resource, tail @ ..] => (*resource, tail),
        [] => return Err(unknown("no resource")),
    };
    let (resource, named) = match tail {
        [] => (resource.to_owned(), false),
        [_name] => (resource.to_owned(), true),
        [_name, "status"] => (format!("{resource}/status"), true),
        _ => return Err(unknown("a subresource tabby never asks for")),
    };
    let watching = matches!(
        parse_query(query).get("watch").map(String::as_str),
        Some("true" | "1")
    );
    let verb = match (method, named) {
        ("GET", true) => Verb::Get,
        ("GET", false) if watching => Verb::Watch,
        ("GET", false) => Verb::List,
        ("POST", false) => Verb::Create,
        ("PUT", true) => Verb::Update,
        ("PATCH", true) => Verb::Patch,
        ("DELETE", true) => Verb::Delete,
        ("DELETE", false) => Verb::DeleteCollection,
        _ => return Err(unknown("a method and path no resource verb has")),
    };
    Ok(Call::new(group, &resource, verb))
}

impl KubeApi {
    /// The calls made by the requests after the first `from`.
    pub fn calls_since(&self, from: usize) -> Result<BTreeSet<Call>, String> {
        self.requests()
            .get(from..)
            .unwrap_or_default()
            .iter()
            .map(|request| call_of(request))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(request: &str) -> String {
        call_of(request).unwrap().to_string()
    }

    #[test]
    fn requests_resolve_to_the_verbs_rbac_checks() {
        assert_eq!(
            call("GET /apis/tabby.dev/v1/ippools?limit=500"),
            "list ippools.tabby.dev"
        );
        assert_eq!(
            call(
                "GET /apis/tabby.dev/v1/ippools?allowWatchBookmarks=true&resourceVersion=7&watch=true"
            ),
            "watch ippools.tabby.dev"
        );
        assert_eq!(
            call("PUT /apis/tabby.dev/v1/ipamblocks/10-0-0-0-26"),
            "update ipamblocks.tabby.dev"
        );
        assert_eq!(
            call("POST /apis/tabby.dev/v1/nodes"),
            "create nodes.tabby.dev"
        );
        assert_eq!(
            call("DELETE /apis/tabby.dev/v1/ipamhandles/h"),
            "delete ipamhandles.tabby.dev"
        );
        assert_eq!(
            call("GET /api/v1/namespaces/default/pods/web-0"),
            "get pods"
        );
        assert_eq!(call("GET /api/v1/pods?limit=500"), "list pods");
        assert_eq!(call("GET /api/v1/nodes/worker-1"), "get nodes");
        assert_eq!(
            call("PATCH /api/v1/nodes/worker-1/status?"),
            "patch nodes/status"
        );
    }

    #[test]
    fn paths_no_resource_verb_covers_are_refused() {
        assert!(call_of("GET /version").is_err());
        assert!(call_of("GET /api/v1/namespaces/default/pods/web-0/log").is_err());
        assert!(call_of("PUT /apis/tabby.dev/v1/ippools").is_err());
    }
}
