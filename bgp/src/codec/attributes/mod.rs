//! Path attributes (RFC 4271 4.3 and extensions): the [`Attributes`] value a route
//! carries, decoded from an UPDATE's attribute list with the error handling of
//! RFC 7606 (`decode`) and written back (`encode`).
//!
//! ```text
//! +-------+------+------------------+-------+
//! | flags | type | length (1 or 2)  | value |
//! +-------+------+------------------+-------+
//! ```

mod as_path;
mod communities;
mod decode;
mod encode;
mod mp;

pub use as_path::{AsPath, Segment, SegmentKind};
pub use communities::{Community, ExtendedCommunity, LargeCommunity};
pub(crate) use decode::decode;
pub(crate) use encode::{
    encode, encode_mp_reach, encode_mp_unreach, finish_mp_reach, start_mp_reach,
};
pub use mp::{MpReach, MpUnreach, NextHop};

use std::net::Ipv4Addr;

/// The path attributes of a route, without NEXT_HOP and the MP attributes (those
/// belong to the UPDATE that carries the NLRI). A plain value: hash it, compare it
/// and share it behind an `Arc` in the RIB. AS numbers are always 4 octets here; on
/// 2-octet sessions AS4_PATH and AS4_AGGREGATOR are merged in on decode and
/// produced on encode.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Attributes {
    pub origin: Option<Origin>,
    pub as_path: Option<AsPath>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    pub aggregator: Option<Aggregator>,
    pub communities: Vec<Community>,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: Vec<Ipv4Addr>,
    pub extended_communities: Vec<ExtendedCommunity>,
    pub large_communities: Vec<LargeCommunity>,
    /// Optional transitive attributes this codec does not know, passed on with the
    /// Partial bit set (RFC 4271 5); ordered by type code.
    pub unknown: Vec<RawAttribute>,
    /// Known optional transitive attributes that arrived with the Partial bit set: a
    /// speaker that passes them on must not clear it (RFC 4271 5).
    pub partial: PartialFlags,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    Igp,
    Egp,
    Incomplete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Aggregator {
    pub asn: u32,
    pub address: Ipv4Addr,
}

/// An attribute kept as received. `flags` never has the extended length bit: the
/// encoder picks the length size.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawAttribute {
    pub flags: u8,
    pub code: u8,
    pub value: Vec<u8>,
}

/// A set of attribute type codes below 64 (every known optional transitive
/// attribute's code is).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PartialFlags(u64);

impl PartialFlags {
    pub fn contains(self, code: u8) -> bool {
        code < 64 && self.0 & (1 << code) != 0
    }

    /// Adds `code`; codes of 64 and above are never known attributes and are ignored.
    pub fn insert(&mut self, code: u8) {
        if code < 64 {
            self.0 |= 1 << code;
        }
    }
}
