//! Who an allocation belongs to, and whether that owner still exists: the questions
//! the controller asks before it reclaims anything.

use std::net::IpAddr;

use api::datastore::{Backend, Datastore};
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

/// Whether an allocation's owner still exists, asked of the datastore (core Pods
/// and Nodes on Kubernetes; WorkloadEndpoints and tabby Nodes on etcd). A pod that
/// exists but holds other addresses is a later incarnation under the same name:
/// this allocation was its predecessor's. A pod that holds none yet is being set up
/// and counts as alive. `Unknown` owners always count as alive.
pub async fn owner_alive(store: &dyn Backend, owner: &Owner, ip: IpAddr) -> Result<bool> {
    Ok(match owner {
        Owner::Pod { namespace, pod, .. } => match store.workload(namespace, pod).await? {
            None => false,
            Some(workload) => workload.ips.is_empty() || workload.ips.contains(&ip),
        },
        Owner::Tunnel { node, .. } | Owner::Node { node } => store.node_exists(node).await?,
        Owner::Unknown => true,
    })
}
