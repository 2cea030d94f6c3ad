//! One fixture per backend: a fresh store, and the outside levers the suite pulls.

use std::net::IpAddr;

use api::datastore::{Backend, Datastore, EtcdStore, KubeStore, MemoryStore};
use api::resources::{Node, NodeSpec, Revision, WorkloadEndpointSpec};
use async_trait::async_trait;
use ipnet::IpNet;

use super::Fixture;
use crate::etcd::Etcd;
use crate::kube_api::{KubeApi, KubeApiOptions};
use crate::logs::LogDir;

/// The in-memory backend.
#[derive(Debug)]
pub struct MemoryFixture {
    store: MemoryStore,
}

impl MemoryFixture {
    pub async fn start(_test: &str) -> Self {
        Self {
            store: MemoryStore::new(),
        }
    }

    async fn forget_history(&self, revision: Revision) {
        self.store.compact(revision);
    }
}

/// A real etcd on free loopback ports, and the etcd backend connected to it.
#[derive(Debug)]
pub struct EtcdFixture {
    store: EtcdStore,
    // Dropped last: the store's connections go before etcd does.
    etcd: Etcd,
}

impl EtcdFixture {
    pub async fn start(test: &str) -> Self {
        let etcd = tokio::task::block_in_place(|| {
            let logs = LogDir::new(test).expect("a log directory");
            Etcd::start(&logs).expect("etcd starts")
        });
        let store = EtcdStore::connect(&[etcd.endpoint()])
            .await
            .expect("connecting to etcd");
        Self { store, etcd }
    }

    pub fn etcd_store(&self) -> &EtcdStore {
        &self.store
    }

    pub fn etcd(&self) -> &Etcd {
        &self.etcd
    }

    async fn forget_history(&self, revision: Revision) {
        self.store.compact(revision).await.expect("compacting etcd");
    }
}

/// On backends without core Pods and Nodes, pods exist through the CNI plugin's
/// endpoints and nodes through tabby `Node`s: the suite writes those as the plugin
/// and the agent do.
pub(super) async fn start_endpoint(
    store: &dyn Backend,
    namespace: &str,
    pod: &str,
    node: &str,
    ip: IpAddr,
) {
    store
        .register_workload(WorkloadEndpointSpec {
            node: node.into(),
            namespace: namespace.into(),
            pod: pod.into(),
            container_id: format!("{pod}-sandbox"),
            endpoint: "eth0".into(),
            interface_name: "cali0123456789a".into(),
            mac: None,
            ip_networks: vec![api::resources::Cidr(IpNet::from(ip))],
        })
        .await
        .expect("registering a workload");
}

pub(super) async fn stop_endpoint(store: &dyn Backend, namespace: &str, pod: &str) {
    // A DEL from an older sandbox of the pod leaves it alone; its own removes it.
    let stale = store
        .unregister_workload(namespace, pod, "older-sandbox")
        .await
        .expect("unregistering");
    assert_eq!(stale, None, "a stale DEL removed the endpoint");
    let removed = store
        .unregister_workload(namespace, pod, &format!("{pod}-sandbox"))
        .await
        .expect("unregistering");
    assert!(removed.is_some(), "the endpoint was not there to remove");
}

pub(super) async fn add_tabby_node(store: &dyn Backend, node: &str) {
    store
        .create(&Node::new(node, NodeSpec::default()))
        .await
        .expect("creating a node");
}

/// The fixture methods every backend without core objects shares.
macro_rules! resource_inventory_fixture {
    ($fixture:ty) => {
        #[async_trait]
        impl Fixture for $fixture {
            fn store(&self) -> &dyn Backend {
                &self.store
            }

            async fn compact(&self, revision: Revision) {
                self.forget_history(revision).await;
            }

            async fn start_pod(&self, namespace: &str, pod: &str, node: &str, ip: IpAddr) {
                start_endpoint(&self.store, namespace, pod, node, ip).await;
            }

            async fn stop_pod(&self, namespace: &str, pod: &str) {
                stop_endpoint(&self.store, namespace, pod).await;
            }

            async fn add_node(&self, node: &str) {
                add_tabby_node(&self.store, node).await;
            }

            fn transactions(&self) -> bool {
                true
            }
        }
    };
}

resource_inventory_fixture!(MemoryFixture);
resource_inventory_fixture!(EtcdFixture);

/// The kubernetes backend against the API double, with `manifests/crds/crds.yaml` installed.
pub struct KubeFixture {
    store: KubeStore,
    /// A plain client, for what the kubelet and the scheduler write (core Pods, Nodes).
    client: kube::Client,
    api: KubeApi,
}

impl KubeFixture {
    pub async fn start(test: &str) -> Self {
        Self::with_options(test, KubeApiOptions::default()).await
    }

    pub async fn with_options(_test: &str, options: KubeApiOptions) -> Self {
        let api = KubeApi::start(options)
            .await
            .expect("the API double starts");
        let manifest = crate::manifests::crds().expect("manifests/crds/crds.yaml reads");
        api.install_crds(&of_a_newer_version(&manifest))
            .expect("installing the CRDs");
        let store = KubeStore::at(&api.url()).expect("a store for the double");
        let config = kube::Config::new(api.url().parse().expect("a URL"));
        let client = kube::Client::try_from(config).expect("a client for the double");
        Self { store, client, api }
    }

    pub fn kube_store(&self) -> &KubeStore {
        &self.store
    }

    pub fn api(&self) -> &KubeApi {
        &self.api
    }
}

/// The CRDs as a newer tabby would install them: the contract says fields a newer
/// version writes are read past and kept, and on Kubernetes that newer version's
/// schema names them (else the API server prunes them, as the double does). The
/// double stands for that schema by preserving unknown fields in every object of
/// each `spec`; pruning by this version's schema is tested in `kdd_schema_pruning`.
fn of_a_newer_version(manifest: &str) -> String {
    let mut documents = Vec::new();
    for document in yaml_serde::Deserializer::from_str(manifest) {
        let mut crd: serde_json::Value =
            serde::Deserialize::deserialize(document).expect("CRD YAML");
        for version in crd["spec"]["versions"].as_array_mut().into_iter().flatten() {
            preserve_unknown(&mut version["schema"]["openAPIV3Schema"]["properties"]["spec"]);
        }
        documents.push(format!("---\n{crd}\n"));
    }
    documents.concat()
}

/// Marks every object schema at or under `schema` to keep unknown fields.
fn preserve_unknown(schema: &mut serde_json::Value) {
    if schema.get("properties").is_some() {
        schema["x-kubernetes-preserve-unknown-fields"] = true.into();
    }
    if let Some(properties) = schema.get_mut("properties").and_then(|p| p.as_object_mut()) {
        properties.values_mut().for_each(preserve_unknown);
    }
    for nested in ["items", "additionalProperties"] {
        if let Some(child) = schema.get_mut(nested).filter(|c| c.is_object()) {
            preserve_unknown(child);
        }
    }
}

impl std::fmt::Debug for KubeFixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeFixture")
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Fixture for KubeFixture {
    fn store(&self) -> &dyn Backend {
        &self.store
    }

    async fn compact(&self, revision: Revision) {
        self.api.compact(revision.0);
    }

    async fn start_pod(&self, namespace: &str, pod: &str, node: &str, ip: IpAddr) {
        use k8s_openapi::api::core::v1::Pod;
        // As the scheduler binds it and the kubelet reports its address (the double has
        // no status subresource: the status is written with the pod).
        let object: Pod = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": pod, "namespace": namespace},
            "spec": {"nodeName": node, "containers": [{"name": "main", "image": "pause"}]},
            "status": {"podIPs": [{"ip": ip.to_string()}], "phase": "Running"},
        }))
        .expect("a pod");
        kube::Api::<Pod>::namespaced(self.client.clone(), namespace)
            .create(&Default::default(), &object)
            .await
            .expect("creating a pod");
    }

    async fn stop_pod(&self, namespace: &str, pod: &str) {
        use k8s_openapi::api::core::v1::Pod;
        kube::Api::<Pod>::namespaced(self.client.clone(), namespace)
            .delete(pod, &Default::default())
            .await
            .expect("deleting a pod");
    }

    async fn add_node(&self, node: &str) {
        use k8s_openapi::api::core::v1::Node as CoreNode;
        let object: CoreNode = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": node},
        }))
        .expect("a node");
        kube::Api::<CoreNode>::all(self.client.clone())
            .create(&Default::default(), &object)
            .await
            .expect("creating a node");
    }

    fn transactions(&self) -> bool {
        false
    }
}
