//! `/metrics` (Prometheus), `/healthz` (the process answers) and `/readyz` (it is
//! doing its job) over plain HTTP, for kubelet probes and scrapes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use crate::Error;

/// What the endpoint asks the daemon.
#[async_trait::async_trait]
pub trait Probe: Send + Sync + 'static {
    /// The metrics page, in the Prometheus text format.
    async fn metrics(&self) -> String;
    /// `Ok` when ready; otherwise why not.
    async fn ready(&self) -> Result<(), String>;
}

/// A bound metrics endpoint.
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
}

impl MetricsServer {
    pub async fn bind(address: SocketAddr) -> Result<Self, Error> {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| Error::Bind {
                what: "metrics address",
                address: address.to_string(),
                source,
            })?;
        Ok(Self { listener })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until `shutdown` completes.
    pub async fn serve(
        self,
        probe: Arc<dyn Probe>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let app = Router::new()
            .route("/metrics", get(metrics))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(ready))
            .with_state(probe);
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(Error::Http)
    }
}

async fn metrics(State(probe): State<Arc<dyn Probe>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        probe.metrics().await,
    )
        .into_response()
}

async fn ready(State(probe): State<Arc<dyn Probe>>) -> Response {
    match probe.ready().await {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()).into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}
