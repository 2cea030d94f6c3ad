//! Where an e2e cluster keeps its resources, both in the lab's router namespace:
//! etcd (each cluster under a key prefix of its own), or the Kubernetes API double
//! as a process (`tabby-kube-api`, see [`crate::kube_api::process`]), which every
//! binary reaches over HTTP with its own service account's token, as in a
//! cluster installed from `manifests/`. On the Kubernetes datastore the harness
//! also writes what kubelet would: a core Node before a node's agent starts, a Pod
//! before its CNI ADD, and deletes the Pod after its CNI DEL.

use std::net::IpAddr;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use api::datastore::config::DatastoreType;
use api::datastore::{Backend, EtcdStore, KubeStore};
use serde_json::{Value, json};

use super::Cluster;
use crate::etcd::Etcd;
use crate::kube_api::objects;
use crate::kube_api::process::{Identity, KubeApiProcess, NAMESPACE};
use k8s_openapi::api::core::v1::Node;

/// The running datastore of a cluster.
#[derive(Debug)]
pub(super) enum Backing {
    Etcd { etcd: Box<Etcd>, prefix: String },
    Kubernetes(KubeApiProcess),
}

impl Backing {
    /// Starts `kind` on the lab's router, at its first IPv4 address (else its IPv6
    /// one), with credentials for the lab's nodes.
    pub(super) fn start(kind: DatastoreType, lab: &crate::Lab) -> Result<Self> {
        let router = lab
            .core()
            .context("an e2e lab needs a router namespace for its datastore")?;
        let addresses: Vec<IpAddr> = router.addresses.iter().map(|(_, a)| a.addr()).collect();
        let address = addresses
            .iter()
            .find(|a| a.is_ipv4())
            .or(addresses.first())
            .copied()
            .context("the router has no address")?;
        Ok(match kind {
            DatastoreType::Etcd => Backing::Etcd {
                etcd: Box::new(Etcd::start_in(lab.logs(), router, address)?),
                prefix: format!("/e2e-{}", lab.id()),
            },
            DatastoreType::Kubernetes => {
                let nodes: Vec<&str> = lab.nodes().iter().map(|n| n.name()).collect();
                Backing::Kubernetes(KubeApiProcess::start_in(
                    lab.logs(),
                    router,
                    address,
                    &nodes,
                )?)
            }
        })
    }

    /// The address clients reach it at.
    pub(super) fn address(&self) -> IpAddr {
        match self {
            Backing::Etcd { etcd, .. } => etcd.client_address().ip(),
            Backing::Kubernetes(api) => api.address().ip(),
        }
    }

    /// The datastore flags of a binary running as `identity`.
    pub(super) fn args(&self, identity: &Identity) -> Vec<String> {
        match self {
            Backing::Etcd { etcd, prefix } => vec![
                "--datastore-type=etcdv3".into(),
                format!("--etcd-endpoints={}", etcd.endpoint()),
                format!("--etcd-prefix={prefix}"),
            ],
            Backing::Kubernetes(api) => vec![
                "--datastore-type=kubernetes".into(),
                format!("--kubeconfig={}", api.kubeconfig(identity).display()),
            ],
        }
    }

    /// The keys of the CNI network config naming the datastore for `node`'s
    /// plugins (on the agent's token, as `tabby-install-cni` sets them up).
    pub(super) fn cni_keys(&self, node: &str) -> Value {
        match self {
            Backing::Etcd { etcd, prefix } => json!({
                "datastore_type": "etcdv3",
                "etcd_endpoints": etcd.endpoint(),
                "etcd_prefix": prefix,
            }),
            Backing::Kubernetes(api) => json!({
                "datastore_type": "kubernetes",
                "kubernetes": {"kubeconfig": api.kubeconfig(&Identity::Agent(node.to_owned()))},
            }),
        }
    }

    /// An admin's connection (call inside the router's namespace).
    pub(super) async fn connect(&self) -> Result<Arc<dyn Backend>> {
        Ok(match self {
            Backing::Etcd { etcd, prefix } => Arc::new(
                EtcdStore::connect(&[etcd.endpoint()])
                    .await
                    .context("connecting to etcd")?
                    .with_prefix(prefix.clone()),
            ),
            Backing::Kubernetes(api) => Arc::new(KubeStore::at(&api.url())?),
        })
    }
}

impl Cluster {
    /// Which datastore the cluster runs on.
    pub fn datastore_type(&self) -> DatastoreType {
        match self.backing {
            Backing::Etcd { .. } => DatastoreType::Etcd,
            Backing::Kubernetes(_) => DatastoreType::Kubernetes,
        }
    }

    /// The cluster's etcd; fails on the Kubernetes datastore.
    pub fn etcd(&mut self) -> Result<&mut Etcd> {
        match &mut self.backing {
            Backing::Etcd { etcd, .. } => Ok(etcd),
            Backing::Kubernetes(_) => bail!("the cluster runs on the Kubernetes datastore"),
        }
    }

    /// The API double; fails on etcd.
    pub fn kube_api(&self) -> Result<&KubeApiProcess> {
        match &self.backing {
            Backing::Kubernetes(api) => Ok(api),
            Backing::Etcd { .. } => bail!("the cluster runs on etcd"),
        }
    }

    /// Runs `work` with an admin's client of the API double, from the router's
    /// namespace; nothing on etcd (there is no Kubernetes there).
    pub(super) fn as_kubelet(
        &self,
        work: impl AsyncFnOnce(kube::Client) -> Result<()> + Send,
    ) -> Result<()> {
        let Backing::Kubernetes(api) = &self.backing else {
            return Ok(());
        };
        self.lab
            .core()
            .context("no router")?
            .run(|| crate::runtime().block_on(async { work(api.client()?).await }))?
    }

    /// Registers `node`'s core Node with its lab addresses as `InternalIP`s, as
    /// its kubelet does before the agent's pod runs (once per node).
    pub(super) fn register_node(&mut self, node: &str) -> Result<()> {
        if !self.registered.insert(node.to_owned()) {
            return Ok(());
        }
        let addresses: Vec<IpAddr> = self
            .lab
            .node(node)
            .addresses
            .iter()
            .map(|a| a.addr())
            .collect();
        self.as_kubelet(async |client| objects::put_node(&client, node, &addresses).await)
            .with_context(|| format!("registering the Kubernetes Node {node}"))
    }

    /// Creates or replaces the Secret `name` in tabby's namespace, as an operator
    /// applies the one BGP passwords' `secretKeyRef`s name. Fails on etcd.
    pub fn put_secret(&self, name: &str, data: &[(&str, &str)]) -> Result<()> {
        self.kube_api()?;
        self.as_kubelet(async |client| objects::put_secret(&client, NAMESPACE, name, data).await)
    }

    /// The status and reason of the core Node `node`'s `NetworkUnavailable`
    /// condition (none while nothing set it). Fails on etcd.
    pub fn network_condition(&self, node: &str) -> Result<Option<(String, String)>> {
        let api = self.kube_api()?;
        let router = self.lab.core().context("no router")?;
        router.run(|| {
            crate::runtime().block_on(async {
                let nodes: kube::Api<Node> = kube::Api::all(api.client()?);
                let status = nodes.get(node).await?.status.unwrap_or_default();
                Ok(status
                    .conditions
                    .unwrap_or_default()
                    .into_iter()
                    .find(|c| c.type_ == "NetworkUnavailable")
                    .map(|c| (c.status, c.reason.unwrap_or_default())))
            })
        })?
    }

    /// Runs `work` with an admin's client of the API double, for the objects users
    /// and Kubernetes' controllers write (Services, EndpointSlices: see
    /// [`objects`]). Fails on etcd (which holds no Kubernetes objects).
    pub fn with_kube_api(
        &self,
        work: impl AsyncFnOnce(kube::Client) -> Result<()> + Send,
    ) -> Result<()> {
        self.kube_api()?;
        self.as_kubelet(work)
    }

    /// Deletes the Pod `name` from the API without a CNI DEL, as when a node's
    /// kubelet lost the pod: the addresses it holds are leaked until the IPAM
    /// garbage collection frees them. Fails on etcd (which holds no Pods).
    pub fn delete_pod_object(&self, name: &str) -> Result<()> {
        self.kube_api()?;
        self.as_kubelet(async |client| objects::delete_pod(&client, super::NAMESPACE, name).await)
    }
}
