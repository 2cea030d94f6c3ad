//! The Kubernetes API calls `tabby-reflector` makes (see [`api::rbac`] for how
//! datastore operations become calls); `manifests/rbac/reflector.yaml` grants
//! exactly these.
//!
//! Datastore discovery (`--datastore-type`) reads the cluster's `BGPConfiguration` for
//! the AS, lists every `Node` for its BGP addresses and follows them with a watch
//! ([`crate::discovery::follow`]).

use api::rbac::{ApiCall, Verb};
use api::resources::{BGPConfiguration, Node};

pub const REFLECTOR: &[ApiCall] = &[
    ApiCall::tabby::<BGPConfiguration>(Verb::Get),
    ApiCall::tabby::<Node>(Verb::List),
    ApiCall::tabby::<Node>(Verb::Watch),
];
