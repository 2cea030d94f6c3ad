//! A route as the RIB holds it: the prefix's attributes (shared), its next hop, and
//! where it came from.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use crate::codec::{Attributes, SegmentKind};

/// Where a path came from. Shared by every path of one session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Source {
    /// The peer's address; `None` for routes this speaker originates.
    pub peer: Option<IpAddr>,
    pub router_id: Ipv4Addr,
    pub remote_as: u32,
    /// iBGP (same AS) rather than eBGP.
    pub internal: bool,
    /// A route-reflection client of this speaker (RFC 4456).
    pub rr_client: bool,
}

impl Source {
    /// This speaker's own routes.
    pub fn local(router_id: Ipv4Addr, local_as: u32) -> Arc<Self> {
        Arc::new(Self {
            peer: None,
            router_id,
            remote_as: local_as,
            internal: true,
            rr_client: false,
        })
    }
}

/// One path to a prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Path {
    pub source: Arc<Source>,
    pub attributes: Arc<Attributes>,
    pub next_hop: IpAddr,
    /// The ADD-PATH identifier the peer gave it, when negotiated.
    pub path_id: Option<u32>,
    /// Kept from a restarting peer until it re-announces or its time runs out
    /// (graceful restart, RFC 4724).
    pub stale: bool,
    /// May be selected. The owner's import hook refuses a path it will not
    /// forward on (like a next hop that does not resolve, RFC 4271 9.1.2): it
    /// stays in the table, never best, so the next valid path is chosen, and is
    /// judged again when the owner asks (see `Request::Revalidate`).
    pub eligible: bool,
}

/// What the decision process and the export rules read of a path: [`Path`], and
/// the table's own compact form.
pub trait Candidate {
    fn source(&self) -> &Source;
    fn attributes(&self) -> &Attributes;
    fn next_hop(&self) -> IpAddr;
    fn path_id(&self) -> Option<u32>;
    fn stale(&self) -> bool;
    fn eligible(&self) -> bool;

    fn local_pref(&self) -> u32 {
        // RFC 4271 5.1.5: a speaker's default for routes without LOCAL_PREF.
        self.attributes().local_pref.unwrap_or(100)
    }

    fn as_path_len(&self) -> usize {
        self.attributes().as_path.as_ref().map_or(0, |p| p.len())
    }

    /// The AS the route was learned from: the first AS of the path, for the MED
    /// comparison (RFC 4271 9.1.2.2 c).
    fn neighbor_as(&self) -> Option<u32> {
        let path = self.attributes().as_path.as_ref()?;
        let first = path.segments.first()?;
        (first.kind == SegmentKind::Sequence)
            .then(|| first.asns.first().copied())
            .flatten()
    }

    /// The router id that breaks ties: ORIGINATOR_ID when reflected (RFC 4456 9).
    fn originator(&self) -> Ipv4Addr {
        self.attributes()
            .originator_id
            .unwrap_or(self.source().router_id)
    }
}

impl Candidate for Path {
    fn source(&self) -> &Source {
        &self.source
    }

    fn attributes(&self) -> &Attributes {
        &self.attributes
    }

    fn next_hop(&self) -> IpAddr {
        self.next_hop
    }

    fn path_id(&self) -> Option<u32> {
        self.path_id
    }

    fn stale(&self) -> bool {
        self.stale
    }

    fn eligible(&self) -> bool {
        self.eligible
    }
}
