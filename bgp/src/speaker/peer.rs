//! What the speaker keeps per peer: its session, and once Established, what was
//! agreed and what has been sent (the Adj-RIB-Out).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use ipnet::IpNet;
use tokio::sync::mpsc::UnboundedSender;

use crate::codec::{Attributes, UpdatePacker};
use crate::rib::Source;
use crate::session::{Command, Negotiated};

use super::config::PeerConfig;

#[derive(Debug)]
pub(crate) struct Peer {
    pub config: PeerConfig,
    pub commands: UnboundedSender<Command>,
    pub up: Option<Up>,
    /// When the session last came up or went down.
    pub since: Instant,
    pub last_error: Option<String>,
    /// A restarting peer's stale routes are removed at this time (RFC 4724).
    pub stale_until: Option<Instant>,
    /// The listen range this dynamic peer was accepted through.
    pub range: Option<usize>,
}

#[derive(Debug)]
pub(crate) struct Up {
    pub negotiated: Negotiated,
    pub source: Arc<Source>,
    /// This end's address on the session: the next hop when it is "self".
    pub local: IpAddr,
    pub packer: UpdatePacker,
    /// The Adj-RIB-Out: what this peer was last sent per prefix.
    pub sent: HashMap<IpNet, (Arc<Attributes>, IpAddr)>,
}

/// A peer's state as `node status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    pub address: IpAddr,
    pub remote_as: Option<u32>,
    pub established: bool,
    pub internal: bool,
    pub since: Instant,
    /// The last error, like BIRD's "Received: Hold timer expired".
    pub info: Option<String>,
    pub hostname: Option<String>,
    pub prefixes_received: usize,
    pub prefixes_advertised: usize,
}
