//! The serving helpers with real sockets: a BGP status service over the Unix socket
//! and TCP, and the socket's permissions.

use proto::bgp_status::bgp_status_client::BgpStatusClient;
use proto::bgp_status::bgp_status_server::{BgpStatus, BgpStatusServer};
use proto::bgp_status::{
    HealthRequest, HealthResponse, ListPeersRequest, ListPeersResponse, ListRoutesRequest,
    ListRoutesResponse, Peer, PeerType,
};
use proto::serve::{Bound, Endpoints};
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

/// The socket grants nobody but its owner (root) anything, whatever the process's
/// umask: the status API tells routes and peers to whoever can connect. Before:
/// the socket was created with the umask's mode (0755 with 022, 0777 with 0).
#[tokio::test]
async fn hardening_the_grpc_socket_is_created_owner_only_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;

    use nix::sys::stat::{Mode, umask};

    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("status.sock");
    // nextest runs each test in its own process; put the umask back anyway.
    let before = umask(Mode::empty());
    let bound = Bound::bind(&Endpoints {
        unix: socket.clone(),
        tcp: None,
    })
    .await;
    umask(before);
    let _bound = bound.unwrap();
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
    // Still usable by its owner.
    assert!(std::os::unix::net::UnixStream::connect(&socket).is_ok());
}
