//! The speaker's and each peer's configuration.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

use crate::rib::NextHopMode;
use crate::session::{GracefulRestartConfig, SessionConfig};
use crate::transport::{Endpoint, TtlPolicy};

/// The speaker as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeakerConfig {
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    /// Reflect routes (RFC 4456) with this cluster id.
    pub cluster_id: Option<Ipv4Addr>,
    pub client_to_client: bool,
    /// Where to accept connections (passive peers and listen ranges); `None` for
    /// none.
    pub listen: Option<SocketAddr>,
    /// Accept sessions from any address in these ranges, each with a template.
    pub listen_ranges: Vec<ListenRange>,
    /// Graceful restart offered to every peer.
    pub graceful_restart: Option<GracefulRestartConfig>,
    /// Report every best-path change as [`Notice::Best`](super::Notice::Best).
    /// Owners without a FIB (a route reflector) turn it off: a notice per prefix
    /// and per change costs a clone of its paths and a wake-up of the owner.
    pub best_notices: bool,
}

impl SpeakerConfig {
    pub fn new(local_as: u32, router_id: Ipv4Addr) -> Self {
        Self {
            local_as,
            router_id,
            cluster_id: None,
            client_to_client: true,
            listen: None,
            listen_ranges: Vec::new(),
            graceful_restart: None,
            best_notices: true,
        }
    }
}

/// Dynamic neighbours: any source inside `prefix` may open a session, up to
/// `max_sessions` at once, configured from `template` (its address is replaced).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenRange {
    pub prefix: IpNet,
    pub max_sessions: usize,
    pub template: PeerConfig,
}

/// Accept or reject everything; operator filters come on top of this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Accept,
    Reject,
}

/// One peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    pub address: IpAddr,
    pub port: u16,
    /// The AS the peer must announce; any when `None` (dynamic neighbours).
    pub remote_as: Option<u32>,
    pub local_address: Option<IpAddr>,
    pub md5_key: Option<Vec<u8>>,
    pub ttl: TtlPolicy,
    pub passive: bool,
    pub rr_client: bool,
    pub next_hop: NextHopMode,
    /// How often our AS may appear in a received path.
    pub allowas_in: usize,
    /// Reset the session (Cease/1, RFC 4486) when the peer sends more prefixes.
    pub max_prefixes: Option<usize>,
    pub hold_time: u16,
    pub keepalive: Option<Duration>,
    /// `None`: RFC 8212 — accept and send nothing over eBGP without an explicit
    /// policy; everything over iBGP.
    pub import: Option<Policy>,
    pub export: Option<Policy>,
    /// Graceful restart offered to this peer, in place of the speaker's.
    pub graceful_restart: Option<GracefulRestartConfig>,
}

impl PeerConfig {
    pub fn new(address: IpAddr, remote_as: Option<u32>) -> Self {
        Self {
            address,
            port: 179,
            remote_as,
            local_address: None,
            md5_key: None,
            ttl: TtlPolicy::Hops(1),
            passive: false,
            rr_client: false,
            next_hop: NextHopMode::Auto,
            allowas_in: 0,
            max_prefixes: None,
            hold_time: crate::session::config::DEFAULT_HOLD_TIME,
            keepalive: None,
            import: None,
            export: None,
            graceful_restart: None,
        }
    }

    pub(crate) fn endpoint(&self) -> Endpoint {
        Endpoint {
            remote: SocketAddr::new(self.address, self.port),
            local: self.local_address,
            md5_key: self.md5_key.clone(),
            ttl: self.ttl,
        }
    }

    pub(crate) fn session(&self, speaker: &SpeakerConfig) -> SessionConfig {
        SessionConfig {
            hold_time: self.hold_time,
            keepalive: self.keepalive,
            passive: self.passive,
            graceful_restart: self.graceful_restart.or(speaker.graceful_restart),
            ..SessionConfig::new(speaker.local_as, speaker.router_id, self.remote_as)
        }
    }

    /// The policy in force for a session that turned out internal or external.
    pub(crate) fn effective(policy: Option<Policy>, internal: bool) -> Policy {
        policy.unwrap_or(if internal {
            Policy::Accept
        } else {
            Policy::Reject
        })
    }
}
