//! The serving helpers with real sockets: a BGP status service over the Unix socket
//! and TCP, and the HTTP probe endpoint.

use std::sync::Arc;

use proto::bgp::bgp_status_client::BgpStatusClient;
use proto::bgp::bgp_status_server::{BgpStatus, BgpStatusServer};
use proto::bgp::{
    HealthRequest, HealthResponse, ListPeersRequest, ListPeersResponse, ListRoutesRequest,
    ListRoutesResponse, Peer, PeerType,
};
use proto::http::{MetricsServer, Probe};
use proto::serve::{Bound, Endpoints};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::service::Routes;
use tonic::{Request, Response, Status};

struct OnePeer;

#[tonic::async_trait]
impl BgpStatus for OnePeer {
    async fn list_peers(
        &self,
        _: Request<ListPeersRequest>,
    ) -> Result<Response<ListPeersResponse>, Status> {
        Ok(Response::new(ListPeersResponse {
            peers: vec![Peer {
                address: "192.0.2.1".into(),
                r#type: PeerType::NodeMesh.into(),
                ..Peer::default()
            }],
            local_as: 64512,
            router_id: "192.0.2.254".into(),
        }))
    }

    async fn list_routes(
        &self,
        _: Request<ListRoutesRequest>,
    ) -> Result<Response<ListRoutesResponse>, Status> {
        Err(Status::unimplemented("no routes here"))
    }

    async fn health(&self, _: Request<HealthRequest>) -> Result<Response<HealthResponse>, Status> {
        Ok(Response::new(HealthResponse {
            ready: true,
            ..HealthResponse::default()
        }))
    }
}

#[tokio::test]
async fn a_service_answers_on_the_unix_socket_and_tcp_and_the_socket_goes_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("run/status.sock");
    let bound = Bound::bind(&Endpoints {
        unix: socket.clone(),
        tcp: Some("127.0.0.1:0".parse().unwrap()),
    })
    .await
    .unwrap();
    let tcp = bound.tcp_address().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        bound.serve(Routes::new(BgpStatusServer::new(OnePeer)), async {
            let _ = stopped.await;
        }),
    );

    let channel = proto::client::connect_unix(&socket).await.unwrap();
    let peers = BgpStatusClient::new(channel)
        .list_peers(ListPeersRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(peers.peers[0].address, "192.0.2.1");
    assert_eq!(peers.peers[0].r#type(), PeerType::NodeMesh);

    let mut over_tcp = BgpStatusClient::connect(format!("http://{tcp}"))
        .await
        .unwrap();
    assert!(
        over_tcp
            .health(HealthRequest {})
            .await
            .unwrap()
            .into_inner()
            .ready
    );

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(!socket.exists(), "the socket file is removed at shutdown");
}

struct NotYet;

#[async_trait::async_trait]
impl Probe for NotYet {
    async fn metrics(&self) -> String {
        "# TYPE tabby_up gauge\ntabby_up 1\n".into()
    }

    async fn ready(&self) -> Result<(), String> {
        Err("no session established".into())
    }
}

async fn get(address: std::net::SocketAddr, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn probes_report_liveness_readiness_and_metrics() {
    let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let address = server.local_addr().unwrap();
    tokio::spawn(server.serve(Arc::new(NotYet), std::future::pending()));
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
}
