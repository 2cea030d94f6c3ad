//! The Kubernetes API calls tabby-cni makes of its own (see `api::rbac` for how
//! datastore operations become calls); its addresses are tabby-ipam's, whose calls
//! are the allocator's (`ipam::rbac::PLUGIN`). `manifests/rbac/agent.yaml` grants
//! both lists to the agent's role (the CNI plugins run with the agent's
//! credentials); the `manifests_*` tests hold the role to the lists and the lists to
//! what the code sends to the API double.

use api::rbac::{ApiCall, Verb};
use api::resources::WorkloadEndpoint;

/// `tabby-cni`: [`crate::interface::workload`] records the pod's `WorkloadEndpoint`
/// on ADD (read, then create or replace) and removes it on DEL (read, then delete).
pub const CNI: &[ApiCall] = &[
    ApiCall::tabby::<WorkloadEndpoint>(Verb::Get),
    ApiCall::tabby::<WorkloadEndpoint>(Verb::Create),
    ApiCall::tabby::<WorkloadEndpoint>(Verb::Update),
    ApiCall::tabby::<WorkloadEndpoint>(Verb::Delete),
];
