//! RBAC authorization, once grants are installed ([`super::KubeApi::authorize`]):
//! a request of a user outside `system:masters` goes through only when one of the
//! user's grants covers its call — a cluster-wide grant anywhere, a namespace's in
//! that namespace, a grant limited to names only for a request naming one of them
//! (so never a list, watch or create) — else it is 403 Forbidden with the API
//! server's message. Requests that are no resource's (discovery, `/version`, the
//! health endpoints) are every authenticated user's, as the default
//! `system:discovery` binding allows.

use std::collections::BTreeMap;

use super::admission::UserInfo;
use super::calls::{Call, Granted};

/// Why `user` may not make `call` on `name` in `namespace` (empty: cluster
/// scope), in the API server's words; `None` when a grant allows it.
pub fn forbidden(
    rbac: &BTreeMap<String, Granted>,
    user: &UserInfo,
    call: &Call,
    namespace: &str,
    name: Option<&str>,
) -> Option<String> {
    if user.groups.iter().any(|g| g == "system:masters") {
        return None;
    }
    let granted = rbac.get(&user.username);
    let scopes = [String::new(), namespace.to_owned()];
    let allowed = granted.is_some_and(|granted| {
        scopes
            .iter()
            .filter_map(|scope| granted.get(scope))
            .flatten()
            .any(|grant| {
                grant.call == *call
                    && (grant.names.is_empty() || name.is_some_and(|n| grant.names.contains(n)))
            })
    });
    if allowed {
        return None;
    }
    let resource = match call.group.as_str() {
        "" => call.resource.clone(),
        group => format!("{}.{group}", call.resource),
    };
    let subject = match name {
        Some(name) => format!("{resource} {name:?}"),
        None => resource,
    };
    let scope = match namespace {
        "" => "at the cluster scope".to_owned(),
        namespace => format!("in the namespace {namespace:?}"),
    };
    Some(format!(
        "{subject} is forbidden: User {:?} cannot {} resource {:?} in API group {:?} {scope}",
        user.username, call.verb, call.resource, call.group
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use api::rbac::Verb;

    use super::*;
    use crate::kube_api::calls::Grant;

    fn rbac() -> BTreeMap<String, Granted> {
        let grant = |group: &str, resource: &str, verb, names: &[&str]| Grant {
            call: Call::new(group, resource, verb),
            names: names.iter().map(|n| (*n).to_owned()).collect(),
        };
        let granted = Granted::from([
            (
                String::new(),
                BTreeSet::from([grant("", "nodes/status", Verb::Patch, &[])]),
            ),
            (
                "tabby-system".to_owned(),
                BTreeSet::from([grant("", "secrets", Verb::Get, &["tabby-bgp-passwords"])]),
            ),
        ]);
        BTreeMap::from([(
            "system:serviceaccount:tabby-system:tabby-agent".to_owned(),
            granted,
        )])
    }

    #[test]
    fn grants_allow_their_calls_in_their_scope_and_by_name_and_nothing_else() {
        let agent = UserInfo::service_account("tabby-system", "tabby-agent");
        let patch_status = Call::new("", "nodes/status", Verb::Patch);
        let get_secret = Call::new("", "secrets", Verb::Get);
        let rbac = rbac();
        assert_eq!(
            forbidden(&rbac, &agent, &patch_status, "", Some("n1")),
            None
        );
        let named = Some("tabby-bgp-passwords");
        assert_eq!(
            forbidden(&rbac, &agent, &get_secret, "tabby-system", named),
            None
        );
        // Another Secret, the same one in another namespace, a list: forbidden.
        let other = forbidden(&rbac, &agent, &get_secret, "tabby-system", Some("x")).unwrap();
        assert_eq!(
            other,
            "secrets \"x\" is forbidden: User \"system:serviceaccount:tabby-system:tabby-agent\" \
             cannot get resource \"secrets\" in API group \"\" in the namespace \"tabby-system\""
        );
        assert!(forbidden(&rbac, &agent, &get_secret, "default", named).is_some());
        let list = Call::new("", "secrets", Verb::List);
        assert!(forbidden(&rbac, &agent, &list, "tabby-system", None).is_some());
        // Patching the Node itself is not patching its status.
        let patch_node = Call::new("", "nodes", Verb::Patch);
        assert!(forbidden(&rbac, &agent, &patch_node, "", Some("n1")).is_some());
        // An unbound account has nothing; an admin everything.
        let other_account = UserInfo::service_account("tabby-system", "other");
        assert!(forbidden(&rbac, &other_account, &patch_status, "", Some("n1")).is_some());
        assert_eq!(
            forbidden(
                &rbac,
                &UserInfo::cluster_admin(),
                &patch_node,
                "",
                Some("n1")
            ),
            None
        );
    }
}
