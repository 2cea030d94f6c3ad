//! The speaker's and each peer's configuration.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

use crate::codec::AddPathMode;
use crate::rib::{Filter, FilterError, NextHopMode};
use crate::session::{GracefulRestartConfig, SessionConfig};
use crate::transport::{Endpoint, Md5Key, TtlPolicy};

/// The speaker as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeakerConfig {
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    /// Reflect routes (RFC 4456) with this cluster id.
    pub cluster_id: Option<Ipv4Addr>,
    pub client_to_client: bool,
    /// Where to accept connections (passive peers and listen ranges); none when
    /// empty. An IPv6 wildcard (`[::]`) also accepts IPv4.
    pub listen: Vec<SocketAddr>,
    /// Accept sessions from any address in these ranges, each with a template.
    pub listen_ranges: Vec<ListenRange>,
    /// Graceful restart offered to every peer.
    pub graceful_restart: Option<GracefulRestartConfig>,
    /// When restarting (RFC 4724 4.1), how long at most best paths are held back
    /// from peers and from the owner while waiting for the peers' End-of-RIB.
    pub selection_deferral: Duration,
    /// Report best-path changes as [`Notice::Best`](super::Notice::Best). An owner
    /// without a FIB (a route reflector) turns it off: a notice per changed prefix
    /// costs a copy of its best paths and a wake-up of the owner.
    pub best_notices: bool,
}

impl SpeakerConfig {
    pub fn new(local_as: u32, router_id: Ipv4Addr) -> Self {
        Self {
            local_as,
            router_id,
            cluster_id: None,
            client_to_client: true,
            listen: Vec::new(),
            listen_ranges: Vec::new(),
            graceful_restart: None,
            selection_deferral: DEFAULT_SELECTION_DEFERRAL,
            best_notices: true,
        }
    }
}

impl SpeakerConfig {
    /// What in a change from `self` to `new` the running speaker cannot take in
    /// place, named by its field; `None` when it can. Such a change needs a new
    /// speaker, and every session restarts with it (AS, identifiers, reflection,
    /// the listener, the graceful restart offered in every OPEN, the owner's
    /// notices). Taken in place: listen ranges ([`Request::SetListenRanges`]), the
    /// selection deferral (it only bounds the start), and whether the speaker
    /// announces itself as restarting (that only matters for the first sessions,
    /// and is no reason to drop them).
    ///
    /// [`Request::SetListenRanges`]: super::Request::SetListenRanges
    pub fn needs_restart(&self, new: &SpeakerConfig) -> Option<&'static str> {
        let offered = |config: &SpeakerConfig| {
            config.graceful_restart.map(|gr| GracefulRestartConfig {
                restarting: false,
                ..gr
            })
        };
        let changes = [
            ("local_as", self.local_as != new.local_as),
            ("router_id", self.router_id != new.router_id),
            ("cluster_id", self.cluster_id != new.cluster_id),
            (
                "client_to_client",
                self.client_to_client != new.client_to_client,
            ),
            ("listen", self.listen != new.listen),
            ("graceful_restart", offered(self) != offered(new)),
            ("best_notices", self.best_notices != new.best_notices),
        ];
        changes
            .into_iter()
            .find_map(|(field, changed)| changed.then_some(field))
    }
}

/// Short on purpose: while it runs, routes learned since the restart are not yet
/// in the FIB or passed on (FRR waits 360 s, BIRD 240 s by default).
pub const DEFAULT_SELECTION_DEFERRAL: Duration = Duration::from_secs(5);
/// The prefix limit tabby's daemons give every session they create unless told
/// otherwise: a 1,000-node cluster with ten blocks per node (IPv4 and IPv6), a
/// path or two per prefix through reflectors and a few thousand borrowed /32s
/// stays far below it; a peer leaking a full Internet table does not.
pub const DEFAULT_MAX_PREFIXES: usize = 100_000;
/// How long a peer that sent too many prefixes waits before it may come back.
pub const DEFAULT_MAX_PREFIXES_RESTART: Duration = Duration::from_secs(60);

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

/// Graceful restart (RFC 4724) towards one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PeerGracefulRestart {
    /// What the speaker offers every peer ([`SpeakerConfig::graceful_restart`]).
    #[default]
    Speaker,
    /// Not offered to this peer.
    Off,
    /// Offered with this restart time (seconds). Whether this speaker is
    /// restarting and keeps forwarding state is the speaker's, not the peer's.
    RestartTime(u16),
}

/// One peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    pub address: IpAddr,
    pub port: u16,
    /// The AS the peer must announce; any when `None` (dynamic neighbours).
    pub remote_as: Option<u32>,
    /// The AS this speaker uses towards this peer instead of its own (OPEN, AS
    /// path, loop check, iBGP or eBGP), as when replacing another router.
    pub local_as: Option<u32>,
    pub local_address: Option<IpAddr>,
    pub md5_key: Option<Md5Key>,
    pub ttl: TtlPolicy,
    pub passive: bool,
    pub rr_client: bool,
    pub next_hop: NextHopMode,
    /// How often our AS may appear in a received path.
    pub allowas_in: usize,
    /// Reset the session (Cease/1, RFC 4486) when the peer sends more prefixes.
    pub max_prefixes: Option<usize>,
    /// How long the peer is then kept away.
    pub max_prefixes_restart: Duration,
    /// Accept several paths per prefix from the peer (ADD-PATH receive, RFC 7911).
    pub add_path_receive: bool,
    /// Send the peer every path of a prefix that passes export, not only the best
    /// (ADD-PATH send, RFC 7911), when it agrees to receive them.
    pub add_path_send: bool,
    /// Offer IPv4 routes with IPv6 next hops (RFC 8950).
    pub extended_next_hop: bool,
    /// This speaker's address of the other family than the session's (IPv6 on an
    /// IPv4 session, or the reverse): the next hop of that family's routes where
    /// the next hop is this speaker, as one session carries both (RFC 4760: a next
    /// hop of the routes' family). Without it IPv6 routes over IPv4 carry the
    /// IPv4-mapped address, which a router must route itself, and IPv4 routes over
    /// IPv6 need extended next hop.
    pub other_family_address: Option<IpAddr>,
    /// The peer may send reflected routes (it is a route reflector, or a client
    /// that reflects for others): its ORIGINATOR_ID and CLUSTER_LIST are kept.
    /// Otherwise they are dropped on import: a speaker that reflects nothing has
    /// no reason to send them, and one that does could pose as another router.
    pub keep_reflection_attributes: bool,
    /// Send the peer routes learned from other peers, not only the ones this
    /// speaker originates.
    pub export_learned: bool,
    pub hold_time: u16,
    pub keepalive: Option<Duration>,
    /// `None`: RFC 8212 — accept and send nothing over eBGP without an explicit
    /// policy; everything over iBGP.
    pub import: Option<Policy>,
    pub export: Option<Policy>,
    /// Operator filters; one given is the explicit policy RFC 8212 asks for, and
    /// decides instead of `import` / `export`.
    pub import_filter: Option<Filter>,
    pub export_filter: Option<Filter>,
    pub graceful_restart: PeerGracefulRestart,
    /// BFD strict mode: the session runs only while the owner says BFD is Up
    /// (`Request::ForwardingUp`); until then nothing connects or is accepted.
    pub bfd_strict: bool,
}

impl PeerConfig {
    pub fn new(address: IpAddr, remote_as: Option<u32>) -> Self {
        Self {
            address,
            port: 179,
            remote_as,
            local_as: None,
            local_address: None,
            md5_key: None,
            ttl: TtlPolicy::Hops(1),
            passive: false,
            rr_client: false,
            next_hop: NextHopMode::Auto,
            allowas_in: 0,
            max_prefixes: None,
            max_prefixes_restart: DEFAULT_MAX_PREFIXES_RESTART,
            add_path_receive: false,
            add_path_send: false,
            extended_next_hop: false,
            other_family_address: None,
            keep_reflection_attributes: true,
            export_learned: true,
            hold_time: crate::session::config::DEFAULT_HOLD_TIME,
            keepalive: None,
            import: None,
            export: None,
            import_filter: None,
            export_filter: None,
            graceful_restart: PeerGracefulRestart::Speaker,
            bfd_strict: false,
        }
    }

    /// Checks the filters (prefix-length ranges, prepend counts); `path` names the
    /// peer in errors, e.g. `peers[2]`.
    pub fn validate(&self, path: &str) -> Result<(), FilterError> {
        for (name, filter) in [
            ("import_filter", &self.import_filter),
            ("export_filter", &self.export_filter),
        ] {
            if let Some(filter) = filter {
                filter.validate(&format!("{path}.{name}"))?;
            }
        }
        Ok(())
    }

    /// The AS of this end of the session.
    pub fn local_as(&self, speaker: &SpeakerConfig) -> u32 {
        self.local_as.unwrap_or(speaker.local_as)
    }

    /// True when a change from `self` to `other` needs a new session (the OPEN or
    /// the connection would differ); policy and limits change in place.
    pub(crate) fn needs_new_session(&self, other: &PeerConfig) -> bool {
        let connection = |c: &PeerConfig| {
            (
                c.address,
                c.port,
                c.local_address,
                c.md5_key.clone(),
                c.ttl,
                c.passive,
                c.bfd_strict,
            )
        };
        let open = |c: &PeerConfig| {
            (
                c.remote_as,
                c.local_as,
                c.hold_time,
                c.keepalive,
                c.add_path_receive,
                c.add_path_send,
                c.extended_next_hop,
                c.rr_client,
                c.graceful_restart,
            )
        };
        connection(self) != connection(other) || open(self) != open(other)
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
        let base = SessionConfig::new(self.local_as(speaker), speaker.router_id, self.remote_as);
        let mode = match (self.add_path_receive, self.add_path_send) {
            (false, false) => None,
            (true, false) => Some(AddPathMode::Receive),
            (false, true) => Some(AddPathMode::Send),
            (true, true) => Some(AddPathMode::Both),
        };
        let add_path = match mode {
            Some(mode) => base.families.iter().map(|&family| (family, mode)).collect(),
            None => Vec::new(),
        };
        SessionConfig {
            hold_time: self.hold_time,
            keepalive: self.keepalive,
            passive: self.passive,
            graceful_restart: self.offered_graceful_restart(speaker),
            add_path,
            extended_next_hop: self.extended_next_hop,
            ..base
        }
    }

    /// The graceful-restart capability this peer is offered.
    fn offered_graceful_restart(&self, speaker: &SpeakerConfig) -> Option<GracefulRestartConfig> {
        match self.graceful_restart {
            PeerGracefulRestart::Speaker => speaker.graceful_restart,
            PeerGracefulRestart::Off => None,
            PeerGracefulRestart::RestartTime(restart_time) => Some(GracefulRestartConfig {
                restart_time,
                ..speaker.graceful_restart.unwrap_or(GracefulRestartConfig {
                    restart_time,
                    restarting: false,
                    forwarding_preserved: false,
                })
            }),
        }
    }

    /// The policy in force for a session that turned out internal or external,
    /// when no filter decides.
    pub(crate) fn effective(policy: Option<Policy>, internal: bool) -> Policy {
        policy.unwrap_or(if internal {
            Policy::Accept
        } else {
            Policy::Reject
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardening_md5_keys_never_appear_in_debug_output() {
        let mut peer = PeerConfig::new(IpAddr::from([192, 0, 2, 1]), Some(65000));
        peer.md5_key = Some(b"s3cret-key".to_vec().into());
        let range = ListenRange {
            prefix: "192.0.2.0/24".parse().unwrap(),
            max_sessions: 1,
            template: peer.clone(),
        };
        for shown in [
            format!("{peer:?}"),
            format!("{range:?}"),
            format!("{:?}", peer.endpoint()),
        ] {
            assert!(!shown.contains("s3cret"), "{shown}");
            // Nor as the bytes' numbers (115 is 's').
            assert!(!shown.contains("115, 51"), "{shown}");
            assert!(shown.contains("redacted"), "{shown}");
        }
    }

    fn base() -> SpeakerConfig {
        SpeakerConfig {
            cluster_id: Some(Ipv4Addr::new(10, 0, 0, 1)),
            listen: vec!["0.0.0.0:179".parse().unwrap()],
            graceful_restart: Some(GracefulRestartConfig {
                restart_time: 120,
                restarting: true,
                forwarding_preserved: true,
            }),
            ..SpeakerConfig::new(64512, Ipv4Addr::new(10, 0, 0, 1))
        }
    }

    #[test]
    fn what_a_change_to_the_speaker_restarts_and_what_it_takes_in_place() {
        let gr = base().graceful_restart.unwrap();
        let range = ListenRange {
            prefix: "10.1.0.0/16".parse().unwrap(),
            max_sessions: 10,
            template: PeerConfig::new("10.1.0.1".parse().unwrap(), None),
        };
        let cases: [(&str, SpeakerConfig, Option<&str>); 11] = [
            ("nothing", base(), None),
            (
                "AS",
                SpeakerConfig {
                    local_as: 64513,
                    ..base()
                },
                Some("local_as"),
            ),
            (
                "router id",
                SpeakerConfig {
                    router_id: Ipv4Addr::new(10, 0, 0, 2),
                    ..base()
                },
                Some("router_id"),
            ),
            (
                "cluster id",
                SpeakerConfig {
                    cluster_id: None,
                    ..base()
                },
                Some("cluster_id"),
            ),
            (
                "client-to-client",
                SpeakerConfig {
                    client_to_client: false,
                    ..base()
                },
                Some("client_to_client"),
            ),
            (
                "listener",
                SpeakerConfig {
                    listen: vec!["0.0.0.0:1790".parse().unwrap()],
                    ..base()
                },
                Some("listen"),
            ),
            (
                "restart time",
                SpeakerConfig {
                    graceful_restart: Some(GracefulRestartConfig {
                        restart_time: 60,
                        ..gr
                    }),
                    ..base()
                },
                Some("graceful_restart"),
            ),
            (
                "owner's notices",
                SpeakerConfig {
                    best_notices: false,
                    ..base()
                },
                Some("best_notices"),
            ),
            (
                "restarting flag",
                SpeakerConfig {
                    graceful_restart: Some(GracefulRestartConfig {
                        restarting: false,
                        ..gr
                    }),
                    ..base()
                },
                None,
            ),
            (
                "listen ranges",
                SpeakerConfig {
                    listen_ranges: vec![range],
                    ..base()
                },
                None,
            ),
            (
                "selection deferral",
                SpeakerConfig {
                    selection_deferral: Duration::from_secs(1),
                    ..base()
                },
                None,
            ),
        ];
        for (what, new, restart) in cases {
            assert_eq!(base().needs_restart(&new), restart, "{what}");
        }
    }
}
