//! Checking the peer's OPEN (RFC 4271 6.2) and what the two OPENs agree on.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::codec::{Capability, Family, GracefulRestart, Notification, Open, SessionContext};

use crate::codec::iana::error::{BAD_BGP_IDENTIFIER, BAD_PEER_AS, UNACCEPTABLE_HOLD_TIME};

use super::config::SessionConfig;

/// What the two ends agreed on, for the rest of the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// What the codec needs to read and write this session's messages.
    pub context: SessionContext,
    pub remote_as: u32,
    pub remote_id: Ipv4Addr,
    /// Zero means no hold timer and no keepalives.
    pub hold_time: Duration,
    pub keepalive: Duration,
    /// Families both announced (IPv4 unicast when neither sent multiprotocol).
    pub families: Vec<Family>,
    pub route_refresh: bool,
    pub enhanced_route_refresh: bool,
    /// The peer's graceful restart capability, if it sent one.
    pub peer_graceful_restart: Option<GracefulRestart>,
    /// The peer's hostname capability (FRR, GoBGP), for status output.
    pub peer_hostname: Option<String>,
}

impl Negotiated {
    /// True for an iBGP session.
    pub fn internal(&self, local_as: u32) -> bool {
        self.remote_as == local_as
    }
}

/// Checks `remote` against the configuration and what we sent; the NOTIFICATION to
/// send when it is unacceptable.
pub fn negotiate(
    config: &SessionConfig,
    local: &Open,
    remote: &Open,
) -> Result<Negotiated, Notification> {
    let open_error = Notification::open_error;
    let remote_as = remote.asn();
    if config.remote_as.is_some_and(|want| want != remote_as) {
        // RFC 4271 6.2 leaves the data empty; the AS is in the log line instead.
        return Err(open_error(BAD_PEER_AS, Vec::new()));
    }
    // RFC 6286: zero is never valid; within one AS the identifiers must differ.
    if remote.bgp_id.is_unspecified()
        || (remote_as == config.local_as && remote.bgp_id == config.router_id)
    {
        return Err(open_error(
            BAD_BGP_IDENTIFIER,
            remote.bgp_id.octets().to_vec(),
        ));
    }
    if remote.hold_time == 1 || remote.hold_time == 2 {
        return Err(open_error(
            UNACCEPTABLE_HOLD_TIME,
            remote.hold_time.to_be_bytes().to_vec(),
        ));
    }
    let hold = local.hold_time.min(remote.hold_time);
    let hold_time = Duration::from_secs(hold.into());
    let keepalive = match config.keepalive {
        _ if hold == 0 => Duration::ZERO,
        Some(keepalive) => keepalive.min(hold_time / 3).max(Duration::from_secs(1)),
        None => hold_time / 3,
    };
    let has = |open: &Open, want: &Capability| open.capabilities.contains(want);
    let both = |want: Capability| has(local, &want) && has(remote, &want);
    Ok(Negotiated {
        context: SessionContext::negotiate(local, remote),
        remote_as,
        remote_id: remote.bgp_id,
        hold_time,
        keepalive,
        families: common_families(local, remote),
        route_refresh: both(Capability::RouteRefresh),
        enhanced_route_refresh: both(Capability::EnhancedRouteRefresh),
        peer_graceful_restart: remote.capabilities.iter().find_map(|c| match c {
            Capability::GracefulRestart(gr) => Some(gr.clone()),
            _ => None,
        }),
        peer_hostname: remote.capabilities.iter().find_map(|c| match c {
            Capability::Hostname { hostname, .. } => Some(hostname.clone()),
            _ => None,
        }),
    })
}

/// Families announced by both; a speaker without multiprotocol capabilities speaks
/// IPv4 unicast only (RFC 4760 8).
fn common_families(local: &Open, remote: &Open) -> Vec<Family> {
    let families = |open: &Open| {
        let announced: Vec<Family> = open
            .capabilities
            .iter()
            .filter_map(|c| match c {
                Capability::Multiprotocol(family) => Some(*family),
                _ => None,
            })
            .collect();
        if announced.is_empty() {
            vec![Family::IPV4_UNICAST]
        } else {
            announced
        }
    };
    let theirs = families(remote);
    families(local)
        .into_iter()
        .filter(|family| theirs.contains(family))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const REMOTE_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    fn config(remote_as: Option<u32>) -> SessionConfig {
        SessionConfig::new(64512, LOCAL_ID, remote_as)
    }

    fn remote(asn: u32, hold: u16, capabilities: Vec<Capability>) -> Open {
        let mut capabilities = capabilities;
        capabilities.push(Capability::FourOctetAs(asn));
        Open::new(asn, hold, REMOTE_ID, capabilities)
    }

    #[test]
    fn the_smaller_hold_time_wins_and_keepalive_is_a_third_of_it() {
        let config = config(Some(64513));
        let got = negotiate(&config, &config.open(), &remote(64513, 30, vec![])).unwrap();
        assert_eq!(got.hold_time, Duration::from_secs(30));
        assert_eq!(got.keepalive, Duration::from_secs(10));
        assert!(!got.internal(64512));
    }

    #[test]
    fn a_zero_hold_time_means_no_keepalives() {
        let config = config(Some(64513));
        let got = negotiate(&config, &config.open(), &remote(64513, 0, vec![])).unwrap();
        assert_eq!(got.hold_time, Duration::ZERO);
        assert_eq!(got.keepalive, Duration::ZERO);
    }

    #[test]
    fn hold_times_of_one_or_two_seconds_are_refused_with_the_value() {
        let config = config(None);
        for hold in [1, 2] {
            let err = negotiate(&config, &config.open(), &remote(64513, hold, vec![])).unwrap_err();
            assert_eq!((err.code, err.subcode), (2, 6));
            assert_eq!(err.data, hold.to_be_bytes());
        }
    }

    #[test]
    fn a_peer_announcing_another_as_is_refused() {
        let config = config(Some(64513));
        let err = negotiate(&config, &config.open(), &remote(65000, 90, vec![])).unwrap_err();
        assert_eq!((err.code, err.subcode), (2, 2));
    }

    #[test]
    fn an_open_remote_as_accepts_any_and_reports_it() {
        let config = config(None);
        let got = negotiate(&config, &config.open(), &remote(4_200_000_000, 90, vec![])).unwrap();
        assert_eq!(got.remote_as, 4_200_000_000);
        assert!(got.context.four_octet_as);
    }

    #[test]
    fn an_internal_peer_with_our_identifier_is_refused() {
        let config = config(Some(64512));
        let mut open = remote(64512, 90, vec![]);
        open.bgp_id = LOCAL_ID;
        let err = negotiate(&config, &config.open(), &open).unwrap_err();
        assert_eq!((err.code, err.subcode), (2, 3));
        assert_eq!(err.data, LOCAL_ID.octets());
    }

    #[test]
    fn families_are_those_both_announce_and_ipv4_without_multiprotocol() {
        let config = config(None);
        let v6_only = remote(
            64513,
            90,
            vec![Capability::Multiprotocol(Family::IPV6_UNICAST)],
        );
        let got = negotiate(&config, &config.open(), &v6_only).unwrap();
        assert_eq!(got.families, [Family::IPV6_UNICAST]);
        let legacy = remote(64513, 90, vec![]);
        let got = negotiate(&config, &config.open(), &legacy).unwrap();
        assert_eq!(got.families, [Family::IPV4_UNICAST]);
    }

    #[test]
    fn route_refresh_counts_only_when_both_announce_it() {
        let config = config(None);
        let got = negotiate(&config, &config.open(), &remote(1, 90, vec![])).unwrap();
        assert!(!got.route_refresh);
        let refresh = remote(1, 90, vec![Capability::RouteRefresh]);
        assert!(
            negotiate(&config, &config.open(), &refresh)
                .unwrap()
                .route_refresh
        );
    }
}
