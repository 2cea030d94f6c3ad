//! Which pods and nodes exist, asked the same way on every backend.
//!
//! The IPAM garbage collector frees addresses whose pod or node is gone, so it must
//! ask "does this pod still exist?" and "does this node still exist?". Where the
//! answer lives depends on the backend:
//!
//! | backend | pods | nodes |
//! | --- | --- | --- |
//! | kubernetes | core `Pod`s (read-only) | core `Node`s (read-only) |
//! | etcd, memory | tabby `WorkloadEndpoint`s | tabby `Node`s |
//!
//! Callers do not care: [`Datastore::workload`], [`Datastore::workloads`],
//! [`Datastore::node_exists`] and [`Datastore::nodes`] answer on any backend.
//!
//! The CNI plugin keeps the etcd answer true, as Calico's does in etcd mode: on ADD
//! it calls [`Datastore::register_workload`] (after the interface is up, so a pod is
//! never reported without its addresses), on DEL [`Datastore::unregister_workload`]
//! with the container ID of that DEL, which removes the endpoint only if the same
//! container added it: a late DEL for a pod's previous incarnation leaves the new one
//! alone. It does the same on kubernetes, where existence is read from the core Pods
//! (so a leaked endpoint never keeps an address alive) and the endpoint says which
//! sandbox is the pod's now ([`Workload::attachment`]), which the core Pod does not.
//!
//! ```no_run
//! # async fn gc(store: &api::datastore::MemoryStore) -> api::datastore::Result<()> {
//! use api::datastore::Datastore;
//! if store.workload("default", "web-0").await?.is_none() {
//!     // the pod is gone: its addresses may be released
//! }
//! # Ok(()) }
//! ```

use std::fmt::Debug;
use std::net::IpAddr;

use async_trait::async_trait;

use super::{Datastore, Error, Result, list_all};
use crate::resources::{Object, Resource, WorkloadEndpoint, WorkloadEndpointSpec};

/// A pod as the IPAM garbage collector needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub namespace: String,
    pub pod: String,
    /// The node it is scheduled on; `None` for a pod not yet scheduled.
    pub node: Option<String>,
    /// The addresses the pod holds as its record says (on Kubernetes the kubelet's
    /// `status.podIPs`, which lag behind a replaced sandbox; empty until set up).
    pub ips: Vec<IpAddr>,
    /// The network attachment the CNI plugin recorded last (its
    /// `WorkloadEndpoint`), when it did.
    pub attachment: Option<Attachment>,
}

/// One network attachment of a pod, as the CNI ADD that made it recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The pod sandbox's ID (CNI_CONTAINERID): a new one for every sandbox.
    pub container_id: String,
    /// The interface inside the pod (CNI_IFNAME).
    pub interface: String,
    pub ips: Vec<IpAddr>,
}

impl From<WorkloadEndpoint> for Workload {
    fn from(endpoint: WorkloadEndpoint) -> Self {
        let ips: Vec<IpAddr> = endpoint.spec.ips().collect();
        Self {
            attachment: Some(Attachment {
                container_id: endpoint.spec.container_id,
                interface: endpoint.spec.endpoint,
                ips: ips.clone(),
            }),
            ips,
            namespace: endpoint.spec.namespace,
            pod: endpoint.spec.pod,
            node: Some(endpoint.spec.node),
        }
    }
}

/// Adds the attachments the CNI plugin recorded to pods known from the cluster's
/// own record (which does not know sandboxes).
pub(super) fn attach(pods: &mut [Workload], endpoints: Vec<Workload>) {
    let mut recorded: std::collections::HashMap<(String, String), Attachment> = endpoints
        .into_iter()
        .filter_map(|e| Some(((e.namespace, e.pod), e.attachment?)))
        .collect();
    for pod in pods {
        let key = (pod.namespace.clone(), pod.pod.clone());
        pod.attachment = recorded.remove(&key);
    }
}

/// Pods and nodes as the cluster itself records them: what a backend with such a
/// record (Kubernetes' core API) offers through [`super::Backend::inventory`].
/// Read-only but for one condition of a node's status, which the node's network
/// plugin owns.
#[async_trait]
pub trait Inventory: Send + Sync + Debug {
    async fn pod(&self, namespace: &str, pod: &str) -> Result<Option<Workload>>;
    async fn pods(&self) -> Result<Vec<Workload>>;
    async fn node_exists(&self, node: &str) -> Result<bool>;
    async fn nodes(&self) -> Result<Vec<String>>;
    /// The `InternalIP` addresses the kubelet reports for `node` (none for a node
    /// that does not exist).
    async fn internal_ips(&self, node: &str) -> Result<Vec<IpAddr>>;
    /// Sets `node`'s `NetworkUnavailable` condition, leaving its other conditions
    /// alone (Kubernetes: a strategic merge patch of `nodes/status`, as calico-node
    /// sends it).
    async fn set_network(&self, node: &str, network: &NetworkCondition) -> Result<()>;
}

/// A node's `NetworkUnavailable` condition: until the network plugin clears it,
/// the node lifecycle controller keeps the `node.kubernetes.io/network-unavailable`
/// taint on the node and no pod needing the pod network is scheduled there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkCondition {
    pub unavailable: bool,
    /// CamelCase, as condition reasons are.
    pub reason: &'static str,
    pub message: &'static str,
}

pub(super) async fn endpoint<D: Datastore + Sync + ?Sized>(
    store: &D,
    namespace: &str,
    pod: &str,
) -> Result<Option<Workload>> {
    let name = WorkloadEndpointSpec::name_for(namespace, pod);
    match store.get::<WorkloadEndpoint>(&name).await {
        Ok(endpoint) => Ok(Some(endpoint.into())),
        Err(Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

pub(super) async fn endpoints<D: Datastore + Sync + ?Sized>(store: &D) -> Result<Vec<Workload>> {
    Ok(list_all::<WorkloadEndpoint, _>(store, None)
        .await?
        .items
        .into_iter()
        .map(Workload::from)
        .collect())
}

/// Creates the endpoint, or replaces the one a previous ADD left (a retried ADD, a
/// pod re-created under the same name); re-reads and retries when it races.
pub(super) async fn register<D: Datastore + Sync + ?Sized>(
    store: &D,
    spec: WorkloadEndpointSpec,
) -> Result<WorkloadEndpoint> {
    let name = WorkloadEndpointSpec::name_for(&spec.namespace, &spec.pod);
    loop {
        let result = match store.get::<WorkloadEndpoint>(&name).await {
            Ok(mut stored) => {
                stored.spec = spec.clone();
                store.update(&stored).await
            }
            Err(Error::NotFound { .. }) => store.create(&Object::new(&name, spec.clone())).await,
            Err(e) => return Err(e),
        };
        match result {
            Err(Error::Conflict { .. } | Error::AlreadyExists { .. } | Error::NotFound { .. }) => {
                continue;
            }
            result => return result,
        }
    }
}

pub(super) async fn unregister<D: Datastore + Sync + ?Sized>(
    store: &D,
    namespace: &str,
    pod: &str,
    container_id: &str,
) -> Result<Option<WorkloadEndpoint>> {
    let name = WorkloadEndpointSpec::name_for(namespace, pod);
    loop {
        let stored = match store.get::<WorkloadEndpoint>(&name).await {
            Ok(stored) if stored.spec.container_id == container_id => stored,
            Ok(_) | Err(Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        match store
            .delete::<WorkloadEndpoint>(&name, stored.revision())
            .await
        {
            Ok(deleted) => return Ok(Some(deleted)),
            Err(Error::Conflict { .. }) => continue,
            Err(Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
}
