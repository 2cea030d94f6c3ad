//! Recording the pod in the datastore, as Calico's plugin does in etcd mode: its
//! `WorkloadEndpoint` (node, container, interface, addresses) after ADD wired it
//! up, removed by the DEL of the same container. IPAM's garbage collector reads
//! them to tell live pods from leaked addresses, so an ADD that cannot record the
//! pod fails (and is undone) rather than leave an address that looks leaked.

use std::net::IpAddr;

use agent::dataplane::Mac;
use api::datastore::{Backend, Datastore};
use api::resources::{Cidr, MacAddress, WorkloadEndpointSpec};
use ipnet::IpNet;
use tracing::Instrument;

use crate::error::CniError;
use crate::spec::config::NetConf;
use crate::spec::env::Env;

/// What ADD knows of the pod.
#[derive(Debug, Clone)]
pub struct Attached<'a> {
    pub host_veth: &'a str,
    pub mac: Option<Mac>,
    pub addresses: &'a [IpAddr],
}

/// Records the pod's endpoint; a pod without Kubernetes identity is not recorded.
pub fn register(
    conf: &NetConf,
    var: &dyn Fn(&str) -> Option<String>,
    env: &Env,
    pod: &Attached<'_>,
) -> Result<(), CniError> {
    let (Some(namespace), Some(name)) = (&env.pod.namespace, &env.pod.name) else {
        return Ok(());
    };
    let spec = WorkloadEndpointSpec {
        node: conf.node(var)?,
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
    with_store(conf, "recording the pod", async |store| {
        store.register_workload(spec).await.map(drop)
    })
}

/// Removes the endpoint this container recorded; nothing to remove is success.
pub fn unregister(conf: &NetConf, env: &Env) -> Result<(), CniError> {
    let (Some(namespace), Some(name)) = (&env.pod.namespace, &env.pod.name) else {
        return Ok(());
    };
    with_store(conf, "forgetting the pod", async |store| {
        store
            .unregister_workload(namespace, name, &env.container_id)
            .await
            .map(drop)
    })
}

fn with_store(
    conf: &NetConf,
    what: &'static str,
    work: impl AsyncFnOnce(&dyn Backend) -> api::datastore::Result<()>,
) -> Result<(), CniError> {
    let datastore = conf.datastore_config()?;
    let runtime = tracing::debug_span!(target: "stage", "cni.runtime")
        .in_scope(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        })
        .map_err(CniError::io("starting a runtime for the datastore"))?;
    runtime.block_on(async {
        let store = api::datastore::connect(&datastore)
            .instrument(tracing::debug_span!(target: "stage", "datastore.connect"))
            .await
            .map_err(|source| CniError::Connect {
                store: datastore.to_string(),
                source,
            })?;
        work(&*store).await.map_err(|source| CniError::Datastore {
            what,
            store: datastore.to_string(),
            source: Box::new(source),
        })
    })
}
