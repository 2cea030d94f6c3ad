//! Core Pods and Nodes: which workloads and nodes exist on Kubernetes, and the one
//! write, a Node's `NetworkUnavailable` condition.

use std::net::IpAddr;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::NodeCondition;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::core::params::ListParams;

use super::{CHUNK, KubeStore};
use crate::datastore::{Inventory, NetworkCondition, Result, Workload};

fn workload(pod: Pod) -> Workload {
    let ips = pod
        .status
        .and_then(|status| status.pod_ips)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|ip| ip.ip.parse().ok())
        .collect();
    Workload {
        namespace: pod.metadata.namespace.unwrap_or_default(),
        pod: pod.metadata.name.unwrap_or_default(),
        node: pod.spec.and_then(|spec| spec.node_name),
        ips,
        attachment: None,
    }
}

/// Every object of `api`, a page at a time.
async fn list_all<K>(api: &Api<K>) -> Result<Vec<K>>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut params = ListParams::default().limit(CHUNK);
    let mut all = Vec::new();
    loop {
        let page = api.list(&params).await?;
        all.extend(page.items);
        match page.metadata.continue_.filter(|token| !token.is_empty()) {
            Some(token) => params.continue_token = Some(token),
            None => return Ok(all),
        }
    }
}

#[async_trait]
impl Inventory for KubeStore {
    async fn pod(&self, namespace: &str, pod: &str) -> Result<Option<Workload>> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        Ok(pods.get_opt(pod).await?.map(workload))
    }

    async fn pods(&self) -> Result<Vec<Workload>> {
        let pods: Api<Pod> = Api::all(self.client.clone());
        Ok(list_all(&pods).await?.into_iter().map(workload).collect())
    }

    async fn node_exists(&self, node: &str) -> Result<bool> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        Ok(nodes.get_opt(node).await?.is_some())
    }

    async fn internal_ips(&self, node: &str) -> Result<Vec<IpAddr>> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let addresses = nodes
            .get_opt(node)
            .await?
            .and_then(|node| node.status)
            .and_then(|status| status.addresses)
            .unwrap_or_default();
        Ok(addresses
            .into_iter()
            .filter(|a| a.type_ == "InternalIP")
            .filter_map(|a| a.address.parse().ok())
            .collect())
    }

    async fn set_network(&self, node: &str, network: &NetworkCondition) -> Result<()> {
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        let condition = NodeCondition {
            type_: "NetworkUnavailable".into(),
            status: if network.unavailable { "True" } else { "False" }.into(),
            reason: Some(network.reason.into()),
            message: Some(network.message.into()),
            last_heartbeat_time: Some(now.clone()),
            last_transition_time: Some(now),
        };
        // Strategic merge: conditions merge by `type`, so kubelet's stay as they are
        // (a merge patch would replace the list).
        let patch = serde_json::json!({"status": {"conditions": [condition]}});
        let nodes: Api<Node> = Api::all(self.client.clone());
        nodes
            .patch_status(node, &PatchParams::default(), &Patch::Strategic(patch))
            .await?;
        Ok(())
    }

    async fn nodes(&self) -> Result<Vec<String>> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        Ok(list_all(&nodes)
            .await?
            .into_iter()
            .filter_map(|node| node.metadata.name)
            .collect())
    }
}
