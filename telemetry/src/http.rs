//! `/metrics` (Prometheus), `/healthz` (the process answers) and `/readyz` (it is
//! doing its job) over plain HTTP, for kubelet probes and scrapes.
//!
//! The port is reachable by anyone who can reach the node, so a client gets little:
//! one request per connection, its headers within [`Limits::header`], the whole
//! exchange within [`Limits::request`], and at most [`Limits::connections`] at
//! once; a connection over the limit is closed at once rather than queued.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::metrics::{self, Registry};

/// What the endpoint asks the daemon.
#[async_trait::async_trait]
pub trait Probe: Send + Sync + 'static {
    /// Brings figures read at scrape time up to date (a daemon whose state must
    /// be asked for); called before each `/metrics`.
    async fn refresh(&self) {}
    /// `Ok` when ready; otherwise why not.
    async fn ready(&self) -> Result<(), String>;
}

/// How much a client may take of the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// To send the request's headers.
    pub header: Duration,
    /// For the whole connection, answer included.
    pub request: Duration,
    /// Connections served at once.
    pub connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header: Duration::from_secs(5),
            request: Duration::from_secs(30),
            connections: 16,
        }
    }
}

/// Why the endpoint could not serve.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("binding the metrics address {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
}

/// A bound metrics and health endpoint.
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
    limits: Limits,
}

impl MetricsServer {
    pub async fn bind(address: SocketAddr) -> Result<Self, Error> {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| Error::Bind { address, source })?;
        Ok(Self {
            listener,
            limits: Limits::default(),
        })
    }

    pub fn with_limits(self, limits: Limits) -> Self {
        Self { limits, ..self }
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves `registry` and `probe` until `shutdown` completes; connections
    /// still open then end within [`Limits::request`].
    pub async fn serve(
        self,
        registry: Arc<Registry>,
        probe: Arc<dyn Probe>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let limits = self.limits;
        let slots = Arc::new(Semaphore::new(limits.connections));
        tokio::pin!(shutdown);
        loop {
            let stream = tokio::select! {
                () = &mut shutdown => return Ok(()),
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    // Out of file descriptors or a connection reset before
                    // accept: the next one may work.
                    Err(error) => {
                        tracing::debug!(%error, "metrics endpoint: accept failed");
                        continue;
                    }
                },
            };
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                tracing::debug!("metrics endpoint: connection limit reached; closing a connection");
                continue;
            };
            let registry = Arc::clone(&registry);
            let probe = Arc::clone(&probe);
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let (registry, probe) = (Arc::clone(&registry), Arc::clone(&probe));
                    async move { Ok::<_, Infallible>(answer(&request, &registry, &*probe).await) }
                });
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(limits.header)
                    .keep_alive(false)
                    .serve_connection(TokioIo::new(stream), service);
                let _ = tokio::time::timeout(limits.request, connection).await;
                drop(slot);
            });
        }
    }
}

async fn answer(
    request: &Request<Incoming>,
    registry: &Registry,
    probe: &dyn Probe,
) -> Response<Full<Bytes>> {
    if request.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".into());
    }
    match request.uri().path() {
        "/metrics" => {
            probe.refresh().await;
            let mut response = text(StatusCode::OK, metrics::encode(registry));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(metrics::CONTENT_TYPE),
            );
            response
        }
        "/healthz" => text(StatusCode::OK, "ok\n".into()),
        "/readyz" => match probe.ready().await {
            Ok(()) => text(StatusCode::OK, "ready\n".into()),
            Err(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {why}\n"),
            ),
        },
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}
