//! COMMUNITIES (RFC 1997), EXTENDED_COMMUNITIES (RFC 4360) and LARGE_COMMUNITY
//! (RFC 8092): fixed-size values, so a list is valid when its length is a non-zero
//! multiple of the size (RFC 7606 7.8, 7.14; RFC 8092 6).

use bytes::{BufMut, BytesMut};

/// A community: AS number in the high 16 bits, value in the low ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Community(pub u32);

impl Community {
    pub const NO_EXPORT: Community = Community(0xffff_ff01);
    pub const NO_ADVERTISE: Community = Community(0xffff_ff02);

    pub fn new(asn: u16, value: u16) -> Self {
        Community((u32::from(asn) << 16) | u32::from(value))
    }
}

/// An extended community, kept as its 8 octets (type, subtype, value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtendedCommunity(pub [u8; 8]);

impl ExtendedCommunity {
    /// A two-octet-AS route target (type 0x00, subtype 0x02).
    pub fn route_target(asn: u16, value: u32) -> Self {
        let mut octets = [0, 2, 0, 0, 0, 0, 0, 0];
        octets[2..4].copy_from_slice(&asn.to_be_bytes());
        octets[4..].copy_from_slice(&value.to_be_bytes());
        ExtendedCommunity(octets)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity {
    pub global: u32,
    pub local1: u32,
    pub local2: u32,
}

/// Splits `value` into `N`-byte items; `None` unless its length is a non-zero
/// multiple of `N`.
pub(crate) fn decode_list<const N: usize, T>(
    value: &[u8],
    item: impl Fn(&[u8; N]) -> T,
) -> Option<Vec<T>> {
    let (items, rest) = value.as_chunks::<N>();
    (!items.is_empty() && rest.is_empty()).then(|| items.iter().map(item).collect())
}

pub(crate) fn community(b: &[u8; 4]) -> Community {
    Community(u32::from_be_bytes(*b))
}

pub(crate) fn extended(b: &[u8; 8]) -> ExtendedCommunity {
    ExtendedCommunity(*b)
}

pub(crate) fn large(b: &[u8; 12]) -> LargeCommunity {
    let word = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    LargeCommunity {
        global: word(0),
        local1: word(4),
        local2: word(8),
    }
}

pub(crate) fn put_large(c: &LargeCommunity, out: &mut BytesMut) {
    out.put_u32(c.global);
    out.put_u32(c.local1);
    out.put_u32(c.local2);
}
