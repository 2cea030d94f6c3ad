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
use proto::bgp::bgp_status_server::BgpStatusServer;
use proto::http::MetricsServer;
use proto::serve::{Bound, Endpoints};
use tokio::sync::watch;
use tonic::service::Routes;

pub use agent::AgentService;
pub use bgp::BgpService;

use crate::daemon::{Handle, Status};

/// Why the agent is not ready, or `None` when it is.
pub fn not_ready(status: &Status) -> Option<String> {
    if !status.listed {
        Some("the datastore has not been listed yet".into())
    } else if !status.bgp_synced {
        Some("BGP routes are being re-learned after the start".into())
    } else if !status.reconciled {
        Some("the kernel has not been reconciled yet".into())
    } else {
        None
    }
}

/// Binds the socket (and the metrics address) now, so that a mistake is reported at
/// start; serves until `shutdown` flips to true.
pub async fn bind(
    socket: PathBuf,
    metrics: Option<SocketAddr>,
) -> Result<(Bound, Option<MetricsServer>), proto::Error> {
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
        match metrics {
            Some(server) => {
                let probe = Arc::new(metrics::AgentProbe { handle });
                server
                    .serve(probe, async move {
                        let _ = shutdown.wait_for(|s| *s).await;
                    })
                    .await
            }
            None => Ok(()),
        }
    };
    let (grpc, http) = tokio::join!(grpc, http);
    grpc.and(http)
}
