//! MP_REACH_NLRI and MP_UNREACH_NLRI (RFC 4760) for IPv4 and IPv6 unicast, with
//! IPv6 next hops for IPv4 routes (RFC 8950).
//!
//! ```text
//! MP_REACH:   | AFI (2) | SAFI | NH len | next hop | reserved | NLRI ... |
//! MP_UNREACH: | AFI (2) | SAFI | withdrawn NLRI ... |
//! ```

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, BytesMut};
use nom::Parser;

use crate::codec::context::SessionContext;
use crate::codec::error::{DecodeError, EncodeError, Reason};
use crate::codec::iana::error::OPTIONAL_ATTRIBUTE;
use crate::codec::nlri::{self, Nlri};
use crate::codec::wire;
use crate::codec::{Afi, Family};

/// Where routes of an MP_REACH_NLRI go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NextHop {
    V4(Ipv4Addr),
    /// A global address, and the link-local one when the peer shares a link.
    V6 {
        global: Ipv6Addr,
        link_local: Option<Ipv6Addr>,
    },
}

impl NextHop {
    pub(crate) fn encoded_len(&self) -> usize {
        match self {
            NextHop::V4(_) => 4,
            NextHop::V6 {
                link_local: None, ..
            } => 16,
            NextHop::V6 { .. } => 32,
        }
    }

    pub(crate) fn encode(&self, out: &mut BytesMut) {
        match self {
            NextHop::V4(a) => out.put_slice(&a.octets()),
            NextHop::V6 { global, link_local } => {
                out.put_slice(&global.octets());
                if let Some(ll) = link_local {
                    out.put_slice(&ll.octets());
                }
            }
        }
    }

    /// Checks that routes of `afi` may use this next hop on the session.
    pub(crate) fn check(&self, afi: Afi, ctx: &SessionContext) -> Result<(), EncodeError> {
        match (afi, self) {
            (Afi::Ipv6, NextHop::V4(_)) => Err(EncodeError::NextHopFamily),
            (Afi::Ipv4, NextHop::V6 { .. }) if !ctx.extended_next_hop => {
                Err(EncodeError::ExtendedNextHopNotNegotiated)
            }
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MpReach {
    pub afi: Afi,
    pub next_hop: NextHop,
    pub nlri: Vec<Nlri>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MpUnreach {
    pub afi: Afi,
    pub nlri: Vec<Nlri>,
}

/// RFC 7606 7.11: a malformed MP attribute resets the session (tabby does not
/// implement "AFI/SAFI disable").
fn malformed(value: &[u8], at: &[u8], reason: Reason) -> DecodeError {
    DecodeError::reset(
        crate::codec::iana::error::UPDATE_MESSAGE,
        OPTIONAL_ATTRIBUTE,
        Vec::new(),
        reason,
    )
    .at(wire::offset(value, at))
}

/// The family at the start of an MP attribute. A family the codec does not carry was
/// never negotiated; RFC 4760 7 lets the receiver ignore it, so it is discarded.
fn family(value: &[u8]) -> Result<(&[u8], Afi), DecodeError> {
    let (rest, (afi, safi)) = (wire::u16, wire::u8)
        .parse(value)
        .map_err(|_| malformed(value, value, Reason::Truncated { field: "AFI/SAFI" }))?;
    let afi = Afi::of(Family { afi, safi }).ok_or_else(|| {
        DecodeError::discard(
            OPTIONAL_ATTRIBUTE,
            Vec::new(),
            Reason::UnsupportedFamily { afi, safi },
        )
    })?;
    Ok((rest, afi))
}

impl MpReach {
    pub(crate) fn decode(value: &[u8], ctx: &SessionContext) -> Result<Self, DecodeError> {
        let (rest, afi) = family(value)?;
        let (after, nh) = nom::multi::length_data(wire::u8)
            .parse(rest)
            .map_err(|_| malformed(value, rest, Reason::Truncated { field: "next hop" }))?;
        let bad_length = || {
            malformed(
                value,
                rest,
                Reason::BadNextHopLength {
                    afi: afi.family().afi,
                    length: nh.len(),
                },
            )
        };
        let v6 = |nh: &[u8], i: usize| -> Ipv6Addr {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&nh[i..i + 16]);
            Ipv6Addr::from(octets)
        };
        let next_hop = match (afi, nh.len()) {
            (Afi::Ipv4, 4) => NextHop::V4(Ipv4Addr::new(nh[0], nh[1], nh[2], nh[3])),
            (Afi::Ipv6, 16) => NextHop::V6 {
                global: v6(nh, 0),
                link_local: None,
            },
            (Afi::Ipv6, 32) => NextHop::V6 {
                global: v6(nh, 0),
                link_local: Some(v6(nh, 16)),
            },
            (Afi::Ipv4, 16) if ctx.extended_next_hop => NextHop::V6 {
                global: v6(nh, 0),
                link_local: None,
            },
            (Afi::Ipv4, 32) if ctx.extended_next_hop => NextHop::V6 {
                global: v6(nh, 0),
                link_local: Some(v6(nh, 16)),
            },
            _ => return Err(bad_length()),
        };
        let (rest, _reserved) = wire::u8(after)
            .map_err(|_| malformed(value, after, Reason::Truncated { field: "reserved" }))?;
        let at = wire::offset(value, rest);
        let nlri = nlri::decode(rest, afi, ctx.receives_path_ids(afi)).map_err(|e| e.shift(at))?;
        Ok(Self {
            afi,
            next_hop,
            nlri,
        })
    }

    /// Bytes of the attribute value.
    pub(crate) fn encoded_len(&self, ctx: &SessionContext) -> usize {
        5 + self.next_hop.encoded_len()
            + nlri::encoded_len(&self.nlri, ctx.sends_path_ids(self.afi))
    }

    /// Writes the value up to the NLRI (shared with the packer).
    pub(crate) fn encode_head(afi: Afi, next_hop: &NextHop, out: &mut BytesMut) {
        let family = afi.family();
        out.put_u16(family.afi);
        out.put_u8(family.safi);
        // 4, 16 or 32.
        out.put_u8(next_hop.encoded_len() as u8);
        next_hop.encode(out);
        out.put_u8(0);
    }

    pub(crate) fn encode(
        &self,
        ctx: &SessionContext,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        self.next_hop.check(self.afi, ctx)?;
        Self::encode_head(self.afi, &self.next_hop, out);
        nlri::encode_all(&self.nlri, self.afi, ctx.sends_path_ids(self.afi), out)
    }
}

impl MpUnreach {
    pub(crate) fn decode(value: &[u8], ctx: &SessionContext) -> Result<Self, DecodeError> {
        let (rest, afi) = family(value)?;
        let at = wire::offset(value, rest);
        let nlri = nlri::decode(rest, afi, ctx.receives_path_ids(afi)).map_err(|e| e.shift(at))?;
        Ok(Self { afi, nlri })
    }

    pub(crate) fn encoded_len(&self, ctx: &SessionContext) -> usize {
        3 + nlri::encoded_len(&self.nlri, ctx.sends_path_ids(self.afi))
    }

    pub(crate) fn encode(
        &self,
        ctx: &SessionContext,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let family = self.afi.family();
        out.put_u16(family.afi);
        out.put_u8(family.safi);
        nlri::encode_all(&self.nlri, self.afi, ctx.sends_path_ids(self.afi), out)
    }
}
