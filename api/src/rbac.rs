//! What a component asks of the Kubernetes API, in RBAC's terms: an API group, a
//! resource and a verb. Each component keeps the list of the calls its code makes
//! next to that code (`agent::rbac`, `cni::rbac`, `ipam::rbac`, `reflector::rbac`);
//! `manifests/` grants exactly those, and the `manifests_*` tests compare the two,
//! and what the code sends to the API double with the lists.
//!
//! The kubernetes backend turns datastore operations into these calls:
//!
//! | datastore operation | calls |
//! | --- | --- |
//! | `get`, `list`, `create`, `delete` | the verb of the same name on the kind |
//! | `update` | `update`; kinds with immutable fields (`IPPool`) also `get` |
//! | `watch` | `watch`, and `list`: a watch from revision 0, or one the server answers 410 Gone, lists |
//! | `workload`, `workloads` | `workloadendpoints` (the attachment the CNI plugin recorded): `get`, `list`; core `pods`: `get`, `list` |
//! | `node_exists`, `nodes` | core `nodes`: `get`, `list` |
//! | `set_network` | core `nodes/status`: `patch` |
//! | `register_workload` | `workloadendpoints`: `get`, `create`, `update` |
//! | `unregister_workload` | `workloadendpoints`: `get`, `delete` |

use std::fmt;

use crate::resources::{GROUP, Resource};

/// The core API group (`/api/v1`), as RBAC spells it.
pub const CORE: &str = "";

/// The verbs the API server authorizes resource requests with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
}

impl Verb {
    pub const ALL: [Verb; 8] = [
        Verb::Get,
        Verb::List,
        Verb::Watch,
        Verb::Create,
        Verb::Update,
        Verb::Patch,
        Verb::Delete,
        Verb::DeleteCollection,
    ];

    /// As written in a Role's `verbs`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Verb {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Verb::ALL
            .into_iter()
            .find(|verb| verb.as_str() == text)
            .ok_or_else(|| format!("{text:?} is not a resource verb tabby knows"))
    }
}

/// One kind of request: `verb` on `resource` in API group `group`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiCall {
    pub group: &'static str,
    pub resource: &'static str,
    pub verb: Verb,
}

impl ApiCall {
    /// `verb` on tabby's kind `R` (group `tabby.dev`).
    pub const fn tabby<R: Resource>(verb: Verb) -> Self {
        Self {
            group: GROUP,
            resource: R::PLURAL,
            verb,
        }
    }

    /// `verb` on a core resource (`pods`, `nodes`, `secrets`).
    pub const fn core(resource: &'static str, verb: Verb) -> Self {
        Self {
            group: CORE,
            resource,
            verb,
        }
    }
}

impl fmt::Display for ApiCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.group {
            CORE => write!(f, "{} {}", self.verb, self.resource),
            group => write!(f, "{} {}.{group}", self.verb, self.resource),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::IPPool;

    #[test]
    fn calls_read_as_kubectl_auth_can_i_would_ask() {
        assert_eq!(
            ApiCall::tabby::<IPPool>(Verb::Watch).to_string(),
            "watch ippools.tabby.dev"
        );
        assert_eq!(ApiCall::core("pods", Verb::Get).to_string(), "get pods");
    }

    #[test]
    fn verbs_parse_as_roles_write_them_and_nothing_else() {
        for verb in Verb::ALL {
            assert_eq!(verb.as_str().parse::<Verb>(), Ok(verb));
        }
        assert!("*".parse::<Verb>().unwrap_err().contains("\"*\""));
    }
}
