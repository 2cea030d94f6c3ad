//! `tabby.bgp.v1.BgpStatus` as the agent answers it: its peers with Calico's
//! kinds (mesh, global, node specific) and its best paths.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bgp::codec::{Attributes, Origin};
use bgp::rib::Path;
use bgp::session::State as FsmState;
use proto::bgp::bgp_status_server::BgpStatus;
use proto::bgp::{
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
                    .map(|(i, p)| route_path(p, i == 0))
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
            detail: super::not_ready(&status).unwrap_or_default(),
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
        ..Peer::default()
    };
    if let Some(status) = &peer.status {
        out.remote_as = status.remote_as.unwrap_or(0);
        out.state = match status.state {
            FsmState::Idle => SessionState::Idle,
            FsmState::Connect => SessionState::Connect,
            FsmState::Active => SessionState::Active,
            FsmState::OpenSent => SessionState::OpenSent,
            FsmState::OpenConfirm => SessionState::OpenConfirm,
            FsmState::Established => SessionState::Established,
        } as i32;
        let age = Instant::now().saturating_duration_since(status.since);
        out.state_seconds = age.as_secs();
        out.since_unix_seconds = SystemTime::now()
            .checked_sub(age)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs() as i64);
        out.prefixes_received = status.prefixes_received;
        out.prefixes_accepted = status.prefixes_accepted as u64;
        out.prefixes_advertised = status.prefixes_advertised as u64;
        out.last_error = status.info.clone().unwrap_or_default();
        out.internal = status.internal;
        out.hostname = status.hostname.clone().unwrap_or_default();
    }
    out
}

/// One path as the API shows it.
pub fn route_path(path: &Path, best: bool) -> RoutePath {
    let attributes: &Attributes = &path.attributes;
    RoutePath {
        peer: path.source.peer.map(|p| p.to_string()).unwrap_or_default(),
        next_hop: path.next_hop.to_string(),
        as_path: attributes
            .as_path
            .iter()
            .flat_map(|p| &p.segments)
            .flat_map(|s| s.asns.iter().copied())
            .collect(),
        local_pref: attributes.local_pref,
        med: attributes.med,
        communities: attributes
            .communities
            .iter()
            .map(|c| format!("{}:{}", c.0 >> 16, c.0 & 0xffff))
            .collect(),
        origin: match attributes.origin {
            Some(Origin::Igp) => "igp",
            Some(Origin::Egp) => "egp",
            Some(Origin::Incomplete) => "incomplete",
            None => "",
        }
        .into(),
        originator_id: attributes
            .originator_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        cluster_list: attributes
            .cluster_list
            .iter()
            .map(ToString::to_string)
            .collect(),
        best,
        stale: path.stale,
    }
}
