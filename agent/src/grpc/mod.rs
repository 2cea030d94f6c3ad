//! The agent's status API: `tabby.bgp.v1.BgpStatus` and `tabby.agent.v1.AgentStatus`
//! on a Unix socket, and `/metrics`, `/healthz`, `/readyz` over HTTP, all answered
//! from the loop's [`Handle`].

mod agent;
mod bgp;
pub mod metrics;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use proto::agent::agent_status_server::AgentStatusServer;
use proto::bgp_status::bgp_status_server::BgpStatusServer;
use proto::serve::{Bound, Endpoints};
use telemetry::http::MetricsServer;
use tokio::sync::watch;
use tonic::service::Routes;

pub use agent::AgentService;
pub use bgp::BgpService;

use crate::daemon::{Handle, Status};

/// Why the agent is not ready yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    #[error("the datastore has not been listed yet")]
    Unlisted,
    #[error("BGP routes are being re-learned after the start")]
    Relearning,
    #[error("the kernel has not been reconciled yet")]
    Unreconciled,
}

/// Why the agent is not ready, or `None` when it is.
pub fn not_ready(status: &Status) -> Option<NotReady> {
    if !status.listed {
        Some(NotReady::Unlisted)
    } else if !status.bgp_synced {
        Some(NotReady::Relearning)
    } else if !status.reconciled {
        Some(NotReady::Unreconciled)
    } else {
        None
    }
}

/// Why the status API or the metrics endpoint could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(transparent)]
    Grpc(#[from] proto::Error),
    #[error(transparent)]
    Metrics(#[from] telemetry::http::Error),
}

/// Binds the socket (and the metrics address) now, so that a mistake is reported at
/// start; serves until `shutdown` flips to true.
pub async fn bind(
    socket: PathBuf,
    metrics: Option<SocketAddr>,
) -> Result<(Bound, Option<MetricsServer>), BindError> {
    let bound = Bound::bind(&Endpoints {
        unix: socket,
        tcp: None,
    })
    .await?;
    let metrics = match metrics {
        Some(address) => Some(MetricsServer::bind(address).await?),
        None => None,
    };
    Ok((bound, metrics))
}

/// Serves both APIs and the metrics page until `shutdown` becomes true.
pub async fn serve(
    handle: Handle,
    bound: Bound,
    metrics: Option<MetricsServer>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), proto::Error> {
    let observer = Arc::new(metrics::AgentMetrics::new(handle.clone()));
    let registry = metrics::registry(&observer);
    let mut routes = Routes::new(BgpStatusServer::new(BgpService {
        handle: handle.clone(),
    }));
    routes = routes.add_service(AgentStatusServer::new(AgentService {
        handle: handle.clone(),
    }));
    let mut stop = shutdown.clone();
    let grpc = bound.serve(routes, async move {
        let _ = stop.wait_for(|s| *s).await;
    });
    let http = async {
        if let Some(server) = metrics {
            let stop = async move {
                let _ = shutdown.wait_for(|s| *s).await;
            };
            if let Err(error) = server.serve(Arc::new(registry), observer, stop).await {
                tracing::warn!(%error, "metrics endpoint");
            }
        }
    };
    let (grpc, ()) = tokio::join!(grpc, http);
    grpc
}
