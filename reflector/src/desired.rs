//! The speaker the configuration asks for: the speaker-wide settings, every peer
//! (static ones from the file, discovered ones from the datastore) and the listen
//! ranges, as `bgp::speaker` types. Reloads compare two of these (see [`crate::changes`]).
//!
//! Every session has a prefix limit; clients are sent every path (ADD-PATH), so
//! one that refuses the best (by the ownership rule) falls back to the next; a
//! discovered node that is no reflector may not send ORIGINATOR_ID or
//! CLUSTER_LIST (it could pose as another node), so the reflector sets them.
//! A peer runs BFD beside its session as its own `bfd` block or the file's says
//! (dynamic peers run none).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bgp::session::GracefulRestartConfig;
use bgp::speaker::{
    DEFAULT_MAX_PREFIXES, ListenRange, PeerConfig, PeerGracefulRestart, SpeakerConfig,
};
use bgp::transport::TtlPolicy;
use ipam::ownership::PeerRole;

use crate::config::{self, Config, ConfigError, Session};
use crate::discovery::Discovered;

/// The speaker, its peers and its listen ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// Speaker-wide settings (listen ranges included).
    pub speaker: SpeakerConfig,
    pub peers: BTreeMap<IpAddr, DesiredPeer>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredPeer {
    pub config: PeerConfig,
    pub origin: Origin,
    pub name: String,
    /// BFD beside the session, when configured.
    pub bfd: Option<PeerBfd>,
}

/// A peer's BFD session as configured; its addresses and hop mode come from the
/// reflector's interfaces when it starts (`bfd::peers::Peering::towards`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerBfd {
    pub timers: bfd::Timers,
    /// Graceful restart wins over a BFD Down (`gracefulRestartOnDown`).
    pub graceful: bool,
    /// The session waits for BFD Up (`strict`, the speaker's `bfd_strict`).
    pub strict: bool,
}

impl PeerBfd {
    fn from_spec(spec: Option<&api::resources::BfdSpec>) -> Option<Self> {
        let spec = spec?;
        Some(Self {
            timers: spec.timers()?,
            graceful: spec.graceful_restart_on_down,
            strict: spec.strict,
        })
    }
}

/// Where a peer comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `peers` in the file.
    Static,
    /// A `Node` in the datastore.
    Discovered,
}

impl Desired {
    /// What `config` and the datastore's `discovered` view ask for. Password files
    /// are read here, so a missing one fails the whole (re)load.
    pub fn new(config: &Config, discovered: &Discovered) -> Result<Self, ConfigError> {
        let local_as = discovered.as_number.or(config.as_number).ok_or_else(|| {
            ConfigError::invalid("asNumber", "", "is not in the file nor the datastore")
        })?;
        let written = config.cluster_id.as_ref().map(|c| c.parse()).transpose();
        let written = written
            .map_err(|e| ConfigError::invalid("clusterId", e.text(), "is not a cluster id"))?;
        let cluster_id = discovered.cluster_id.or(written);
        let global_gr = config.graceful_restart;
        let mut peers = BTreeMap::new();
        for (i, peer) in config.peers.iter().enumerate() {
            let path = format!("peers[{i}]");
            let mut peer_config = PeerConfig::new(peer.address, Some(peer.as_number));
            apply_session(&mut peer_config, (&path, &peer.session()), config, local_as)?;
            let bfd = PeerBfd::from_spec(peer.bfd.as_ref().or(config.bfd.as_ref()));
            peer_config.bfd_strict = bfd.is_some_and(|b| b.strict);
            peers.insert(
                peer.address,
                DesiredPeer {
                    config: peer_config,
                    origin: Origin::Static,
                    name: peer
                        .name
                        .clone()
                        .unwrap_or_else(|| peer.address.to_string()),
                    bfd,
                },
            );
        }
        for (address, node) in &discovered.peers {
            if peers.contains_key(address) {
                continue;
            }
            let asn = node.as_number.unwrap_or(local_as);
            let mut peer_config = PeerConfig::new(*address, Some(asn));
            let session = Session {
                route_reflector_client: node.client,
                ..default_session()
            };
            apply_session(&mut peer_config, ("datastore", &session), config, local_as)?;
            peer_config.keep_reflection_attributes = !node.client;
            let bfd = PeerBfd::from_spec(config.bfd.as_ref());
            peer_config.bfd_strict = bfd.is_some_and(|b| b.strict);
            peers.insert(
                *address,
                DesiredPeer {
                    config: peer_config,
                    origin: Origin::Discovered,
                    name: node.name.clone(),
                    bfd,
                },
            );
        }
        let mut listen_ranges = Vec::new();
        for (i, range) in config.listen_ranges.iter().enumerate() {
            let path = format!("listenRanges[{i}]");
            let mut template = PeerConfig::new(range.prefix.network(), range.as_number);
            apply_session(&mut template, (&path, &range.session()), config, local_as)?;
            template.passive = true;
            listen_ranges.push(ListenRange {
                prefix: range.prefix,
                max_sessions: range.max_sessions,
                template,
            });
        }
        let offered = peers
            .values()
            .map(|p| &p.config)
            .chain(listen_ranges.iter().map(|r| &r.template))
            .any(|p| p.graceful_restart != PeerGracefulRestart::Off);
        let speaker = SpeakerConfig {
            cluster_id: Some(cluster_id.map_or(config.router_id, |c| c.0.into())),
            listen: vec![SocketAddr::new(config.listen.address, config.listen.port)],
            listen_ranges,
            graceful_restart: offered.then(|| GracefulRestartConfig {
                restart_time: global_gr.map_or(DEFAULT_RESTART_TIME, |gr| gr.restart_time),
                // A start may be a restart: clients may hold our routes as stale.
                // Restarting, the speaker sends nothing until every configured
                // client sent End-of-RIB (or the deferral ends), so that the
                // first client back does not sweep the routes of the others.
                restarting: true,
                // A reflector forwards nothing itself, so its "forwarding state"
                // survives any restart: clients keep using the reflected routes
                // (RFC 4724 4.2).
                forwarding_preserved: true,
            }),
            // A reflector programs no FIB.
            best_notices: false,
            ..SpeakerConfig::new(local_as, config.router_id)
        };
        Ok(Self { speaker, peers })
    }

    /// What each known peer is, for the ownership rule: the datastore's nodes
    /// (every one, dynamic peers included) by their Node, the other configured
    /// peers by their configured AS (iBGP: a reflector; eBGP: a router).
    pub fn roles(&self, discovered: &Discovered) -> BTreeMap<IpAddr, PeerRole> {
        let nodes = discovered.peers.iter().map(|(address, node)| {
            let role = if node.client {
                PeerRole::Node
            } else {
                PeerRole::Reflector
            };
            (*address, role)
        });
        let configured = self
            .peers
            .iter()
            .filter(|(address, _)| !discovered.peers.contains_key(address))
            .map(|(address, peer)| {
                let role = if peer.config.remote_as == Some(self.speaker.local_as) {
                    PeerRole::Reflector
                } else {
                    PeerRole::Router
                };
                (*address, role)
            });
        nodes.chain(configured).collect()
    }
}

fn default_session() -> Session {
    Session {
        route_reflector_client: true,
        password: None,
        password_file: None,
        passive: false,
        hold_time: None,
        keepalive_time: None,
        graceful_restart: None,
        import_filter: None,
        export_filter: None,
        max_prefixes: None,
    }
}

/// Fills in how the session runs, for a speaker of `local_as`.
fn apply_session(
    peer: &mut PeerConfig,
    (path, session): (&str, &Session),
    config: &Config,
    local_as: u32,
) -> Result<(), ConfigError> {
    let global_gr = config.graceful_restart;
    // Validation checked that the names exist.
    let filter = |name: &Option<String>| name.as_ref().and_then(|n| config.filters.get(n)).cloned();
    peer.import_filter = filter(&session.import_filter);
    peer.export_filter = filter(&session.export_filter);
    peer.rr_client = session.route_reflector_client;
    peer.add_path_send = session.route_reflector_client;
    peer.max_prefixes = match session.max_prefixes {
        None => Some(DEFAULT_MAX_PREFIXES),
        Some(0) => None,
        Some(limit) => Some(limit as usize),
    };
    peer.passive = session.passive;
    peer.md5_key = match (&session.password, &session.password_file) {
        (Some(password), _) => Some(password.0.as_bytes().to_vec().into()),
        (None, Some(file)) => {
            Some(config::read_password(&format!("{path}.passwordFile"), file)?.into())
        }
        (None, None) => None,
    };
    if let Some(hold) = session.hold_time {
        peer.hold_time = hold;
    }
    peer.keepalive = session
        .keepalive_time
        .map(|k| Duration::from_secs(k.into()));
    // iBGP peers may be several hops away (nodes in other subnets).
    let internal = peer.remote_as.is_none_or(|asn| asn == local_as);
    peer.ttl = TtlPolicy::Hops(if internal { 255 } else { 1 });
    let restart_time = match session.graceful_restart {
        Some(config::PeerGracefulRestart::Enabled(false)) => None,
        Some(config::PeerGracefulRestart::With(gr)) => Some(gr.restart_time),
        Some(config::PeerGracefulRestart::Enabled(true)) => {
            Some(global_gr.map_or(DEFAULT_RESTART_TIME, |gr| gr.restart_time))
        }
        None => global_gr.map(|gr| gr.restart_time),
    };
    peer.graceful_restart =
        restart_time.map_or(PeerGracefulRestart::Off, PeerGracefulRestart::RestartTime);
    Ok(())
}

/// `gracefulRestart: true` on a peer without a global restart time.
const DEFAULT_RESTART_TIME: u16 = 120;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn desired(yaml: &str) -> Desired {
        Desired::new(&parse(yaml, false).unwrap(), &Discovered::default()).unwrap()
    }

    const CONFIG: &str = "asNumber: 64512\nrouterId: 10.0.0.1\npeers:\n\
        - {address: 10.0.0.2, asNumber: 64512}\n\
        - {address: 10.0.0.3, asNumber: 64512, routeReflectorClient: false}\n\
        listenRanges:\n- {prefix: 10.1.0.0/16, maxSessions: 10}\n";

    #[test]
    fn bfd_runs_with_every_static_and_discovered_peer_as_its_own_block_or_the_files_says() {
        let yaml = "asNumber: 64512\nrouterId: 10.0.0.1\n\
            bfd: {enabled: true, minTx: 50ms, minRx: 50ms, multiplier: 3}\npeers:\n\
            - {address: 10.0.0.2, asNumber: 64512}\n\
            - {address: 10.0.0.3, asNumber: 64512, bfd: {enabled: false, strict: true}}\n\
            - {address: 10.0.0.4, asNumber: 64512, bfd: {enabled: true, gracefulRestartOnDown: true, strict: true}}\n";
        let node = crate::discovery::DiscoveredPeer {
            name: "n5".into(),
            as_number: None,
            client: true,
        };
        let discovered = Discovered {
            peers: [("10.0.0.5".parse().unwrap(), node)].into(),
            ..Discovered::default()
        };
        let desired = Desired::new(&parse(yaml, true).unwrap(), &discovered).unwrap();
        let bfd = |peer: &str| desired.peers[&peer.parse::<IpAddr>().unwrap()].bfd;
        let fast =
            bfd::Timers::new(Duration::from_millis(50), Duration::from_millis(50), 3).unwrap();
        let file = Some(PeerBfd {
            timers: fast,
            graceful: false,
            strict: false,
        });
        assert_eq!(bfd("10.0.0.2"), file, "the file's block");
        assert_eq!(bfd("10.0.0.3"), None, "its own block turns it off");
        let own = Some(PeerBfd {
            timers: bfd::Timers::default(),
            graceful: true,
            strict: true,
        });
        assert_eq!(bfd("10.0.0.4"), own, "its own block, defaults filled in");
        let strict = |peer: &str| {
            desired.peers[&peer.parse::<IpAddr>().unwrap()]
                .config
                .bfd_strict
        };
        assert!(strict("10.0.0.4"), "the speaker holds it until BFD is Up");
        assert!(!strict("10.0.0.3"), "no BFD, nothing to wait for");
        assert!(!strict("10.0.0.2"));
        assert_eq!(bfd("10.0.0.5"), file, "a node from the datastore");
        assert_eq!(
            self::desired(CONFIG).peers.values().find_map(|p| p.bfd),
            None
        );
    }

    #[test]
    fn hardening_clients_are_sent_every_path_so_they_can_fall_back() {
        let desired = desired(CONFIG);
        let client = &desired.peers[&"10.0.0.2".parse::<IpAddr>().unwrap()].config;
        assert!(client.add_path_send);
        assert!(desired.speaker.listen_ranges[0].template.add_path_send);
    }

    #[test]
    fn hardening_every_session_has_a_default_prefix_limit() {
        let desired = desired(CONFIG);
        let limits: Vec<Option<usize>> = desired
            .peers
            .values()
            .map(|p| p.config.max_prefixes)
            .chain(
                desired
                    .speaker
                    .listen_ranges
                    .iter()
                    .map(|r| r.template.max_prefixes),
            )
            .collect();
        let default = Some(bgp::speaker::DEFAULT_MAX_PREFIXES);
        assert_eq!(limits, [default, default, default]);
    }
}
