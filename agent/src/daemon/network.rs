//! The Kubernetes Node's `NetworkUnavailable` condition, which the node's network
//! plugin owns (calico-node clears it at start): tabby-agent clears it once it is
//! ready — every kind listed, BGP re-learned, the kernel reconciled, so this
//! node's pods are routed — and sets it again when it stops, when nothing keeps
//! the node's routing up to date. While it is set, the node lifecycle controller
//! keeps the `node.kubernetes.io/network-unavailable` taint on the node.
//!
//! Only where the datastore has the cluster's Nodes (the kubernetes datastore);
//! on etcd there is no Kubernetes Node to write to.

use std::sync::Arc;
use std::time::Duration;

use api::datastore::{Backend, NetworkCondition};
use tokio::sync::watch;

use super::status::Status;

pub const UP: NetworkCondition = NetworkCondition {
    unavailable: false,
    reason: "TabbyIsUp",
    message: "tabby-agent routes this node's pods",
};

pub const DOWN: NetworkCondition = NetworkCondition {
    unavailable: true,
    reason: "TabbyIsDown",
    message: "tabby-agent is stopped on this node",
};

/// A failed write is tried again after this long.
const RETRY: Duration = Duration::from_secs(5);
/// How long a stopping agent waits for the API to take `DOWN`.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// Clears the condition of `node` once `status` is ready, retrying until the API
/// takes it; returns at once without Kubernetes Nodes, or when the agent's status
/// ends.
pub async fn clear_when_ready(
    store: Arc<dyn Backend>,
    node: String,
    mut status: watch::Receiver<Status>,
) {
    let Some(nodes) = store.inventory() else {
        return;
    };
    if status.wait_for(Status::ready).await.is_err() {
        return;
    }
    let mut warned = false;
    loop {
        match nodes.set_network(&node, &UP).await {
            Ok(()) => {
                tracing::info!(
                    reason = UP.reason,
                    "Kubernetes Node: NetworkUnavailable=False"
                );
                return;
            }
            Err(error) if !warned => {
                tracing::warn!(%error, "clearing the Kubernetes Node's NetworkUnavailable condition: retrying");
                warned = true;
            }
            Err(_) => {}
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Sets the condition of `node` as the agent stops (best effort: the agent stops
/// either way).
pub async fn set_on_stop(store: &dyn Backend, node: &str) {
    let Some(nodes) = store.inventory() else {
        return;
    };
    match tokio::time::timeout(STOP_WAIT, nodes.set_network(node, &DOWN)).await {
        Ok(Ok(())) => {
            tracing::info!(
                reason = DOWN.reason,
                "Kubernetes Node: NetworkUnavailable=True"
            );
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, "setting the Kubernetes Node's NetworkUnavailable condition");
        }
        Err(_) => tracing::warn!(
            "setting the Kubernetes Node's NetworkUnavailable condition: no answer in {STOP_WAIT:?}"
        ),
    }
}
