//! The Kubernetes API calls IPAM's binaries make (see [`api::rbac`] for how
//! datastore operations become calls). `manifests/rbac/` grants [`PLUGIN`] to
//! tabby-agent's role (the CNI plugins run with the agent's credentials) and
//! [`CONTROLLER`] to tabby-ipam-controller's, and nothing else; the `manifests_*`
//! tests hold the roles to these lists and the lists to what the code sends to the
//! API double.

use api::rbac::{ApiCall, Verb};
use api::resources::{
    BlockAffinity, IPAMBlock, IPAMConfig, IPAMHandle, IPPool, IPReservation, Node, WorkloadEndpoint,
};

/// `tabby-ipam`: [`crate::state::Settings`] (pools, reservations, the IPAMConfig,
/// the node's labels), [`crate::claim`] (affinities pending, then confirmed; a lost
/// claim withdrawn), [`crate::assign`] and [`crate::release`] (blocks, handles;
/// borrowing lists every block; an emptied block of no node is deleted).
pub const PLUGIN: &[ApiCall] = &[
    ApiCall::tabby::<IPPool>(Verb::List),
    ApiCall::tabby::<IPReservation>(Verb::List),
    ApiCall::tabby::<IPAMConfig>(Verb::Get),
    ApiCall::tabby::<Node>(Verb::Get),
    ApiCall::tabby::<BlockAffinity>(Verb::Get),
    ApiCall::tabby::<BlockAffinity>(Verb::List),
    ApiCall::tabby::<BlockAffinity>(Verb::Create),
    ApiCall::tabby::<BlockAffinity>(Verb::Update),
    ApiCall::tabby::<BlockAffinity>(Verb::Delete),
    ApiCall::tabby::<IPAMBlock>(Verb::Get),
    ApiCall::tabby::<IPAMBlock>(Verb::List),
    ApiCall::tabby::<IPAMBlock>(Verb::Create),
    ApiCall::tabby::<IPAMBlock>(Verb::Update),
    ApiCall::tabby::<IPAMBlock>(Verb::Delete),
    ApiCall::tabby::<IPAMHandle>(Verb::Get),
    ApiCall::tabby::<IPAMHandle>(Verb::Create),
    ApiCall::tabby::<IPAMHandle>(Verb::Update),
    ApiCall::tabby::<IPAMHandle>(Verb::Delete),
];

/// `tabby-ipam-controller`: [`crate::gc`] reads everything ([`crate::check::Snapshot`]),
/// asks the cluster which pods and nodes exist and which sandbox and interface each
/// address was recorded for ([`crate::inventory`]; a tunnel
/// address's `Node`), and reclaims: addresses ([`crate::release::release_ip`]),
/// deleted nodes' and empty blocks, pending affinities, handles, and (on
/// Kubernetes) the tabby `Node`s of deleted Kubernetes Nodes; it repairs an
/// affinity a cut-short claim left unconfirmed (creating it when missing).
pub const CONTROLLER: &[ApiCall] = &[
    ApiCall::tabby::<IPPool>(Verb::List),
    ApiCall::tabby::<Node>(Verb::Get),
    ApiCall::tabby::<Node>(Verb::List),
    ApiCall::tabby::<Node>(Verb::Delete),
    ApiCall::tabby::<BlockAffinity>(Verb::Get),
    ApiCall::tabby::<BlockAffinity>(Verb::List),
    ApiCall::tabby::<BlockAffinity>(Verb::Create),
    ApiCall::tabby::<BlockAffinity>(Verb::Update),
    ApiCall::tabby::<BlockAffinity>(Verb::Delete),
    ApiCall::tabby::<IPAMBlock>(Verb::Get),
    ApiCall::tabby::<IPAMBlock>(Verb::List),
    ApiCall::tabby::<IPAMBlock>(Verb::Update),
    ApiCall::tabby::<IPAMBlock>(Verb::Delete),
    ApiCall::tabby::<IPAMHandle>(Verb::Get),
    ApiCall::tabby::<IPAMHandle>(Verb::List),
    ApiCall::tabby::<IPAMHandle>(Verb::Update),
    ApiCall::tabby::<IPAMHandle>(Verb::Delete),
    ApiCall::tabby::<WorkloadEndpoint>(Verb::Get),
    ApiCall::tabby::<WorkloadEndpoint>(Verb::List),
    ApiCall::core("pods", Verb::Get),
    ApiCall::core("pods", Verb::List),
    ApiCall::core("nodes", Verb::Get),
    ApiCall::core("nodes", Verb::List),
];
