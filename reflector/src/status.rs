//! The BGP status gRPC service (`tabby.bgp.v1.BgpStatus`) over the speaker.

use std::net::IpAddr;

use bgp::speaker::{PeerStatus, Request};
use ipnet::IpNet;
use proto::bgp_status::bgp_status_server::BgpStatus;
use proto::bgp_status::{
    HealthRequest, HealthResponse, ListPeersRequest, ListPeersResponse, ListRoutesRequest,
    ListRoutesResponse, Peer, PeerType, Route,
};
use tokio::sync::{oneshot, watch};
use tonic::{Request as GrpcRequest, Response, Status};

use crate::desired::Origin;
use crate::view::SpeakerView;

#[derive(Debug, Clone)]
pub struct StatusService {
    view: watch::Receiver<SpeakerView>,
}

impl StatusService {
    pub fn new(view: watch::Receiver<SpeakerView>) -> Self {
        Self { view }
    }

    fn view(&self) -> SpeakerView {
        self.view.borrow().clone()
    }
}

fn unavailable() -> Status {
    Status::unavailable("the BGP speaker is not running")
}

#[tonic::async_trait]
impl BgpStatus for StatusService {
    async fn list_peers(
        &self,
        _: GrpcRequest<ListPeersRequest>,
    ) -> Result<Response<ListPeersResponse>, Status> {
        let view = self.view();
        let status = view.status().await.ok_or_else(unavailable)?;
        Ok(Response::new(ListPeersResponse {
            peers: status.iter().map(|s| peer(&view, s)).collect(),
            local_as: view.local_as,
            router_id: view.router_id.to_string(),
        }))
    }

    async fn list_routes(
        &self,
        request: GrpcRequest<ListRoutesRequest>,
    ) -> Result<Response<ListRoutesResponse>, Status> {
        let request = request.into_inner();
        let prefix = parse::<IpNet>("prefix", &request.prefix)?;
        let peer = parse::<IpAddr>("peer", &request.peer)?;
        let (reply, answer) = oneshot::channel();
        self.view()
            .requests
            .send(Request::Routes(reply))
            .map_err(|_| unavailable())?;
        let mut routes = answer.await.map_err(|_| unavailable())?;
        routes.retain_mut(|(at, paths)| {
            if prefix.is_some_and(|p| p.trunc() != *at) {
                return false;
            }
            if peer.is_some() {
                paths.retain(|p| p.source.peer == peer);
            }
            !paths.is_empty()
        });
        routes.sort_by_key(|(prefix, _)| *prefix);
        let limit = match request.limit {
            0 => usize::MAX,
            n => n as usize,
        };
        Ok(Response::new(ListRoutesResponse {
            routes: routes
                .into_iter()
                .take(limit)
                .map(|(prefix, paths)| Route {
                    prefix: prefix.to_string(),
                    paths: paths
                        .iter()
                        .enumerate()
                        .map(|(i, p)| telemetry::speaker_status::route_path(p, i == 0))
                        .collect(),
                })
                .collect(),
        }))
    }

    async fn health(
        &self,
        _: GrpcRequest<HealthRequest>,
    ) -> Result<Response<HealthResponse>, Status> {
        let view = self.view();
        let status = view.status().await;
        Ok(Response::new(HealthResponse {
            ready: status.is_some(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            peers_configured: view.peers.len() as u32,
            peers_established: status
                .as_ref()
                .map_or(0, |s| s.iter().filter(|p| p.established).count() as u32),
            detail: match status {
                Some(_) => String::new(),
                None => "the BGP speaker is not running".to_owned(),
            },
        }))
    }
}

/// An optional filter: empty means none.
fn parse<T: std::str::FromStr>(field: &str, text: &str) -> Result<Option<T>, Status> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| Status::invalid_argument(format!("{field}: {text:?} does not parse")))
}

fn peer(view: &SpeakerView, status: &PeerStatus) -> Peer {
    let (entry, client) = view.describe(status.address);
    let kind = match entry.map(|e| e.origin) {
        Some(Origin::Static) => PeerType::Static,
        Some(Origin::Discovered) => PeerType::Discovered,
        None => PeerType::Dynamic,
    };
    let mut peer = Peer {
        address: status.address.to_string(),
        r#type: kind.into(),
        route_reflector_client: client,
        name: entry.map_or_else(|| status.address.to_string(), |e| e.name.clone()),
        ..Peer::default()
    };
    if let Some(bfd) = view.bfd.borrow().get(&status.address) {
        peer.bfd_state = bfd.state.to_string();
        peer.bfd_flaps = bfd.flaps;
    }
    telemetry::speaker_status::session(status, &mut peer);
    peer
}
