//! Who an allocation belongs to, and whether that owner still exists: the questions
//! the controller asks before it reclaims anything.

use std::fmt::Debug;
use std::net::IpAddr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::pools::{Family, Tunnel};
use crate::table::{Allocation, attr};

/// What an allocation is for, from its handle and attributes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

/// The workload a pod allocation was made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload<'a> {
    pub namespace: &'a str,
    pub pod: &'a str,
    /// The sandbox the address was allocated for; a pod recreated under the same
    /// name has another one.
    pub container_id: Option<&'a str>,
    pub ip: IpAddr,
}

/// Answers whether nodes and workloads exist. Errors mean "unknown", and nothing
/// is reclaimed on an unknown answer.
#[async_trait]
pub trait Inventory: Send + Sync + Debug {
    async fn node_exists(&self, node: &str) -> Result<bool>;
    /// True while the workload that holds `workload.ip` exists.
    async fn workload_exists(&self, workload: &Workload<'_>) -> Result<bool>;
}
