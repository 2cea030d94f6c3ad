//! The BGP status gRPC service (`tabby.bgp.v1.BgpStatus`) over the speaker.

use std::net::IpAddr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bgp::rib::Path;
use bgp::speaker::{PeerStatus, Request};
use ipnet::IpNet;
use proto::bgp::bgp_status_server::BgpStatus;
use proto::bgp::{
    HealthRequest, HealthResponse, ListPeersRequest, ListPeersResponse, ListRoutesRequest,
    ListRoutesResponse, Peer, PeerType, Route, RoutePath, SessionState,
};
use tokio::sync::{oneshot, watch};
use tonic::{Request as GrpcRequest, Response, Status};

use crate::book::Book;
use crate::desired::Origin;

#[derive(Debug, Clone)]
pub struct StatusService {
    book: watch::Receiver<Book>,
}

impl StatusService {
    pub fn new(book: watch::Receiver<Book>) -> Self {
        Self { book }
    }

    fn book(&self) -> Book {
        self.book.borrow().clone()
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
        let book = self.book();
        let status = book.status().await.ok_or_else(unavailable)?;
        Ok(Response::new(ListPeersResponse {
            peers: status.iter().map(|s| peer(&book, s)).collect(),
            local_as: book.local_as,
            router_id: book.router_id.to_string(),
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
        self.book()
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
                        .map(|(i, p)| route_path(p, i == 0))
                        .collect(),
                })
                .collect(),
        }))
    }

    async fn health(
        &self,
        _: GrpcRequest<HealthRequest>,
    ) -> Result<Response<HealthResponse>, Status> {
        let book = self.book();
        let status = book.status().await;
        Ok(Response::new(HealthResponse {
            ready: status.is_some(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            peers_configured: book.peers.len() as u32,
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

fn peer(book: &Book, status: &PeerStatus) -> Peer {
    let (entry, client) = book.describe(status.address);
    let kind = match entry.map(|e| e.origin) {
        Some(Origin::Static) => PeerType::Static,
        Some(Origin::Discovered) => PeerType::Discovered,
        None => PeerType::Dynamic,
    };
    let ago = Instant::now().saturating_duration_since(status.since);
    let since = SystemTime::now()
        .checked_sub(ago)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64);
    let received = status.prefixes_received;
    Peer {
        address: status.address.to_string(),
        remote_as: status.remote_as.unwrap_or(0),
        r#type: kind.into(),
        state: if status.established {
            SessionState::Established
        } else {
            SessionState::Down
        }
        .into(),
        since_unix_seconds: since,
        state_seconds: ago.as_secs(),
        // The speaker counts what its RIB holds; with no import filter every
        // received route is accepted.
        prefixes_received: received,
        prefixes_accepted: received,
        prefixes_advertised: status.prefixes_advertised as u64,
        last_error: status.info.clone().unwrap_or_default(),
        internal: status.internal,
        route_reflector_client: client,
        hostname: status.hostname.clone().unwrap_or_default(),
        name: entry.map_or_else(|| status.address.to_string(), |e| e.name.clone()),
    }
}

fn route_path(path: &Path, best: bool) -> RoutePath {
    let a = &path.attributes;
    RoutePath {
        peer: path.source.peer.map(|p| p.to_string()).unwrap_or_default(),
        next_hop: path.next_hop.to_string(),
        as_path: a
            .as_path
            .iter()
            .flat_map(|p| &p.segments)
            .flat_map(|s| s.asns.iter().copied())
            .collect(),
        local_pref: a.local_pref,
        med: a.med,
        communities: a
            .communities
            .iter()
            .map(|c| format!("{}:{}", c.0 >> 16, c.0 & 0xffff))
            .collect(),
        origin: match a.origin {
            Some(bgp::codec::Origin::Igp) => "igp",
            Some(bgp::codec::Origin::Egp) => "egp",
            Some(bgp::codec::Origin::Incomplete) => "incomplete",
            None => "",
        }
        .to_owned(),
        originator_id: a.originator_id.map(|o| o.to_string()).unwrap_or_default(),
        cluster_list: a.cluster_list.iter().map(|c| c.to_string()).collect(),
        best,
        stale: path.stale,
    }
}
