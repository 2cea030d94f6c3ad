//! One configuration for every peer daemon; each daemon module renders it.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use ipnet::IpNet;

/// A BGP speaker's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpConfig {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    pub neighbors: Vec<Neighbor>,
    /// Prefixes the speaker originates.
    pub routes: Vec<IpNet>,
    /// Standard communities (`ASN:VALUE`) on every originated route.
    pub communities: Vec<String>,
    /// Reflect routes between its `rr_client` neighbours with this cluster id.
    pub cluster_id: Option<Ipv4Addr>,
    /// BFD sessions run on their own, without a client protocol.
    pub bfd: Bfd,
}

impl BgpConfig {
    pub fn new(asn: u32, router_id: Ipv4Addr) -> Self {
        Self {
            asn,
            router_id,
            neighbors: Vec::new(),
            routes: Vec::new(),
            communities: Vec::new(),
            cluster_id: None,
            bfd: Bfd::default(),
        }
    }

    /// Runs a BFD session with `session.remote`.
    pub fn bfd_session(mut self, session: BfdSession) -> Self {
        self.bfd.sessions.push(session);
        self
    }

    /// Tags every originated route with `community` (`ASN:VALUE`).
    pub fn community(mut self, community: &str) -> Self {
        self.communities.push(community.to_owned());
        self
    }

    pub fn cluster_id(mut self, id: Ipv4Addr) -> Self {
        self.cluster_id = Some(id);
        self
    }

    pub fn neighbor(mut self, neighbor: Neighbor) -> Self {
        self.neighbors.push(neighbor);
        self
    }

    /// Originates `prefix`.
    pub fn route(mut self, prefix: IpNet) -> Self {
        self.routes.push(prefix.trunc());
        self
    }
}

/// A BGP neighbour. The session carries the address family of `address` (IPv4
/// unicast over IPv4, IPv6 unicast over IPv6), or both with `both_families`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbor {
    pub address: IpAddr,
    pub asn: u32,
    /// Wait for the neighbour to connect.
    pub passive: bool,
    /// TCP MD5 signature password (RFC 2385).
    pub password: Option<String>,
    /// eBGP multihop with this TTL.
    pub multihop: Option<u8>,
    /// The neighbour is a route-reflector client of this speaker.
    pub rr_client: bool,
    /// Graceful restart (RFC 4724) with this restart time in seconds.
    pub graceful_restart: Option<u16>,
    /// Routes sent to the neighbour carry this speaker as next hop, also over iBGP
    /// (a top-of-rack router towards the nodes of its rack). BIRD and FRR.
    pub next_hop_self: bool,
    /// The session goes down when BFD says the neighbour is (RFC 5882), with the
    /// daemon's BFD timers ([`BgpConfig::bfd`]). BIRD only: FRR's bgpd reaches
    /// bfdd through zebra, which the harness does not run.
    pub bfd: bool,
    /// The session carries IPv4 and IPv6 unicast whatever the family of its
    /// address (MP-BGP, RFC 4760). BIRD only.
    pub both_families: bool,
}

impl Neighbor {
    pub fn new(address: IpAddr, asn: u32) -> Self {
        Self {
            address,
            asn,
            passive: false,
            password: None,
            multihop: None,
            rr_client: false,
            graceful_restart: None,
            next_hop_self: false,
            bfd: false,
            both_families: false,
        }
    }

    pub fn passive(mut self) -> Self {
        self.passive = true;
        self
    }

    pub fn password(mut self, password: &str) -> Self {
        self.password = Some(password.to_owned());
        self
    }

    pub fn multihop(mut self, ttl: u8) -> Self {
        self.multihop = Some(ttl);
        self
    }

    pub fn rr_client(mut self) -> Self {
        self.rr_client = true;
        self
    }

    pub fn graceful_restart(mut self, restart_time: u16) -> Self {
        self.graceful_restart = Some(restart_time);
        self
    }

    pub fn next_hop_self(mut self) -> Self {
        self.next_hop_self = true;
        self
    }

    pub fn bfd(mut self) -> Self {
        self.bfd = true;
        self
    }

    pub fn both_families(mut self) -> Self {
        self.both_families = true;
        self
    }
}

/// A daemon's standalone BFD sessions, all with the same timers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bfd {
    pub sessions: Vec<BfdSession>,
    /// Both the minimum transmit and receive interval.
    pub interval: Duration,
    pub multiplier: u8,
}

impl Default for Bfd {
    /// No sessions; 300 ms × 3, the RFC 5880 defaults tabby uses too.
    fn default() -> Self {
        Self {
            sessions: Vec::new(),
            interval: Duration::from_millis(300),
            multiplier: 3,
        }
    }
}

/// A BFD session with `remote`, sent from `local`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BfdSession {
    pub remote: IpAddr,
    pub local: IpAddr,
    /// RFC 5883 (UDP 4784) rather than single-hop RFC 5881 (UDP 3784).
    pub multihop: bool,
}

impl BfdSession {
    pub fn single_hop(remote: IpAddr, local: IpAddr) -> Self {
        Self {
            remote,
            local,
            multihop: false,
        }
    }

    pub fn multihop(remote: IpAddr, local: IpAddr) -> Self {
        Self {
            remote,
            local,
            multihop: true,
        }
    }
}
