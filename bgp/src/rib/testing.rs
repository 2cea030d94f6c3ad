//! Paths for the RIB's unit tests.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use crate::codec::{AsPath, Attributes, Origin};

use super::path::{Path, Source};

pub const LOCAL_AS: u32 = 64512;

/// A peer at 10.0.0.`n` (router id the same), iBGP when `internal`.
pub fn peer(n: u8, internal: bool, rr_client: bool) -> Arc<Source> {
    Arc::new(Source {
        peer: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))),
        router_id: Ipv4Addr::new(10, 0, 0, n),
        remote_as: if internal {
            LOCAL_AS
        } else {
            65000 + u32::from(n)
        },
        internal,
        rr_client,
    })
}

/// A path from `source` through `as_path`, next hop the peer itself.
pub fn path(source: &Arc<Source>, as_path: &[u32]) -> Path {
    Path {
        next_hop: source.peer.unwrap_or(IpAddr::V4(source.router_id)),
        source: Arc::clone(source),
        attributes: Arc::new(Attributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence(as_path.to_vec())),
            ..Attributes::default()
        }),
        path_id: None,
        stale: false,
        eligible: true,
    }
}
