//! `BGPPeer`: a BGP session some nodes open towards a router or towards other nodes.

use serde::{Deserialize, Serialize};

use crate::resources::meta::is_dns_subdomain;
use crate::resources::{
    AsNumber, BfdSpec, BgpPassword, GoDuration, Object, PeerAddress, Spec, ValidationError,
};
use crate::selector::Selector;

pub type BGPPeer = Object<BGPPeerSpec>;

/// Which nodes open the session (`node`, `nodeSelector`, or neither for every node)
/// and to whom (`peerIP` with `asNumber`, or the nodes matching `peerSelector`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPPeerSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<Selector>,
    #[serde(default, rename = "peerIP", skip_serializing_if = "Option::is_none")]
    pub peer_ip: Option<PeerAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_selector: Option<Selector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_number: Option<AsNumber>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<BgpPassword>,
    #[serde(default)]
    pub source_address: SourceAddress,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive_time: Option<GoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_restart_time: Option<GoDuration>,
    #[serde(default)]
    pub next_hop_mode: NextHopMode,
    /// GTSM (RFC 5082): the peer is at most this many hops away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_security: Option<u8>,
    /// How often our own AS may appear in a received AS path (allowas-in).
    #[serde(
        default,
        rename = "numAllowedLocalASNumbers",
        skip_serializing_if = "Option::is_none"
    )]
    pub num_allowed_local_as_numbers: Option<u8>,
    /// Names of `BGPFilter`s, applied in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<String>,
    /// The session is reset (Cease, RFC 4486) when the peer sends more prefixes;
    /// 0 for no limit. tabby's default (`bgp::speaker::DEFAULT_MAX_PREFIXES`)
    /// when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_prefixes: Option<u32>,
    /// Towards a router (a peer that is neither a node nor in the cluster's AS),
    /// also advertise the routes this node learned over BGP (other nodes' blocks
    /// and addresses, other peers' routes), not only its own. Off by default, so a
    /// router reaches each block through its owner.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub advertise_learned_routes: bool,
    /// BFD beside this peer's sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd: Option<BfdSpec>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceAddress {
    /// Bind the session to the node's BGP address.
    #[default]
    UseNodeIP,
    /// Let the kernel pick.
    None,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NextHopMode {
    /// Self for eBGP, unchanged for iBGP.
    #[default]
    Auto,
    #[serde(rename = "Self")]
    SelfHop,
    Keep,
}

/// BIRD's limit for allowas-in.
const MAX_ALLOWED_LOCAL_AS_NUMBERS: u8 = 10;

impl Spec for BGPPeerSpec {
    const KIND: &'static str = "BGPPeer";
    const PLURAL: &'static str = "bgppeers";

    fn validate(&self, _name: &str) -> Result<(), ValidationError> {
        if let (Some(node), Some(_)) = (&self.node, &self.node_selector) {
            return Err(ValidationError::new(
                "spec.nodeSelector",
                node,
                "cannot be combined with spec.node",
            ));
        }
        match (&self.peer_ip, &self.peer_selector) {
            (Some(ip), Some(_)) => {
                return Err(ValidationError::new(
                    "spec.peerIP",
                    ip.to_string(),
                    "cannot be combined with spec.peerSelector",
                ));
            }
            (None, None) => {
                return Err(ValidationError::missing(
                    "spec.peerIP",
                    "is required unless spec.peerSelector is set",
                ));
            }
            (Some(ip), None) if self.as_number.is_none() => {
                return Err(ValidationError::missing(
                    "spec.asNumber",
                    format!("is required with peerIP \"{ip}\""),
                ));
            }
            _ => {}
        }
        if let Some(node) = self.node.as_ref().filter(|n| !is_dns_subdomain(n)) {
            return Err(ValidationError::new(
                "spec.node",
                node,
                "is not a node name",
            ));
        }
        for (i, filter) in self.filters.iter().enumerate() {
            if !is_dns_subdomain(filter) {
                return Err(ValidationError::new(
                    format!("spec.filters[{i}]"),
                    filter,
                    "is not a BGPFilter name",
                ));
            }
        }
        if self.ttl_security == Some(0) {
            return Err(ValidationError::new(
                "spec.ttlSecurity",
                0,
                "must be 1 or more hops",
            ));
        }
        if let Some(n) = self
            .num_allowed_local_as_numbers
            .filter(|n| *n > MAX_ALLOWED_LOCAL_AS_NUMBERS)
        {
            return Err(ValidationError::new(
                "spec.numAllowedLocalASNumbers",
                n,
                format!("is more than {MAX_ALLOWED_LOCAL_AS_NUMBERS}"),
            ));
        }
        if let Some(password) = &self.password {
            password.validate("spec.password")?;
        }
        if let Some(bfd) = &self.bfd {
            bfd.validate("spec.bfd")?;
        }
        Ok(())
    }
}
