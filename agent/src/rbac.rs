//! The Kubernetes API calls `tabby-agent` makes (see [`api::rbac`] for how datastore
//! operations become calls). `manifests/rbac/agent.yaml` grants these and the CNI
//! plugins' (`cni::rbac::CNI`, `ipam::rbac::PLUGIN`: the plugins run with the
//! agent's credentials), and nothing else; the `manifests_*` tests hold both to
//! this list and the list to what the daemon sends to the API double.

use api::rbac::{ApiCall, Verb};
use api::resources::{
    BGPConfiguration, BGPFilter, BGPPeer, BlockAffinity, IPAMBlock, IPPool, Node,
};

/// `tabby-agent`: [`crate::daemon::watch`] lists and watches every kind the desired
/// state reads (Kubernetes Services and EndpointSlices among them);
/// [`crate::node::register`] reads, creates and updates this node's `Node`;
/// [`crate::daemon::network`] patches the Kubernetes Node's status. Its tunnel addresses come from IPAM's allocator: those calls are
/// `ipam::rbac::PLUGIN`'s (and IPAM records the address on the `Node`).
pub const AGENT: &[ApiCall] = &[
    ApiCall::tabby::<IPPool>(Verb::List),
    ApiCall::tabby::<IPPool>(Verb::Watch),
    // The default pool from CALICO_IPV4POOL_* (node::default_pools).
    ApiCall::tabby::<IPPool>(Verb::Create),
    ApiCall::tabby::<IPAMBlock>(Verb::List),
    ApiCall::tabby::<IPAMBlock>(Verb::Watch),
    ApiCall::tabby::<BlockAffinity>(Verb::List),
    ApiCall::tabby::<BlockAffinity>(Verb::Watch),
    ApiCall::tabby::<BGPConfiguration>(Verb::List),
    ApiCall::tabby::<BGPConfiguration>(Verb::Watch),
    ApiCall::tabby::<BGPPeer>(Verb::List),
    ApiCall::tabby::<BGPPeer>(Verb::Watch),
    ApiCall::tabby::<BGPFilter>(Verb::List),
    ApiCall::tabby::<BGPFilter>(Verb::Watch),
    ApiCall::tabby::<Node>(Verb::Get),
    ApiCall::tabby::<Node>(Verb::List),
    ApiCall::tabby::<Node>(Verb::Watch),
    ApiCall::tabby::<Node>(Verb::Create),
    ApiCall::tabby::<Node>(Verb::Update),
    // The Kubernetes Node's InternalIP, for IP_AUTODETECTION_METHOD=kubernetes-internal-ip.
    ApiCall::core("nodes", Verb::Get),
    // Its NetworkUnavailable condition (daemon::network), by strategic merge patch.
    ApiCall::core("nodes/status", Verb::Patch),
    // Service advertisement (desired::services): Services and their endpoints,
    // followed through api::services::follow.
    ApiCall::core("services", Verb::List),
    ApiCall::core("services", Verb::Watch),
    ApiCall {
        group: "discovery.k8s.io",
        resource: "endpointslices",
        verb: Verb::List,
    },
    ApiCall {
        group: "discovery.k8s.io",
        resource: "endpointslices",
        verb: Verb::Watch,
    },
];

/// Reading the Secrets that `BGPPeer` and `BGPConfiguration` passwords name
/// (`secretKeyRef`), in tabby's own namespace and only those Secrets: a Role, not
/// the ClusterRole. `peering::passwords` reads each by name, again at every resync.
pub const BGP_PASSWORD_SECRETS: &[ApiCall] = &[ApiCall::core("secrets", Verb::Get)];
