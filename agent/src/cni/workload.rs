//! Recording the pod in the datastore, as Calico's plugin does in etcd mode: its
//! `WorkloadEndpoint` (node, container, interface, addresses) after ADD wired it
//! up, removed by the DEL of the same container. IPAM's garbage collector reads
//! them to tell live pods from leaked addresses, so an ADD that cannot record the
//! pod fails (and is undone) rather than leave an address that looks leaked.

use std::net::IpAddr;

use api::datastore::{Backend, Datastore};
use api::resources::{Cidr, MacAddress, WorkloadEndpointSpec};
use ipnet::IpNet;

use super::config::DatastoreConf;
use super::env::Env;
use super::error::CniError;
use crate::dataplane::Mac;

/// What ADD knows of the pod.
#[derive(Debug, Clone)]
pub struct Attached<'a> {
    pub host_veth: &'a str,
    pub mac: Option<Mac>,
    pub addresses: &'a [IpAddr],
}

/// Records the pod's endpoint; a pod without Kubernetes identity is not recorded.
pub fn register(datastore: &DatastoreConf, env: &Env, pod: &Attached<'_>) -> Result<(), CniError> {
    let (Some(namespace), Some(name)) = (&env.pod.namespace, &env.pod.name) else {
        return Ok(());
    };
    let spec = WorkloadEndpointSpec {
        node: datastore.node.clone(),
        namespace: namespace.clone(),
        pod: name.clone(),
        container_id: env.container_id.clone(),
        endpoint: env.ifname.clone(),
        interface_name: pod.host_veth.to_owned(),
        mac: pod.mac.map(|m| MacAddress(m.0)),
        ip_networks: pod
            .addresses
            .iter()
            .map(|&ip| Cidr(IpNet::from(ip)))
            .collect(),
    };
    with_store(datastore, "recording the pod", async |store| {
        store.register_workload(spec).await.map(drop)
    })
}

/// Removes the endpoint this container recorded; nothing to remove is success.
pub fn unregister(datastore: &DatastoreConf, env: &Env) -> Result<(), CniError> {
    let (Some(namespace), Some(name)) = (&env.pod.namespace, &env.pod.name) else {
        return Ok(());
    };
    with_store(datastore, "forgetting the pod", async |store| {
        store
            .unregister_workload(namespace, name, &env.container_id)
            .await
            .map(drop)
    })
}

fn with_store(
    datastore: &DatastoreConf,
    what: &'static str,
    work: impl AsyncFnOnce(&dyn Backend) -> api::datastore::Result<()>,
) -> Result<(), CniError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CniError::io("starting a runtime for the datastore"))?;
    runtime.block_on(async {
        let failed = |reason: String| CniError::Datastore {
            what,
            store: datastore.store.to_string(),
            reason,
        };
        // tabby-ipam's connection: the same timeouts for both plugins.
        let store = ipam::connect::connect(&datastore.store)
            .await
            .map_err(|e| failed(e.to_string()))?;
        work(&*store).await.map_err(|e| failed(e.to_string()))
    })
}
