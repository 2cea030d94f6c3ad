//! Who an allocation belongs to, and whether that owner still exists: the questions
//! the controller asks before it reclaims anything.

use std::net::IpAddr;

use api::datastore::{Backend, Datastore, Workload};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::pools::{Family, Tunnel};
use crate::table::{Allocation, attr};

/// What an allocation is for, from its handle and attributes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Owner {
    /// A pod's address.
    #[serde(rename_all = "camelCase")]
    Pod {
        namespace: String,
        pod: String,
        container_id: Option<String>,
        /// The interface inside the pod the address was assigned for.
        interface: Option<String>,
        node: Option<String>,
    },
    /// A node's tunnel address.
    #[serde(rename_all = "camelCase")]
    Tunnel {
        node: String,
        tunnel: Tunnel,
        family: Family,
    },
    /// Something else that names its node (e.g. an explicit assignment).
    Node { node: String },
    /// Nothing says who holds it: never reclaimed automatically.
    Unknown,
}

impl Owner {
    pub fn of(allocation: &Allocation<'_>) -> Self {
        let get = |key: &str| allocation.secondary.get(key).cloned();
        let handle = allocation.handle.unwrap_or("");
        let tunnels = [
            ("ipip-tunnel-addr-", Tunnel::Ipip, Family::V4),
            ("vxlan-tunnel-addr-", Tunnel::Vxlan, Family::V4),
            ("vxlan-v6-tunnel-addr-", Tunnel::Vxlan, Family::V6),
        ];
        for (prefix, tunnel, family) in tunnels {
            if let Some(node) = handle.strip_prefix(prefix).filter(|n| !n.is_empty()) {
                return Self::Tunnel {
                    node: get(attr::NODE).unwrap_or_else(|| node.to_owned()),
                    tunnel,
                    family,
                };
            }
        }
        match (get(attr::NAMESPACE), get(attr::POD), get(attr::NODE)) {
            (Some(namespace), Some(pod), node) => Self::Pod {
                namespace,
                pod,
                container_id: get(attr::CONTAINER_ID),
                interface: get(attr::INTERFACE),
                node,
            },
            (_, _, Some(node)) => Self::Node { node },
            _ => Self::Unknown,
        }
    }

    /// The node the owner lives on, when known.
    pub fn node(&self) -> Option<&str> {
        match self {
            Self::Pod { node, .. } => node.as_deref(),
            Self::Tunnel { node, .. } | Self::Node { node } => Some(node),
            Self::Unknown => None,
        }
    }
}

/// Why a pod's address `ip` is no longer held by the attachment it was assigned
/// to, or `None` while it may be. An address lives as long as its attachment: the
/// pod exists, its sandbox (container ID) is still the one the CNI plugin recorded
/// last, and, for the recorded interface, the plugin recorded this address. Any
/// other interface of the live sandbox (a second network whose plugin records no
/// endpoint) counts as alive, as does a pod whose sandbox nothing recorded (then
/// nothing says which incarnation holds what). The kubelet's `status.podIPs` are
/// never the judge: they lag behind a replaced sandbox and leave out secondary
/// interfaces.
pub fn pod_address_gone(owner: &Owner, ip: IpAddr, pod: Option<&Workload>) -> Option<String> {
    let Owner::Pod {
        namespace,
        pod: name,
        container_id,
        interface,
        ..
    } = owner
    else {
        return None;
    };
    let Some(pod) = pod else {
        return Some(format!("pod {namespace}/{name} does not exist"));
    };
    let (Some(recorded), Some(container)) = (&pod.attachment, container_id) else {
        return None;
    };
    if recorded.container_id != *container {
        return Some(format!(
            "pod {namespace}/{name} runs in sandbox {} now, not {container}",
            recorded.container_id
        ));
    }
    let same_interface = interface.as_deref() == Some(recorded.interface.as_str());
    (same_interface && !recorded.ips.is_empty() && !recorded.ips.contains(&ip)).then(|| {
        format!(
            "sandbox {container} of pod {namespace}/{name} recorded other addresses for {}",
            recorded.interface
        )
    })
}

/// Whether an allocation's owner still exists, asked of the datastore (core Pods
/// and Nodes on Kubernetes, with the CNI plugin's endpoints; WorkloadEndpoints and
/// tabby Nodes on etcd). Pods are judged by [`pod_address_gone`]; `Unknown` owners
/// always count as alive.
pub async fn owner_alive(store: &dyn Backend, owner: &Owner, ip: IpAddr) -> Result<bool> {
    Ok(match owner {
        Owner::Pod { namespace, pod, .. } => {
            let found = store.workload(namespace, pod).await?;
            pod_address_gone(owner, ip, found.as_ref()).is_none()
        }
        Owner::Tunnel { node, .. } | Owner::Node { node } => store.node_exists(node).await?,
        Owner::Unknown => true,
    })
}
