//! The Kubernetes API calls `tabby-reflector` makes (see [`api::rbac`] for how
//! datastore operations become calls); `manifests/rbac/reflector.yaml` grants
//! exactly these.
//!
//! Datastore discovery (`--datastore-type`) reads the cluster's `BGPConfiguration` for
//! the AS, lists every `Node` for its BGP addresses, and every `IPPool`,
//! `IPAMBlock` and `BlockAffinity` for the ownership rule, and follows them with
//! watches ([`crate::discovery::follow`]).

use api::rbac::{ApiCall, Verb};
use api::resources::{BGPConfiguration, BlockAffinity, IPAMBlock, IPPool, Node};

pub const REFLECTOR: &[ApiCall] = &[
    ApiCall::tabby::<BGPConfiguration>(Verb::Get),
    ApiCall::tabby::<Node>(Verb::List),
    ApiCall::tabby::<Node>(Verb::Watch),
    ApiCall::tabby::<IPPool>(Verb::List),
    ApiCall::tabby::<IPPool>(Verb::Watch),
    ApiCall::tabby::<IPAMBlock>(Verb::List),
    ApiCall::tabby::<IPAMBlock>(Verb::Watch),
    ApiCall::tabby::<BlockAffinity>(Verb::List),
    ApiCall::tabby::<BlockAffinity>(Verb::Watch),
];
