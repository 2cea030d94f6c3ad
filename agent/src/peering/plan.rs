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
//! An explicit `BGPPeer` wins over the mesh for the same address.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use api::resources::{BGPPeer, BgpPassword, NextHopMode, Node, SourceAddress};
use bgp::rib::NextHopMode as Hop;
use bgp::session::GracefulRestartConfig;
use bgp::speaker::{PeerConfig, Policy, SpeakerConfig};
use bgp::transport::TtlPolicy;

use super::filters::{self, Direction};
use crate::desired::Cluster;

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
}

/// One session to have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peering {
    pub kind: PeerKind,
    /// The `BGPPeer` it comes from, or the peer node's name for the mesh.
    pub source: String,
    pub config: PeerConfig,
}

/// The BGP this node should speak: the speaker's configuration and its sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredBgp {
    pub speaker: SpeakerConfig,
    pub peers: BTreeMap<IpAddr, Peering>,
    /// What was left out, and why.
    pub problems: Vec<String>,
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
    #[error("node {0:?} has no IPv4 BGP address to use as its router id")]
    NoRouterId(String),
}

/// The BGP node `me` should speak, or why it cannot speak BGP at all.
pub fn plan(
    cluster: &Cluster,
    me: &str,
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
    let router_id = match bgp.ipv4_address.map(|c| c.0.addr()) {
        Some(IpAddr::V4(v4)) => v4,
        _ => return Err(NoBgp::NoRouterId(me.into())),
    };
    let config = cluster.bgp_configuration(me);
    let cluster_as = config.as_number.map_or(64512, |a| a.0);
    let local_as = node_as(node, cluster_as);
    let restart_time = config
        .node_mesh_max_restart_time
        .map_or(DEFAULT_RESTART_TIME, |d| d.0);
    let port = config.listen_port.unwrap_or(179);
    let speaker = SpeakerConfig {
        cluster_id: bgp.route_reflector_cluster_id,
        listen: Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)),
        graceful_restart: Some(GracefulRestartConfig {
            restart_time: u16::try_from(restart_time.as_secs()).unwrap_or(u16::MAX),
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
        cluster_as,
        local_as,
    };
    if config.node_to_node_mesh_enabled.unwrap_or(true) {
        let password = match config.node_mesh_password.as_ref().map(passwords) {
            Some(Ok(key)) => Some(key),
            Some(Err(error)) => {
                plan.problems
                    .push(format!("nodeMeshPassword: {error}: no mesh sessions"));
                return Ok(plan);
            }
            None => None,
        };
        for other in cluster.nodes.values().filter(|n| n.metadata.name != me) {
            for (remote, local) in shared_families(node, other) {
                let mut peer = me_node.session(remote, node_as(other, cluster_as), local);
                peer.port = cluster
                    .bgp_configuration(&other.metadata.name)
                    .listen_port
                    .unwrap_or(179);
                peer.md5_key.clone_from(&password);
                plan.peers.insert(
                    remote,
                    Peering {
                        kind: PeerKind::Mesh,
                        source: other.metadata.name.clone(),
                        config: peer,
                    },
                );
            }
        }
    }
    for resource in cluster.bgp_peers.values() {
        for peering in bgp_peer(cluster, &me_node, resource, passwords, &mut plan.problems) {
            plan.peers.insert(peering.config.address, peering);
        }
    }
    Ok(plan)
}

/// This node, as sessions need it.
struct Local<'a> {
    node: &'a Node,
    cluster_as: u32,
    local_as: u32,
}

impl Local<'_> {
    /// A session with the defaults every peering shares.
    fn session(&self, remote: IpAddr, remote_as: u32, local: Option<IpAddr>) -> PeerConfig {
        PeerConfig {
            local_address: local,
            ttl: TtlPolicy::Hops(MULTIHOP_TTL),
            // Import checks happen in the agent (pools, ownership); export is what
            // the agent originates. Explicit, so eBGP sessions work (RFC 8212).
            import: Some(Policy::Accept),
            export: Some(Policy::Accept),
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

/// The sessions one `BGPPeer` gives this node.
fn bgp_peer(
    cluster: &Cluster,
    me: &Local<'_>,
    resource: &BGPPeer,
    passwords: &Passwords<'_>,
    problems: &mut Vec<String>,
) -> Vec<Peering> {
    let spec = &resource.spec;
    let name = &resource.metadata.name;
    let selects = |node: &Node| match (&spec.node, &spec.node_selector) {
        (Some(only), _) => *only == node.metadata.name,
        (None, Some(selector)) => selector.matches(&node.metadata.labels),
        (None, None) => true,
    };
    let kind = if spec.node.is_some() || spec.node_selector.is_some() {
        PeerKind::NodeSpecific
    } else {
        PeerKind::Global
    };
    // (remote address, remote AS, port, remote node when it is one)
    let mut targets: Vec<(IpAddr, u32, Option<u16>, Option<&Node>)> = Vec::new();
    if selects(me.node) {
        match (&spec.peer_ip, &spec.peer_selector) {
            (Some(address), _) => {
                let remote_as = spec.as_number.map_or(me.cluster_as, |a| a.0);
                targets.push((address.ip, remote_as, address.port, None));
            }
            (None, Some(selector)) => {
                for other in cluster.nodes.values() {
                    if other.metadata.name != me.name() && selector.matches(&other.metadata.labels)
                    {
                        add_node_targets(me, other, &mut targets);
                    }
                }
            }
            (None, None) => {}
        }
    }
    // The other side of a peerSelector peering.
    if let Some(selector) = &spec.peer_selector
        && selector.matches(&me.node.metadata.labels)
    {
        for other in cluster.nodes.values() {
            if other.metadata.name != me.name() && selects(other) {
                add_node_targets(me, other, &mut targets);
            }
        }
    }
    if targets.is_empty() {
        return Vec::new();
    }
    let password = match spec.password.as_ref().map(passwords) {
        Some(Ok(key)) => Some(key),
        Some(Err(error)) => {
            problems.push(format!(
                "BGPPeer {name:?}: spec.password: {error}: not peering"
            ));
            return Vec::new();
        }
        None => None,
    };
    let mut filters = Vec::new();
    for (i, wanted) in spec.filters.iter().enumerate() {
        match cluster.bgp_filters.get(wanted) {
            Some(filter) => filters.push(filter),
            None => {
                problems.push(format!(
                    "BGPPeer {name:?}: spec.filters[{i}]: no BGPFilter {wanted:?}: not peering"
                ));
                return Vec::new();
            }
        }
    }
    if spec.max_restart_time.is_some() {
        problems.push(format!(
            "BGPPeer {name:?}: spec.maxRestartTime is not supported per peer yet; the \
             cluster's graceful-restart time applies"
        ));
    }
    let mut peerings = Vec::new();
    for (address, remote_as, port, remote_node) in targets {
        let local = match spec.source_address {
            SourceAddress::UseNodeIP => own_address(me.node, address.is_ipv4()),
            SourceAddress::None => None,
        };
        let mut config = me.session(address, remote_as, local);
        config.port = port.unwrap_or(179);
        config.md5_key.clone_from(&password);
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
        let external = remote_as != me.local_as;
        let compiled = filters::compile(&filters, Direction::Import, external).and_then(|import| {
            Ok((
                import,
                filters::compile(&filters, Direction::Export, external)?,
            ))
        });
        match compiled {
            Ok((import, export)) => {
                config.import_filter = import;
                config.export_filter = export;
            }
            Err(problem) => {
                problems.push(format!("BGPPeer {name:?}: {problem}: not peering"));
                return Vec::new();
            }
        }
        // A reflector's peers outside its cluster are its clients.
        config.rr_client = me.reflector().is_some()
            && remote_node.is_some_and(|other| {
                other
                    .spec
                    .bgp
                    .as_ref()
                    .and_then(|b| b.route_reflector_cluster_id)
                    != me.reflector()
            });
        peerings.push(Peering {
            kind,
            source: name.clone(),
            config,
        });
    }
    peerings
}

fn add_node_targets<'a>(
    me: &Local<'_>,
    other: &'a Node,
    targets: &mut Vec<(IpAddr, u32, Option<u16>, Option<&'a Node>)>,
) {
    for (remote, _) in shared_families(me.node, other) {
        targets.push((remote, node_as(other, me.cluster_as), None, Some(other)));
    }
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

fn node_as(node: &Node, cluster_as: u32) -> u32 {
    node.spec
        .bgp
        .as_ref()
        .and_then(|b| b.as_number)
        .map_or(cluster_as, |a| a.0)
}

#[cfg(test)]
mod tests;
