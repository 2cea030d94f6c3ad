//! What the two speakers negotiated in their OPENs, which changes the wire format.

use super::capability::{AddPathMode, Capability};
use super::open::Open;
use super::{Afi, Family};

/// Maximum message size without the extended message capability (RFC 4271).
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Maximum message size with it (RFC 8654).
pub const MAX_EXTENDED_MESSAGE_LEN: usize = 65535;

/// The negotiated capabilities that the codec needs to read and write a session's
/// messages. The default is a plain RFC 4271 session: 2-octet AS numbers, no ADD-PATH,
/// 4096-byte messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SessionContext {
    /// RFC 6793: AS numbers are 4 octets in AS_PATH and AGGREGATOR.
    pub four_octet_as: bool,
    /// RFC 8654: UPDATE, NOTIFICATION and ROUTE-REFRESH may be up to 65535 bytes.
    pub extended_message: bool,
    /// RFC 8950: IPv4 unicast NLRI may carry an IPv6 next hop in MP_REACH_NLRI.
    pub extended_next_hop: bool,
    /// RFC 7911: which families carry path identifiers, per direction.
    pub add_path: AddPath,
    /// The peer is in another AS (eBGP): LOCAL_PREF, ORIGINATOR_ID and CLUSTER_LIST
    /// from it are discarded (RFC 7606 7.5, 7.9, 7.10), and confederation segments
    /// in its AS_PATH make the UPDATE treat-as-withdraw (RFC 5065 5; tabby is
    /// never a confederation member).
    pub external: bool,
}

/// ADD-PATH per family and direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct AddPath {
    pub receive_ipv4: bool,
    pub receive_ipv6: bool,
    pub send_ipv4: bool,
    pub send_ipv6: bool,
}

impl AddPath {
    /// Path identifiers both ways on both families (tests, and symmetric peers).
    pub const BOTH: AddPath = AddPath {
        receive_ipv4: true,
        receive_ipv6: true,
        send_ipv4: true,
        send_ipv6: true,
    };
}

impl SessionContext {
    /// An internal session where both sides speak every capability the codec
    /// knows, except ADD-PATH.
    pub fn modern() -> Self {
        Self {
            four_octet_as: true,
            extended_message: true,
            extended_next_hop: true,
            ..Self::default()
        }
    }

    /// The largest message this session may carry for `message_type` (OPEN and
    /// KEEPALIVE never grow, RFC 8654 section 3).
    pub fn max_len(&self, message_type: u8) -> usize {
        use super::iana::message::{KEEPALIVE, OPEN};
        if self.extended_message && message_type != OPEN && message_type != KEEPALIVE {
            MAX_EXTENDED_MESSAGE_LEN
        } else {
            MAX_MESSAGE_LEN
        }
    }

    /// The same session seen from the peer: its sends are our receives (ADD-PATH).
    pub fn peer_view(&self) -> Self {
        let a = self.add_path;
        Self {
            add_path: AddPath {
                receive_ipv4: a.send_ipv4,
                receive_ipv6: a.send_ipv6,
                send_ipv4: a.receive_ipv4,
                send_ipv6: a.receive_ipv6,
            },
            ..*self
        }
    }

    /// True when NLRI of `afi` we receive start with a path identifier.
    pub fn receives_path_ids(&self, afi: Afi) -> bool {
        match afi {
            Afi::Ipv4 => self.add_path.receive_ipv4,
            Afi::Ipv6 => self.add_path.receive_ipv6,
        }
    }

    /// True when NLRI of `afi` we send start with a path identifier.
    pub fn sends_path_ids(&self, afi: Afi) -> bool {
        match afi {
            Afi::Ipv4 => self.add_path.send_ipv4,
            Afi::Ipv6 => self.add_path.send_ipv6,
        }
    }

    /// The context after we sent `local` and received `remote`: a capability counts
    /// when both announced it; ADD-PATH receive needs our receive and their send;
    /// the session is external when the two AS numbers differ.
    pub fn negotiate(local: &Open, remote: &Open) -> Self {
        let both = |f: &dyn Fn(&Capability) -> bool| {
            local.capabilities.iter().any(f) && remote.capabilities.iter().any(f)
        };
        let add_path = |open: &Open, afi: Afi, want: AddPathMode| {
            open.capabilities.iter().any(|c| match c {
                Capability::AddPath(entries) => entries
                    .iter()
                    .any(|(family, mode)| *family == afi.family() && mode.includes(want)),
                _ => false,
            })
        };
        let direction = |afi: Afi, ours: AddPathMode, theirs: AddPathMode| {
            add_path(local, afi, ours) && add_path(remote, afi, theirs)
        };
        let v4_over_v6 = |c: &Capability| match c {
            Capability::ExtendedNextHop(entries) => entries.iter().any(|e| {
                e.nlri == Family::IPV4_UNICAST && e.next_hop_afi == super::iana::afi::IPV6
            }),
            _ => false,
        };
        Self {
            four_octet_as: both(&|c| matches!(c, Capability::FourOctetAs(_))),
            extended_message: both(&|c| matches!(c, Capability::ExtendedMessage)),
            extended_next_hop: both(&v4_over_v6),
            add_path: AddPath {
                receive_ipv4: direction(Afi::Ipv4, AddPathMode::Receive, AddPathMode::Send),
                receive_ipv6: direction(Afi::Ipv6, AddPathMode::Receive, AddPathMode::Send),
                send_ipv4: direction(Afi::Ipv4, AddPathMode::Send, AddPathMode::Receive),
                send_ipv6: direction(Afi::Ipv6, AddPathMode::Send, AddPathMode::Receive),
            },
            external: local.asn() != remote.asn(),
        }
    }
}
