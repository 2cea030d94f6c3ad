//! The `bgp` crate's speaker state as the BGP status API shows it, for both
//! daemons (the conversions live here so that `proto` stays wire types only).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bgp::codec::Origin;
use bgp::rib::Path;
use bgp::session::State;
use bgp::speaker::PeerStatus;
use proto::bgp_status::{Peer, RoutePath, SessionState};

/// Fills the session fields of `peer` (state, since, counters, last error) from
/// what the speaker says of it; the daemon fills in what it knows (kind, name).
pub fn session(status: &PeerStatus, peer: &mut Peer) {
    peer.remote_as = status.remote_as.unwrap_or(0);
    peer.state = session_state(status.state) as i32;
    let age = Instant::now().saturating_duration_since(status.since);
    peer.state_seconds = age.as_secs();
    peer.since_unix_seconds = SystemTime::now()
        .checked_sub(age)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64);
    peer.prefixes_received = status.prefixes_received;
    peer.prefixes_accepted = status.prefixes_accepted as u64;
    peer.prefixes_advertised = status.prefixes_advertised as u64;
    peer.last_error = status.info.clone().unwrap_or_default();
    peer.internal = status.internal;
    peer.hostname = status.hostname.clone().unwrap_or_default();
}

fn session_state(state: State) -> SessionState {
    match state {
        State::Idle => SessionState::Idle,
        State::Connect => SessionState::Connect,
        State::Active => SessionState::Active,
        State::OpenSent => SessionState::OpenSent,
        State::OpenConfirm => SessionState::OpenConfirm,
        State::Established => SessionState::Established,
    }
}

/// One path of the RIB; `best` for the first of a prefix's paths.
pub fn route_path(path: &Path, best: bool) -> RoutePath {
    let attributes = &path.attributes;
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
