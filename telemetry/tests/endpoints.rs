//! The metrics and health endpoint over real sockets: what it answers, and what a
//! client that holds connections open or sends nothing gets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use telemetry::http::{Limits, MetricsServer, Probe};
use telemetry::metrics::{Collector, DescriptorEncoder, Registry, Scrape};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for what must happen; never asserted as a duration.
const PATIENCE: Duration = Duration::from_secs(20);

#[derive(Debug)]
struct Up;

impl Collector for Up {
    fn encode(&self, encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        Scrape::new(encoder).gauge("tabby_up", "Always 1.", true)
    }
}

struct NotYet;

#[async_trait::async_trait]
impl Probe for NotYet {
    async fn ready(&self) -> Result<(), String> {
        Err("no session established".into())
    }
}

async fn serve(limits: Limits) -> SocketAddr {
    let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
        .with_limits(limits);
    let address = server.local_addr().unwrap();
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Up));
    tokio::spawn(server.serve(Arc::new(registry), Arc::new(NotYet), std::future::pending()));
    address
}

/// The answer to a GET on `stream`, up to the server closing it (a connection the
/// server drops unanswered gives nothing, or a reset).
async fn get_on(stream: &mut TcpStream, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    let _ = stream.write_all(request.as_bytes()).await;
    let mut response = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut response)).await;
    assert!(
        read.is_ok(),
        "the connection was neither answered nor closed"
    );
    String::from_utf8_lossy(&response).into_owned()
}

async fn get(address: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    get_on(&mut stream, path).await
}

#[tokio::test]
async fn probes_report_liveness_readiness_and_metrics() {
    let address = serve(Limits::default()).await;
    assert!(get(address, "/healthz").await.starts_with("HTTP/1.1 200"));
    let ready = get(address, "/readyz").await;
    assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
    assert!(
        ready.contains("not ready: no session established"),
        "{ready}"
    );
    let metrics = get(address, "/metrics").await;
    assert!(metrics.contains("text/plain; version=0.0.4"), "{metrics}");
    assert!(metrics.ends_with("tabby_up 1\n"), "{metrics}");
    assert!(get(address, "/other").await.starts_with("HTTP/1.1 404"));
}

/// Before: the endpoint (axum's default server) kept a connection that sent
/// nothing open for ever; enough of them exhaust the daemon's descriptors.
#[tokio::test]
async fn hardening_a_connection_that_sends_no_request_is_closed_after_the_header_timeout() {
    let address = serve(Limits {
        header: Duration::from_millis(200),
        request: Duration::from_secs(60),
        connections: 4,
    })
    .await;
    let mut idle = TcpStream::connect(address).await.unwrap();
    let mut buffer = [0; 64];
    let read = tokio::time::timeout(PATIENCE, idle.read(&mut buffer)).await;
    assert!(read.is_ok(), "the server still holds the idle connection");
}

/// Before: every connection was served, however many were open.
#[tokio::test]
async fn hardening_connections_over_the_limit_are_closed_at_once_and_served_again_later() {
    let address = serve(Limits {
        header: Duration::from_secs(60),
        request: Duration::from_secs(60),
        connections: 2,
    })
    .await;
    let held: Vec<TcpStream> = vec![
        TcpStream::connect(address).await.unwrap(),
        TcpStream::connect(address).await.unwrap(),
    ];
    // The third gets no answer: closed without one.
    let mut third = TcpStream::connect(address).await.unwrap();
    let answer = get_on(&mut third, "/healthz").await;
    assert_eq!(answer, "", "served over the limit");
    // Once the held ones go, the endpoint answers again.
    drop(held);
    tokio::time::timeout(PATIENCE, async {
        loop {
            let mut stream = TcpStream::connect(address).await.unwrap();
            if get_on(&mut stream, "/healthz")
                .await
                .starts_with("HTTP/1.1 200")
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("never served again");
}
