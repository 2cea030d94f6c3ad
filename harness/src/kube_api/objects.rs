//! What the rest of a cluster writes through the API and tabby reads: core Nodes
//! as kubelet registers them, Pods as the scheduler binds them, Secrets as an
//! operator applies them, Services as a user writes them (and a LoadBalancer
//! controller their status) and EndpointSlices as the EndpointSlice controller
//! writes them. The functions take a client, so they serve the
//! in-process double and the `tabby-kube-api` process alike.

use std::net::IpAddr;

use anyhow::Result;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Node, Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
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

/// Creates or replaces (the stored version carried over) a namespaced object.
async fn apply<K>(api: &Api<K>, name: &str, mut object: K) -> Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    match api.get_opt(name).await? {
        Some(stored) => {
            object.meta_mut().resource_version = stored.meta().resource_version.clone();
            api.replace(name, &Default::default(), &object).await?;
        }
        None => {
            api.create(&Default::default(), &object).await?;
        }
    }
    Ok(())
}

/// Creates or replaces the Service `service` (JSON as `kubectl apply` takes it,
/// `metadata.namespace` and `metadata.name` set; its status too, as the double has
/// no status subresource).
pub async fn put_service(client: &kube::Client, service: Value) -> Result<()> {
    let service: Service = serde_json::from_value(service)?;
    let namespace = service.metadata.namespace.clone().unwrap_or_default();
    let name = service.metadata.name.clone().unwrap_or_default();
    apply(&Api::namespaced(client.clone(), &namespace), &name, service).await
}

/// Deletes the Service `namespace/name`.
pub async fn delete_service(client: &kube::Client, namespace: &str, name: &str) -> Result<()> {
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    services.delete(name, &Default::default()).await?;
    Ok(())
}

/// One endpoint of an EndpointSlice: its address, its node, whether it is ready.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint<'a> {
    pub address: IpAddr,
    pub node: &'a str,
    pub ready: bool,
}

/// Creates or replaces the EndpointSlice `namespace/name` of Service `service`
/// holding `endpoints` of one address family (the slice's `addressType`).
pub async fn put_endpoint_slice(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    service: &str,
    endpoints: &[Endpoint<'_>],
) -> Result<()> {
    let ipv6 = endpoints.first().is_some_and(|e| e.address.is_ipv6());
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|e| {
            json!({
                "addresses": [e.address.to_string()],
                "nodeName": e.node,
                "conditions": {"ready": e.ready, "serving": e.ready, "terminating": false},
            })
        })
        .collect();
    let slice: EndpointSlice = serde_json::from_value(json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                api::services::SERVICE_NAME_LABEL: service,
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
            },
        },
        "addressType": if ipv6 { "IPv6" } else { "IPv4" },
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
    }))?;
    apply(&Api::namespaced(client.clone(), namespace), name, slice).await
}
