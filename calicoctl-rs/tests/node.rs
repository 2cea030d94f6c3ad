//! `node status` and `node routes` against a status service on a real Unix socket.
//! The service is a stand-in answering with fixed peers and routes (the real
//! tabby-agent serves the same `proto` API); what is tested is the CLI's side: the
//! transport, the tables, and the exit codes.

mod support;

use std::path::PathBuf;

use proto::bgp_status::bgp_status_server::{BgpStatus, BgpStatusServer};
use proto::bgp_status::{
    HealthRequest, HealthResponse, ListPeersRequest, ListPeersResponse, ListRoutesRequest,
    ListRoutesResponse, Peer, PeerType, Route, RoutePath, SessionState,
};
use proto::serve::{Bound, Endpoints};
use support::{Shell, golden};
use tonic::service::Routes;
use tonic::{Request, Response, Status};

/// 2024-03-02 10:11:12 UTC: old enough to print as a date.
const LONG_AGO: i64 = 1_709_374_272;

struct Agent {
    all_up: bool,
}

fn peer(address: &str, kind: PeerType, state: SessionState, error: &str) -> Peer {
    Peer {
        address: address.into(),
        remote_as: 64512,
        r#type: kind.into(),
        state: state.into(),
        since_unix_seconds: LONG_AGO,
        last_error: error.into(),
        ..Peer::default()
    }
}

#[tonic::async_trait]
impl BgpStatus for Agent {
    async fn list_peers(
        &self,
        _: Request<ListPeersRequest>,
    ) -> Result<Response<ListPeersResponse>, Status> {
        let mut peers = vec![
            peer(
                "10.0.0.12",
                PeerType::NodeMesh,
                SessionState::Established,
                "",
            ),
            peer(
                "fd00::1",
                PeerType::NodeSpecific,
                SessionState::Established,
                "",
            ),
        ];
        if !self.all_up {
            peers.insert(
                1,
                peer(
                    "10.0.0.1",
                    PeerType::Global,
                    SessionState::Active,
                    "Socket: Connection refused",
                ),
            );
        }
        Ok(Response::new(ListPeersResponse {
            peers,
            local_as: 64512,
            router_id: "10.0.0.11".into(),
        }))
    }

    async fn list_routes(
        &self,
        request: Request<ListRoutesRequest>,
    ) -> Result<Response<ListRoutesResponse>, Status> {
        let path = |peer: &str, best: bool, as_path: Vec<u32>| RoutePath {
            peer: peer.into(),
            next_hop: if peer.is_empty() {
                "10.0.0.11".into()
            } else {
                peer.into()
            },
            as_path,
            local_pref: Some(100),
            origin: "IGP".into(),
            communities: vec!["64512:100".into()],
            best,
            ..RoutePath::default()
        };
        let routes = vec![
            Route {
                prefix: "192.168.1.0/26".into(),
                paths: vec![path("", true, vec![])],
            },
            Route {
                prefix: "192.168.2.0/26".into(),
                paths: vec![
                    path("10.0.0.12", true, vec![]),
                    path("10.0.0.1", false, vec![65001]),
                ],
            },
        ];
        let wanted = request.into_inner().prefix;
        let routes = routes
            .into_iter()
            .filter(|r| wanted.is_empty() || r.prefix == wanted)
            .collect();
        Ok(Response::new(ListRoutesResponse { routes }))
    }

    async fn health(&self, _: Request<HealthRequest>) -> Result<Response<HealthResponse>, Status> {
        let configured = if self.all_up { 2 } else { 3 };
        Ok(Response::new(HealthResponse {
            ready: self.all_up,
            version: "0.1.0".into(),
            peers_configured: configured,
            peers_established: 2,
            detail: if self.all_up {
                String::new()
            } else {
                "1 peer is not established".into()
            },
        }))
    }
}

/// Serves `agent` on a socket in a temporary directory until dropped.
struct Served {
    socket: PathBuf,
    _dir: tempfile::TempDir,
    _runtime: tokio::runtime::Runtime,
}

fn serve(agent: Agent) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let endpoints = Endpoints {
        unix: socket.clone(),
        tcp: None,
    };
    let bound = runtime.block_on(Bound::bind(&endpoints)).unwrap();
    runtime.spawn(bound.serve(
        Routes::new(BgpStatusServer::new(agent)),
        std::future::pending(),
    ));
    Served {
        socket,
        _dir: dir,
        _runtime: runtime,
    }
}

#[test]
fn node_status_prints_peers_by_family_and_exits_zero_when_all_are_up() {
    let served = serve(Agent { all_up: true });
    let socket = served.socket.to_str().unwrap();
    let output = Shell::new().run(&["node", "status", "--socket", socket]);
    assert_eq!(output.code, 0, "{output:?}");
    golden("node-status-up.txt", &output.stdout);
}

#[test]
fn node_status_exits_one_when_a_peer_is_down() {
    let served = serve(Agent { all_up: false });
    let socket = served.socket.to_str().unwrap();
    let output = Shell::new().run(&["node", "status", "--socket", socket]);
    assert_eq!(output.code, 1, "{output:?}");
    golden("node-status-down.txt", &output.stdout);
}

#[test]
fn node_routes_lists_every_path_with_the_best_marked() {
    let served = serve(Agent { all_up: true });
    let socket = served.socket.to_str().unwrap();
    let shell = Shell::new();
    golden(
        "node-routes.txt",
        &shell.run(&["node", "routes", "--socket", socket]).ok(),
    );
    golden(
        "node-routes-wide.txt",
        &shell
            .run(&[
                "node",
                "routes",
                "--socket",
                socket,
                "-o",
                "wide",
                "--prefix",
                "192.168.2.0/26",
            ])
            .ok(),
    );
}

#[test]
fn a_missing_agent_socket_is_one_line_saying_what_to_check() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("nothing-here.sock");
    let error = Shell::new()
        .run(&["node", "status", "--socket", socket.to_str().unwrap()])
        .failed(1);
    assert!(error.contains("No such file or directory"), "{error}");
    assert!(
        error.contains("is tabby-agent running on this node?"),
        "{error}"
    );
}
