//! The BGP sessions this node should have, computed from the datastore (pure):
//!
//! - the node-to-node mesh, when `nodeToNodeMeshEnabled` (the default): every
//!   other node, over each address family both ends have;
//! - `BGPPeer`s that select this node (no `node`/`nodeSelector`: every node), to
//!   `peerIP` or to every node `peerSelector` matches. A `peerSelector` peering is
//!   two-sided, as in Calico: the selected nodes peer back with the selecting ones,
//!   so one resource sets up route reflection;
//! - this node reflects routes when its `Node` has `routeReflectorClusterID`; the
//!   nodes it peers with through `BGPPeer`s that are not in its cluster are its
//!   clients.
//!
//! An explicit `BGPPeer` wins over the mesh for the same address. The speaker
//! listens on every address, or with `bindMode: NodeIP` on the node's BGP
//! addresses only.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use api::resources::{
    AddressFamily, BGPFilter, BGPPeer, BGPPeerSpec, BfdSpec, BgpPassword, BindMode, NextHopMode,
    Node, NodeBgpSpec, SourceAddress,
};
use bgp::rib::NextHopMode as Hop;
use bgp::session::GracefulRestartConfig;
use bgp::speaker::{DEFAULT_MAX_PREFIXES, PeerConfig, PeerGracefulRestart, Policy, SpeakerConfig};
use bgp::transport::TtlPolicy;

use super::filters::{self, Direction};
use super::router_id::RouterId;
use crate::desired::{Cluster, PeerRole};

/// What `node status` calls a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PeerKind {
    /// Node-to-node mesh.
    Mesh,
    /// A `BGPPeer` for every node.
    Global,
    /// A `BGPPeer` for this node by name or node selector.
    NodeSpecific,
}

impl PeerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mesh => "node-to-node mesh",
            Self::Global => "global",
            Self::NodeSpecific => "node specific",
        }
    }

    /// The same as a metric's label value, without spaces.
    pub fn label(self) -> &'static str {
        match self {
            Self::Mesh => "mesh",
            Self::Global => "global",
            Self::NodeSpecific => "node",
        }
    }
}

/// One session to have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peering {
    pub kind: PeerKind,
    /// The `BGPPeer` it comes from, or the peer node's name for the mesh.
    pub source: String,
    /// What the peer is, for the ownership rule.
    pub role: PeerRole,
    pub config: PeerConfig,
    /// BFD beside the session, when configured.
    pub bfd: Option<BfdPeering>,
}

/// A BFD session beside a BGP session (`docs/bfd.md`).
pub use bfd::peers::Peering as BfdPeering;

/// The BGP this node should speak: the speaker's configuration and its sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredBgp {
    pub speaker: SpeakerConfig,
    pub peers: BTreeMap<IpAddr, Peering>,
    /// What was left out, and why.
    pub problems: Vec<String>,
}

impl DesiredBgp {
    /// What each peer is, by address.
    pub fn roles(&self) -> BTreeMap<IpAddr, PeerRole> {
        self.peers.iter().map(|(a, p)| (*a, p.role)).collect()
    }
}

/// Graceful-restart time when the cluster does not set one (BIRD's and Calico's).
pub const DEFAULT_RESTART_TIME: Duration = Duration::from_secs(120);
/// TTL of sessions without GTSM: enough for peers behind routers.
const MULTIHOP_TTL: u8 = 64;

/// Reads a password a `BGPPeer` or the mesh references; errors are reported, not
/// fatal (that session is left out).
pub type Passwords<'a> = dyn Fn(&BgpPassword) -> Result<Vec<u8>, String> + 'a;

/// Why a node cannot speak BGP at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoBgp {
    #[error("node {0:?} has no Node resource")]
    NoNode(String),
    #[error("node {0:?} has no BGP address")]
    NoAddress(String),
    #[error(
        "node {0:?} has no IPv4 BGP address to use as its router id: set one with \
         --router-id (TABBY_ROUTER_ID), an IPv4 address or `hash`"
    )]
    NoRouterId(String),
}

/// The BGP node `me` should speak, or why it cannot speak BGP at all.
pub fn plan(
    cluster: &Cluster,
    me: &str,
    router_id: RouterId,
    restarting: bool,
    passwords: &Passwords<'_>,
) -> Result<DesiredBgp, NoBgp> {
    let node = cluster
        .nodes
        .get(me)
        .ok_or_else(|| NoBgp::NoNode(me.into()))?;
    let bgp = node
        .spec
        .bgp
        .as_ref()
        .ok_or_else(|| NoBgp::NoAddress(me.into()))?;
    let ipv4 = match bgp.ipv4_address.map(|c| c.0.addr()) {
        Some(IpAddr::V4(v4)) => Some(v4),
        _ => None,
    };
    let router_id = router_id
        .of(me, ipv4)
        .ok_or_else(|| NoBgp::NoRouterId(me.into()))?;
    let config = cluster.bgp_configuration(me);
    let cluster_as = config.as_number.map_or(64512, |a| a.0);
    let local_as = node_as(node, cluster_as);
    // Calico's nodeMeshMaxRestartTime is the mesh sessions' alone.
    let mesh_restart_time = config.node_mesh_max_restart_time.map(|d| seconds(d.0));
    let port = config.listen_port.unwrap_or(179);
    let speaker = SpeakerConfig {
        cluster_id: bgp.route_reflector_cluster_id,
        listen: listen(config.bind_mode.unwrap_or_default(), bgp, port),
        graceful_restart: Some(GracefulRestartConfig {
            restart_time: seconds(DEFAULT_RESTART_TIME),
            restarting,
            forwarding_preserved: true,
        }),
        ..SpeakerConfig::new(local_as, router_id)
    };
    let mut plan = DesiredBgp {
        speaker,
        peers: BTreeMap::new(),
        problems: Vec::new(),
    };
    let me_node = Local {
        node,
        cluster,
        cluster_as,
        local_as,
    };
    if config.node_to_node_mesh_enabled.unwrap_or(true) {
        let password = match config.node_mesh_password.as_ref().map(passwords) {
            Some(Ok(key)) => Some(key.into()),
            Some(Err(error)) => {
                plan.problems
                    .push(format!("nodeMeshPassword: {error}: no mesh sessions"));
                return Ok(plan);
            }
            None => None,
        };
        for other in cluster.nodes.values().filter(|n| n.metadata.name != me) {
            for (remote, local) in shared_families(node, other) {
                let role = node_role(other);
                let mut peer = me_node.session(remote, node_as(other, cluster_as), local, role);
                peer.port = cluster
                    .bgp_configuration(&other.metadata.name)
                    .listen_port
                    .unwrap_or(179);
                peer.md5_key.clone_from(&password);
                if let Some(time) = mesh_restart_time {
                    peer.graceful_restart = PeerGracefulRestart::RestartTime(time);
                }
                let bfd = bfd_peering(node, remote, config.bfd.as_ref(), None);
                peer.bfd_strict = strict(bfd.as_ref(), config.bfd.as_ref());
                plan.peers.insert(
                    remote,
                    Peering {
                        kind: PeerKind::Mesh,
                        source: other.metadata.name.clone(),
                        role,
                        config: peer,
                        bfd,
                    },
                );
            }
        }
    }
    for resource in cluster.bgp_peers.values() {
        for peering in bgp_peer(&me_node, resource, passwords, &mut plan.problems) {
            plan.peers.insert(peering.config.address, peering);
        }
    }
    Ok(plan)
}

/// Where the speaker listens: `bindMode: NodeIP` binds the node's BGP addresses;
/// otherwise the wildcard, IPv6's (which takes IPv4 too) on a node with an IPv6
/// address, so that the host needs no IPv6 where BGP does not use it.
fn listen(mode: BindMode, bgp: &NodeBgpSpec, port: u16) -> Vec<SocketAddr> {
    let addresses = AddressFamily::ALL.map(|family| bgp.address(family).map(|c| c.0.addr()));
    match mode {
        BindMode::NodeIp => addresses
            .into_iter()
            .flatten()
            .map(|address| SocketAddr::new(address, port))
            .collect(),
        BindMode::None if addresses[1].is_some() => {
            vec![SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port)]
        }
        BindMode::None => vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)],
    }
}

/// This node, as sessions need it.
struct Local<'a> {
    node: &'a Node,
    cluster: &'a Cluster,
    cluster_as: u32,
    local_as: u32,
}

impl Local<'_> {
    /// A session with the defaults every peering shares, to a peer that is `role`.
    fn session(
        &self,
        remote: IpAddr,
        remote_as: u32,
        local: Option<IpAddr>,
        role: PeerRole,
    ) -> PeerConfig {
        let reflector = role == PeerRole::Reflector;
        PeerConfig {
            local_address: local,
            // One session carries both families (RFC 4760): the other family's
            // routes go with this node's address of that family as next hop.
            other_family_address: own_address(self.node, !remote.is_ipv4()),
            ttl: TtlPolicy::Hops(MULTIHOP_TTL),
            // Import checks happen in the agent's hook (the ownership rule);
            // export is what the agent originates. Explicit, so eBGP sessions work
            // (RFC 8212).
            import: Some(Policy::Accept),
            export: Some(Policy::Accept),
            max_prefixes: Some(DEFAULT_MAX_PREFIXES),
            keep_reflection_attributes: reflector,
            // Every path a reflector has, so a refused best has a fallback.
            add_path_receive: reflector,
            // Towards the cluster, learned routes go only where this node reflects.
            export_learned: role != PeerRole::Router && self.reflector().is_some(),
            ..PeerConfig::new(remote, Some(remote_as))
        }
    }

    fn name(&self) -> &str {
        &self.node.metadata.name
    }

    fn reflector(&self) -> Option<Ipv4Addr> {
        self.node.spec.bgp.as_ref()?.route_reflector_cluster_id
    }
}

/// Where one `BGPPeer` takes this node: an address, its AS, the port, and the
/// node there when it is one.
struct Target<'a> {
    address: IpAddr,
    remote_as: u32,
    port: Option<u16>,
    node: Option<&'a Node>,
}

/// What one `BGPPeer`'s sessions share: the password and the filters it names.
struct Shared<'a> {
    password: Option<bgp::transport::Md5Key>,
    filters: Vec<&'a BGPFilter>,
}

/// The sessions one `BGPPeer` gives this node.
fn bgp_peer(
    me: &Local<'_>,
    resource: &BGPPeer,
    passwords: &Passwords<'_>,
    problems: &mut Vec<String>,
) -> Vec<Peering> {
    let targets = targets(me, &resource.spec);
    if targets.is_empty() {
        return Vec::new();
    }
    let name = &resource.metadata.name;
    let kind = if resource.spec.node.is_some() || resource.spec.node_selector.is_some() {
        PeerKind::NodeSpecific
    } else {
        PeerKind::Global
    };
    let shared = match shared(me.cluster, &resource.spec, passwords) {
        Ok(shared) => shared,
        Err(problem) => {
            problems.push(format!("BGPPeer {name:?}: {problem}: not peering"));
            return Vec::new();
        }
    };
    let mut peerings = Vec::new();
    for target in targets {
        match session(me, &resource.spec, &shared, &target) {
            Ok((role, mut config)) => {
                let spec = resource.spec.bfd.as_ref();
                let bfd = bfd_peering(me.node, target.address, spec, resource.spec.ttl_security);
                config.bfd_strict = strict(bfd.as_ref(), spec);
                peerings.push(Peering {
                    kind,
                    source: name.clone(),
                    role,
                    bfd,
                    config,
                });
            }
            Err(problem) => {
                problems.push(format!("BGPPeer {name:?}: {problem}: not peering"));
                return Vec::new();
            }
        }
    }
    peerings
}

/// Where a `BGPPeer` takes this node: to `peerIP`, or to the nodes `peerSelector`
/// matches, when it selects this node; to the selecting nodes when this node is
/// the one `peerSelector` matches (the other side of the peering).
fn targets<'a>(me: &Local<'a>, spec: &BGPPeerSpec) -> Vec<Target<'a>> {
    let selects = |node: &Node| match (&spec.node, &spec.node_selector) {
        (Some(only), _) => *only == node.metadata.name,
        (None, Some(selector)) => selector.matches(&node.metadata.labels),
        (None, None) => true,
    };
    let others = || {
        me.cluster
            .nodes
            .values()
            .filter(|other| other.metadata.name != me.name())
    };
    let mut targets = Vec::new();
    if selects(me.node) {
        match (&spec.peer_ip, &spec.peer_selector) {
            (Some(address), _) => targets.push(Target {
                address: address.ip,
                remote_as: spec.as_number.map_or(me.cluster_as, |a| a.0),
                port: address.port,
                node: others().find(|n| own_addresses(n).contains(&address.ip)),
            }),
            (None, Some(selector)) => {
                for other in others().filter(|n| selector.matches(&n.metadata.labels)) {
                    add_node_targets(me, other, &mut targets);
                }
            }
            (None, None) => {}
        }
    }
    if let Some(selector) = &spec.peer_selector
        && selector.matches(&me.node.metadata.labels)
    {
        for other in others().filter(|n| selects(n)) {
            add_node_targets(me, other, &mut targets);
        }
    }
    targets
}

/// The password and filters of a `BGPPeer`, or what is wrong with them.
fn shared<'a>(
    cluster: &'a Cluster,
    spec: &BGPPeerSpec,
    passwords: &Passwords<'_>,
) -> Result<Shared<'a>, String> {
    let password = match spec.password.as_ref().map(passwords) {
        Some(Ok(key)) => Some(key.into()),
        Some(Err(error)) => return Err(format!("spec.password: {error}")),
        None => None,
    };
    let mut filters = Vec::new();
    for (i, wanted) in spec.filters.iter().enumerate() {
        let filter = cluster
            .bgp_filters
            .get(wanted)
            .ok_or_else(|| format!("spec.filters[{i}]: no BGPFilter {wanted:?}"))?;
        filters.push(filter);
    }
    Ok(Shared { password, filters })
}

/// One session of a `BGPPeer`, and what its peer is.
fn session(
    me: &Local<'_>,
    spec: &BGPPeerSpec,
    shared: &Shared<'_>,
    target: &Target<'_>,
) -> Result<(PeerRole, PeerConfig), String> {
    // By what the peer is: a node, or an iBGP peer of the cluster's own AS (as
    // the BGPPeer, written by the cluster's operator, says) that is no node.
    let role = match target.node {
        Some(node) => node_role(node),
        None if target.remote_as == me.cluster_as => PeerRole::Reflector,
        None => PeerRole::Router,
    };
    let local = match spec.source_address {
        SourceAddress::UseNodeIP => own_address(me.node, target.address.is_ipv4()),
        SourceAddress::None => None,
    };
    let mut config = me.session(target.address, target.remote_as, local, role);
    config.port = target.port.unwrap_or(179);
    config.md5_key.clone_from(&shared.password);
    if let Some(hops) = spec.ttl_security {
        config.ttl = TtlPolicy::Security { hops };
    }
    config.next_hop = match spec.next_hop_mode {
        NextHopMode::Auto => Hop::Auto,
        NextHopMode::SelfHop => Hop::SelfAlways,
        NextHopMode::Keep => Hop::Unchanged,
    };
    config.allowas_in = spec.num_allowed_local_as_numbers.map_or(0, usize::from);
    config.keepalive = spec.keepalive_time.map(|d| d.0);
    if let Some(time) = spec.max_restart_time {
        config.graceful_restart = PeerGracefulRestart::RestartTime(seconds(time.0));
    }
    if let Some(limit) = spec.max_prefixes {
        // 0: no limit.
        config.max_prefixes = (limit > 0).then_some(limit as usize);
    }
    if role == PeerRole::Router {
        config.export_learned = spec.advertise_learned_routes;
    }
    let external = target.remote_as != me.local_as;
    config.import_filter = filters::compile(&shared.filters, Direction::Import, external)?;
    config.export_filter = filters::compile(&shared.filters, Direction::Export, external)?;
    // A reflector's peers outside its cluster are its clients.
    config.rr_client = me.reflector().is_some()
        && target.node.is_some_and(|other| {
            other
                .spec
                .bgp
                .as_ref()
                .and_then(|b| b.route_reflector_cluster_id)
                != me.reflector()
        });
    Ok((role, config))
}

/// A node is a reflector when it has a cluster id.
fn node_role(node: &Node) -> PeerRole {
    match node
        .spec
        .bgp
        .as_ref()
        .and_then(|b| b.route_reflector_cluster_id)
    {
        Some(_) => PeerRole::Reflector,
        None => PeerRole::Node,
    }
}

fn add_node_targets<'a>(me: &Local<'_>, other: &'a Node, targets: &mut Vec<Target<'a>>) {
    for (remote, _) in shared_families(me.node, other) {
        targets.push(Target {
            address: remote,
            remote_as: node_as(other, me.cluster_as),
            port: None,
            node: Some(other),
        });
    }
}

/// The BFD session beside a session to `remote`, from this node's BGP address of
/// that family: single-hop (RFC 5881) when `remote` is in that address's subnet,
/// multihop (RFC 5883) otherwise, accepting as many router hops as GTSM allows
/// (any number without it, as the BGP session does).
fn bfd_peering(
    me: &Node,
    remote: IpAddr,
    spec: Option<&BfdSpec>,
    ttl_security: Option<u8>,
) -> Option<BfdPeering> {
    let spec = spec?;
    let timers = spec.timers()?;
    let bgp = me.spec.bgp.as_ref()?;
    let family = if remote.is_ipv4() {
        AddressFamily::IPv4
    } else {
        AddressFamily::IPv6
    };
    let subnet = bgp.address(family)?.0;
    let hop = if subnet.contains(&remote) {
        bfd::driver::Hop::Single
    } else {
        let hops = ttl_security.unwrap_or(u8::MAX);
        bfd::driver::Hop::Multi {
            min_ttl: u8::MAX.saturating_sub(hops).saturating_add(1).max(1),
        }
    };
    Some(BfdPeering {
        session: bfd::driver::PeerConfig {
            remote,
            local: subnet.addr(),
            hop,
            timers,
        },
        graceful: spec.graceful_restart_on_down,
    })
}

/// BFD strict mode holds a BGP session only where a BFD session runs beside it.
fn strict(bfd: Option<&BfdPeering>, spec: Option<&BfdSpec>) -> bool {
    bfd.is_some() && spec.is_some_and(|s| s.strict)
}

/// `other`'s addresses in the families both nodes have, with this node's own.
fn shared_families(me: &Node, other: &Node) -> Vec<(IpAddr, Option<IpAddr>)> {
    [true, false]
        .into_iter()
        .filter_map(|ipv4| {
            let remote = own_address(other, ipv4)?;
            let local = own_address(me, ipv4)?;
            Some((remote, Some(local)))
        })
        .collect()
}

/// A node's BGP addresses.
fn own_addresses(node: &Node) -> Vec<IpAddr> {
    [true, false]
        .into_iter()
        .filter_map(|ipv4| own_address(node, ipv4))
        .collect()
}

/// A node's BGP address of one family.
fn own_address(node: &Node, ipv4: bool) -> Option<IpAddr> {
    let bgp = node.spec.bgp.as_ref()?;
    let cidr = if ipv4 {
        bgp.ipv4_address
    } else {
        bgp.ipv6_address
    };
    cidr.map(|c| c.0.addr())
}

/// A restart time as the capability carries it (seconds, at most 65535).
fn seconds(time: Duration) -> u16 {
    u16::try_from(time.as_secs()).unwrap_or(u16::MAX)
}

fn node_as(node: &Node, cluster_as: u32) -> u32 {
    node.spec
        .bgp
        .as_ref()
        .and_then(|b| b.as_number)
        .map_or(cluster_as, |a| a.0)
}

#[cfg(test)]
mod tests;
