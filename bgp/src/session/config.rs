//! What one session is configured with: the local speaker, the peer, timers, and
//! the capabilities to offer.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::codec::{AddPathMode, Capability, Family, GracefulRestart, Open};

/// RFC 4271 10 suggests 90 seconds; BIRD, FRR and Calico use it too.
pub const DEFAULT_HOLD_TIME: u16 = 90;
/// The hold timer while waiting for the peer's OPEN (RFC 4271 8.2.2: "large", 4 min).
pub const OPEN_HOLD_TIME: Duration = Duration::from_secs(240);

/// One session's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    /// The AS the peer must announce; `None` accepts any (dynamic neighbours whose
    /// range template leaves it open).
    pub remote_as: Option<u32>,
    /// Proposed hold time in seconds: 0 (no keepalives) or at least 3.
    pub hold_time: u16,
    /// Keepalive interval; a third of the negotiated hold time when `None`.
    pub keepalive: Option<Duration>,
    /// The first wait before reconnecting; doubles on each failure up to
    /// `max_connect_retry`, and resets once a session is established.
    pub connect_retry: Duration,
    pub max_connect_retry: Duration,
    /// Never connect; wait for the peer to.
    pub passive: bool,
    pub families: Vec<Family>,
    /// Offer graceful restart with this restart time (seconds), and say whether we
    /// are restarting now (R bit) with forwarding state preserved (F bits).
    pub graceful_restart: Option<GracefulRestartConfig>,
    /// Families in which to send and receive several paths per prefix.
    pub add_path: Vec<(Family, AddPathMode)>,
    /// Announce IPv4 routes with IPv6 next hops (RFC 8950).
    pub extended_next_hop: bool,
    pub hostname: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GracefulRestartConfig {
    pub restart_time: u16,
    pub restarting: bool,
    pub forwarding_preserved: bool,
}

impl SessionConfig {
    /// A session for IPv4 and IPv6 unicast with the default timers: connect retry
    /// from 1 s doubling to 60 s (fast recovery in a cluster, gentle on a dead peer).
    pub fn new(local_as: u32, router_id: Ipv4Addr, remote_as: Option<u32>) -> Self {
        Self {
            local_as,
            router_id,
            remote_as,
            hold_time: DEFAULT_HOLD_TIME,
            keepalive: None,
            connect_retry: Duration::from_secs(1),
            max_connect_retry: Duration::from_secs(60),
            passive: false,
            families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
            graceful_restart: None,
            add_path: Vec::new(),
            extended_next_hop: false,
            hostname: None,
        }
    }

    /// The OPEN this configuration sends.
    pub fn open(&self) -> Open {
        let mut capabilities: Vec<Capability> = self
            .families
            .iter()
            .map(|&family| Capability::Multiprotocol(family))
            .collect();
        capabilities.push(Capability::RouteRefresh);
        capabilities.push(Capability::FourOctetAs(self.local_as));
        if let Some(gr) = self.graceful_restart {
            // Enhanced route refresh (RFC 7313) only beside graceful restart: FRR
            // (8.4 to 10.0 at least, its issue 16126) answers a refresh request
            // of an enhanced peer only after sending End-of-RIB, which it sends
            // only to peers offering graceful restart; without it, the request
            // would wait for ever.
            capabilities.push(Capability::EnhancedRouteRefresh);
            capabilities.push(Capability::GracefulRestart(GracefulRestart {
                restarting: gr.restarting,
                notification: false,
                restart_time: gr.restart_time.min(0x0fff),
                families: self
                    .families
                    .iter()
                    .map(|&family| (family, gr.forwarding_preserved))
                    .collect(),
            }));
        }
        if !self.add_path.is_empty() {
            capabilities.push(Capability::AddPath(self.add_path.clone()));
        }
        if self.extended_next_hop {
            capabilities.push(Capability::ExtendedNextHop(vec![
                crate::codec::ExtendedNextHop {
                    nlri: Family::IPV4_UNICAST,
                    next_hop_afi: Family::IPV6_UNICAST.afi,
                },
            ]));
        }
        if let Some(hostname) = &self.hostname {
            capabilities.push(Capability::Hostname {
                hostname: hostname.clone(),
                domain: String::new(),
            });
        }
        Open::new(self.local_as, self.hold_time, self.router_id, capabilities)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enhanced_route_refresh_is_offered_only_beside_graceful_restart() {
        let plain = SessionConfig::new(64512, Ipv4Addr::new(10, 0, 0, 1), Some(64513));
        let offers = |config: &SessionConfig| {
            config
                .open()
                .capabilities
                .contains(&Capability::EnhancedRouteRefresh)
        };
        assert!(!offers(&plain));
        assert!(
            plain
                .open()
                .capabilities
                .contains(&Capability::RouteRefresh)
        );
        let graceful = SessionConfig {
            graceful_restart: Some(GracefulRestartConfig {
                restart_time: 120,
                restarting: false,
                forwarding_preserved: true,
            }),
            ..plain
        };
        assert!(offers(&graceful));
    }
}
