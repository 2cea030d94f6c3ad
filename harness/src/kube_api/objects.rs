//! What the rest of a cluster writes through the API and tabby reads: core Nodes
//! as kubelet registers them, Pods as the scheduler binds them, Secrets as an
//! operator applies them. The functions take a client, so they serve the
//! in-process double and the `tabby-kube-api` process alike.

use std::net::IpAddr;

use anyhow::Result;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Node, Pod, Secret};
use kube::Api;
use serde_json::{Value, json};

/// Creates or replaces the Secret `namespace/name` holding `data` (as `kubectl
/// apply` would).
pub async fn put_secret(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    data: &[(&str, &str)],
) -> Result<()> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut secret = secrets.get_opt(name).await?.unwrap_or_default();
    secret.metadata.name = Some(name.to_owned());
    secret.data = Some(
        data.iter()
            .map(|(key, value)| ((*key).to_owned(), ByteString(value.as_bytes().to_vec())))
            .collect(),
    );
    match secret.metadata.resource_version {
        Some(_) => secrets.replace(name, &Default::default(), &secret).await?,
        None => secrets.create(&Default::default(), &secret).await?,
    };
    Ok(())
}

/// Creates the core Node `name` as a kubelet registers it, reporting
/// `internal_ips` as its `InternalIP` addresses (kubelet creates its Node with
/// the status it then keeps up to date through `nodes/status`).
pub async fn put_node(client: &kube::Client, name: &str, internal_ips: &[IpAddr]) -> Result<()> {
    let addresses: Vec<Value> = internal_ips
        .iter()
        .map(|ip| json!({"type": "InternalIP", "address": ip.to_string()}))
        .chain([json!({"type": "Hostname", "address": name})])
        .collect();
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "status": {"addresses": addresses},
    }))?;
    let nodes: Api<Node> = Api::all(client.clone());
    nodes.create(&Default::default(), &node).await?;
    Ok(())
}

/// Deletes the core Node `name`, as `kubectl delete node` does.
pub async fn delete_node(client: &kube::Client, name: &str) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    nodes.delete(name, &Default::default()).await?;
    Ok(())
}

/// Creates the Pod `namespace/name` bound to `node`, as it stands when kubelet
/// asks the runtime for its sandbox (before any CNI ADD).
pub async fn put_pod(client: &kube::Client, namespace: &str, name: &str, node: &str) -> Result<()> {
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"nodeName": node, "containers": [{"name": "main", "image": "busybox"}]},
    }))?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    pods.create(&Default::default(), &pod).await?;
    Ok(())
}

/// Deletes the Pod `namespace/name` (what `kubectl delete pod` ends in, once the
/// kubelet has torn it down); a Pod already gone is no error.
pub async fn delete_pod(client: &kube::Client, namespace: &str, name: &str) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    match pods.delete(name, &Default::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
