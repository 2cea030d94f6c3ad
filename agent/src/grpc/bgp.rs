//! `tabby.bgp.v1.BgpStatus` as the agent answers it: its peers with Calico's
//! kinds (mesh, global, node specific) and its best paths.

use proto::bgp_status::bgp_status_server::BgpStatus;
use proto::bgp_status::{
    HealthRequest, HealthResponse, ListPeersRequest, ListPeersResponse, ListRoutesRequest,
    ListRoutesResponse, Peer, PeerType, Route, RoutePath, SessionState,
};
use tonic::{Request, Response, Status};

use crate::daemon::Handle;
use crate::daemon::query::Peer as AgentPeer;
use crate::peering::PeerKind;

#[derive(Debug, Clone)]
pub struct BgpService {
    pub handle: Handle,
}

#[tonic::async_trait]
impl BgpStatus for BgpService {
    async fn list_peers(
        &self,
        _: Request<ListPeersRequest>,
    ) -> Result<Response<ListPeersResponse>, Status> {
        let peers = self.handle.peers().await;
        Ok(Response::new(ListPeersResponse {
            peers: peers.peers.iter().map(peer).collect(),
            local_as: peers.local_as,
            router_id: peers.router_id.map(|id| id.to_string()).unwrap_or_default(),
        }))
    }

    async fn list_routes(
        &self,
        request: Request<ListRoutesRequest>,
    ) -> Result<Response<ListRoutesResponse>, Status> {
        let request = request.into_inner();
        let prefix =
            match request.prefix.as_str() {
                "" => None,
                text => Some(text.parse().map_err(|_| {
                    Status::invalid_argument(format!("prefix {text:?} is not a CIDR"))
                })?),
            };
        let peer = match request.peer.as_str() {
            "" => None,
            text => Some(text.parse::<std::net::IpAddr>().map_err(|_| {
                Status::invalid_argument(format!("peer {text:?} is not an IP address"))
            })?),
        };
        let limit = match request.limit {
            0 => usize::MAX,
            n => n as usize,
        };
        let routes = self
            .handle
            .routes(prefix)
            .await
            .into_iter()
            .filter_map(|(prefix, paths)| {
                let paths: Vec<RoutePath> = paths
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| peer.is_none() || p.source.peer == peer)
                    .map(|(i, p)| telemetry::speaker_status::route_path(p, i == 0))
                    .collect();
                (!paths.is_empty()).then(|| Route {
                    prefix: prefix.to_string(),
                    paths,
                })
            })
            .take(limit)
            .collect();
        Ok(Response::new(ListRoutesResponse { routes }))
    }

    async fn health(&self, _: Request<HealthRequest>) -> Result<Response<HealthResponse>, Status> {
        let status = self.handle.status.borrow().clone();
        Ok(Response::new(HealthResponse {
            ready: status.ready(),
            version: env!("CARGO_PKG_VERSION").into(),
            peers_configured: status.peers.len() as u32,
            peers_established: status.peers.iter().filter(|p| p.established).count() as u32,
            detail: super::not_ready(&status)
                .map(|why| why.to_string())
                .unwrap_or_default(),
        }))
    }
}

fn peer(peer: &AgentPeer) -> Peer {
    let kind = match peer.kind {
        PeerKind::Mesh => PeerType::NodeMesh,
        PeerKind::Global => PeerType::Global,
        PeerKind::NodeSpecific => PeerType::NodeSpecific,
    };
    let mut out = Peer {
        address: peer.address.to_string(),
        r#type: kind as i32,
        state: SessionState::Down as i32,
        route_reflector_client: peer.rr_client,
        name: peer.source.clone(),
        bfd_state: peer
            .bfd
            .map(|b| format!("{:?}", b.state))
            .unwrap_or_default(),
        bfd_flaps: peer.bfd.map_or(0, |b| b.flaps),
        ..Peer::default()
    };
    if let Some(status) = &peer.status {
        telemetry::speaker_status::session(status, &mut out);
    }
    out
}
