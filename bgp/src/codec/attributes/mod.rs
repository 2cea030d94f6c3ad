//! Path attributes (RFC 4271 4.3 and extensions): the [`Attributes`] value a route
//! carries, and the attribute list of an UPDATE with RFC 7606 error handling.
//!
//! ```text
//! +-------+------+------------------+-------+
//! | flags | type | length (1 or 2)  | value |
//! +-------+------+------------------+-------+
//! ```

mod as_path;
mod communities;
mod mp;

pub use as_path::{AsPath, Segment, SegmentKind};
pub use communities::{Community, ExtendedCommunity, LargeCommunity};
pub use mp::{MpReach, MpUnreach, NextHop};

use std::net::Ipv4Addr;

use bytes::{BufMut, BytesMut};

use super::context::SessionContext;
use super::error::{DecodeError, EncodeError, Outcome, Reason};
use super::iana::AS_TRANS;
use super::iana::attribute::*;
use super::iana::error::{
    ATTRIBUTE_FLAGS, ATTRIBUTE_LENGTH, INVALID_ORIGIN, MALFORMED_AS_PATH, MALFORMED_ATTRIBUTE_LIST,
    UNRECOGNIZED_WELL_KNOWN, UPDATE_MESSAGE,
};
use super::iana::flags::{EXTENDED_LENGTH, KIND, OPTIONAL, PARTIAL, TRANSITIVE};

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

/// What the attribute list of one UPDATE decodes to.
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    pub attributes: Attributes,
    pub next_hop: Option<Ipv4Addr>,
    pub mp_reach: Option<MpReach>,
    pub mp_unreach: Option<MpUnreach>,
    /// Treat-as-withdraw and attribute-discard errors, offsets into the list.
    pub malformed: Vec<DecodeError>,
    seen: [u64; 4],
}

impl Decoded {
    /// True when an attribute of type `code` was present, well-formed or not.
    pub fn seen(&self, code: u8) -> bool {
        self.seen[usize::from(code >> 6)] & (1 << (code & 63)) != 0
    }

    fn mark(&mut self, code: u8) {
        self.seen[usize::from(code >> 6)] |= 1 << (code & 63);
    }
}

/// The flag bits (optional, transitive) each known attribute must carry.
fn expected_kind(code: u8) -> Option<u8> {
    Some(match code {
        ORIGIN | AS_PATH | NEXT_HOP | LOCAL_PREF | ATOMIC_AGGREGATE => TRANSITIVE,
        MULTI_EXIT_DISC | ORIGINATOR_ID | CLUSTER_LIST | MP_REACH_NLRI | MP_UNREACH_NLRI => {
            OPTIONAL
        }
        AGGREGATOR | COMMUNITIES | EXTENDED_COMMUNITIES | AS4_PATH | AS4_AGGREGATOR
        | LARGE_COMMUNITY => OPTIONAL | TRANSITIVE,
        _ => return None,
    })
}

/// The RFC 7606 outcome for a malformed attribute of type `code` (section 7 and
/// RFC 6793, RFC 8092).
fn outcome(code: u8) -> Outcome {
    match code {
        MP_REACH_NLRI | MP_UNREACH_NLRI => Outcome::SessionReset,
        ATOMIC_AGGREGATE | AGGREGATOR | AS4_PATH | AS4_AGGREGATOR => Outcome::AttributeDiscard,
        _ => Outcome::TreatAsWithdraw,
    }
}

fn attribute_error(code: u8, subcode: u8, raw: &[u8], reason: Reason) -> DecodeError {
    let data = raw.to_vec();
    match outcome(code) {
        Outcome::SessionReset => DecodeError::reset(UPDATE_MESSAGE, subcode, data, reason),
        Outcome::TreatAsWithdraw => DecodeError::withdraw(subcode, data, reason),
        Outcome::AttributeDiscard => DecodeError::discard(subcode, data, reason),
    }
}

fn length_error(code: u8, raw: &[u8], length: usize) -> DecodeError {
    attribute_error(
        code,
        ATTRIBUTE_LENGTH,
        raw,
        Reason::AttributeLength { code, length },
    )
}

fn u32_value(code: u8, raw: &[u8], value: &[u8]) -> Result<u32, DecodeError> {
    match value {
        &[a, b, c, d] => Ok(u32::from_be_bytes([a, b, c, d])),
        _ => Err(length_error(code, raw, value.len())),
    }
}

/// Decodes an UPDATE's path attributes. Errors with a session-reset outcome are
/// returned; the others are collected in [`Decoded::malformed`].
pub(crate) fn decode(input: &[u8], ctx: &SessionContext) -> Result<Decoded, DecodeError> {
    let mut out = Decoded::default();
    let mut as4 = As4::default();
    let mut pos = 0;
    while pos < input.len() {
        let rest = &input[pos..];
        // RFC 7606 4: an attribute that overruns the list is treat-as-withdraw, and
        // the Total Attribute Length still tells where the NLRI start.
        let header = match rest {
            [flags, code, len, ..] if flags & EXTENDED_LENGTH == 0 => {
                Some((*flags, *code, 3, usize::from(*len)))
            }
            [flags, code, l0, l1, ..] => Some((
                *flags,
                *code,
                4,
                usize::from(u16::from_be_bytes([*l0, *l1])),
            )),
            _ => None,
        };
        let Some((flags, code, header_len, len)) = header else {
            out.malformed.push(
                DecodeError::withdraw(
                    MALFORMED_ATTRIBUTE_LIST,
                    Vec::new(),
                    Reason::Truncated {
                        field: "attribute header",
                    },
                )
                .at(pos),
            );
            break;
        };
        let Some(raw) = rest.get(..header_len + len) else {
            out.malformed.push(
                DecodeError::withdraw(
                    MALFORMED_ATTRIBUTE_LIST,
                    Vec::new(),
                    Reason::LengthOverrun {
                        field: "attribute",
                        length: len,
                        available: rest.len() - header_len,
                    },
                )
                .at(pos),
            );
            break;
        };
        let value = &raw[header_len..];
        if out.seen(code) {
            // RFC 7606 3 g.
            let error = if code == MP_REACH_NLRI || code == MP_UNREACH_NLRI {
                DecodeError::reset(
                    UPDATE_MESSAGE,
                    MALFORMED_ATTRIBUTE_LIST,
                    Vec::new(),
                    Reason::DuplicateAttribute(code),
                )
            } else {
                DecodeError::discard(
                    MALFORMED_ATTRIBUTE_LIST,
                    Vec::new(),
                    Reason::DuplicateAttribute(code),
                )
            };
            match error.outcome {
                Outcome::SessionReset => return Err(error.at(pos)),
                _ => out.malformed.push(error.at(pos)),
            }
        } else {
            out.mark(code);
            if let Err(error) = decode_one(flags, code, value, raw, ctx, &mut out, &mut as4) {
                let error = error.shift(pos);
                match error.outcome {
                    Outcome::SessionReset => return Err(error),
                    _ => out.malformed.push(error),
                }
            }
        }
        pos += raw.len();
    }
    if !ctx.four_octet_as {
        as4.merge_into(&mut out.attributes);
    }
    Ok(out)
}

/// AS4_PATH and AS4_AGGREGATOR seen on a 2-octet session, merged in at the end.
#[derive(Default)]
struct As4 {
    path: Option<AsPath>,
    aggregator: Option<Aggregator>,
}

impl As4 {
    /// RFC 6793 4.2.3.
    fn merge_into(self, attributes: &mut Attributes) {
        if let Some(aggregator) = &mut attributes.aggregator {
            if aggregator.asn != u32::from(AS_TRANS) {
                // An OLD speaker aggregated: what AS4_PATH says predates that.
                return;
            }
            if let Some(real) = self.aggregator {
                *aggregator = real;
            }
        }
        if let (Some(path), Some(as4)) = (&mut attributes.as_path, self.path) {
            *path = std::mem::take(path).merge_as4(as4);
        }
    }
}

fn decode_one(
    flags: u8,
    code: u8,
    value: &[u8],
    raw: &[u8],
    ctx: &SessionContext,
    out: &mut Decoded,
    as4: &mut As4,
) -> Result<(), DecodeError> {
    let Some(kind) = expected_kind(code) else {
        return keep_unknown(flags, code, value, raw, &mut out.attributes);
    };
    if flags & KIND != kind {
        // RFC 7606 3 c: the attribute is malformed.
        return Err(attribute_error(
            code,
            ATTRIBUTE_FLAGS,
            raw,
            Reason::AttributeFlags { code, flags },
        ));
    }
    let attributes = &mut out.attributes;
    let asn_len = if ctx.four_octet_as { 4 } else { 2 };
    match code {
        ORIGIN => {
            let &[origin] = value else {
                return Err(length_error(code, raw, value.len()));
            };
            attributes.origin = Some(match origin {
                0 => Origin::Igp,
                1 => Origin::Egp,
                2 => Origin::Incomplete,
                other => {
                    return Err(attribute_error(
                        code,
                        INVALID_ORIGIN,
                        raw,
                        Reason::InvalidOrigin(other),
                    ));
                }
            });
        }
        AS_PATH => {
            let path = AsPath::decode(value, asn_len)
                .map_err(|reason| attribute_error(code, MALFORMED_AS_PATH, raw, reason))?;
            attributes.as_path = Some(path);
        }
        NEXT_HOP => out.next_hop = Some(Ipv4Addr::from(u32_value(code, raw, value)?)),
        MULTI_EXIT_DISC => attributes.med = Some(u32_value(code, raw, value)?),
        LOCAL_PREF => attributes.local_pref = Some(u32_value(code, raw, value)?),
        ATOMIC_AGGREGATE if value.is_empty() => attributes.atomic_aggregate = true,
        AGGREGATOR | AS4_AGGREGATOR => {
            let len = if code == AGGREGATOR { asn_len } else { 4 };
            if value.len() != len + 4 {
                return Err(length_error(code, raw, value.len()));
            }
            let asn = value[..len]
                .iter()
                .fold(0u32, |a, &b| (a << 8) | u32::from(b));
            let address = Ipv4Addr::new(value[len], value[len + 1], value[len + 2], value[len + 3]);
            let aggregator = Aggregator { asn, address };
            match code {
                AGGREGATOR => attributes.aggregator = Some(aggregator),
                // RFC 6793 4.1: a NEW speaker ignores AS4_* from a NEW speaker.
                _ if !ctx.four_octet_as => as4.aggregator = Some(aggregator),
                _ => {}
            }
        }
        AS4_PATH if !ctx.four_octet_as => {
            let path = AsPath::decode(value, 4)
                .map_err(|reason| attribute_error(code, MALFORMED_AS_PATH, raw, reason))?;
            if path.segments.iter().any(|s| s.kind.is_confederation()) {
                return Err(attribute_error(
                    code,
                    MALFORMED_AS_PATH,
                    raw,
                    Reason::ConfederationInAs4Path,
                ));
            }
            as4.path = Some(path);
        }
        AS4_PATH => {}
        COMMUNITIES => {
            attributes.communities = communities::decode_list(value, communities::community)
                .ok_or_else(|| length_error(code, raw, value.len()))?;
        }
        ORIGINATOR_ID => {
            attributes.originator_id = Some(Ipv4Addr::from(u32_value(code, raw, value)?))
        }
        CLUSTER_LIST => {
            attributes.cluster_list =
                communities::decode_list(value, |b: &[u8; 4]| Ipv4Addr::from(*b))
                    .ok_or_else(|| length_error(code, raw, value.len()))?;
        }
        EXTENDED_COMMUNITIES => {
            attributes.extended_communities =
                communities::decode_list(value, communities::extended)
                    .ok_or_else(|| length_error(code, raw, value.len()))?;
        }
        LARGE_COMMUNITY => {
            attributes.large_communities = communities::decode_list(value, communities::large)
                .ok_or_else(|| length_error(code, raw, value.len()))?;
        }
        MP_REACH_NLRI => {
            out.mp_reach =
                Some(MpReach::decode(value, ctx).map_err(|e| e.shift(raw.len() - value.len()))?)
        }
        MP_UNREACH_NLRI => {
            out.mp_unreach =
                Some(MpUnreach::decode(value, ctx).map_err(|e| e.shift(raw.len() - value.len()))?)
        }
        // ATOMIC_AGGREGATE with a value.
        _ => return Err(length_error(code, raw, value.len())),
    }
    Ok(())
}

/// An attribute of unknown type: well-known ones cannot be handled (RFC 4271 6.3),
/// optional transitive ones are kept, optional non-transitive ones dropped.
fn keep_unknown(
    flags: u8,
    code: u8,
    value: &[u8],
    raw: &[u8],
    attributes: &mut Attributes,
) -> Result<(), DecodeError> {
    if flags & OPTIONAL == 0 {
        return Err(DecodeError::reset(
            UPDATE_MESSAGE,
            UNRECOGNIZED_WELL_KNOWN,
            raw.to_vec(),
            Reason::UnrecognizedWellKnown(code),
        ));
    }
    if flags & TRANSITIVE != 0 {
        let attribute = RawAttribute {
            // Whoever passes this on did not understand it: mark it Partial now so
            // the value compares equal however many hops it crossed.
            flags: (flags & (KIND | PARTIAL)) | PARTIAL,
            code,
            value: value.to_vec(),
        };
        let at = attributes.unknown.partition_point(|a| a.code < code);
        attributes.unknown.insert(at, attribute);
    }
    Ok(())
}

/// Writes an attribute header, with a 2-byte length only when needed.
fn header(out: &mut BytesMut, flags: u8, code: u8, len: usize) -> Result<(), EncodeError> {
    if let Ok(short) = u8::try_from(len) {
        out.put_u8(flags & !EXTENDED_LENGTH);
        out.put_u8(code);
        out.put_u8(short);
    } else {
        let long =
            u16::try_from(len).map_err(|_| EncodeError::AttributeTooLong { code, length: len })?;
        out.put_u8(flags | EXTENDED_LENGTH);
        out.put_u8(code);
        out.put_u16(long);
    }
    Ok(())
}

/// Writes MP_UNREACH_NLRI (first, as RFC 7606 5.1 asks of MP attributes).
pub(crate) fn encode_mp_unreach(
    unreach: &MpUnreach,
    ctx: &SessionContext,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    header(out, OPTIONAL, MP_UNREACH_NLRI, unreach.encoded_len(ctx))?;
    unreach.encode(ctx, out)
}

pub(crate) fn encode_mp_reach(
    reach: &MpReach,
    ctx: &SessionContext,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    header(out, OPTIONAL, MP_REACH_NLRI, reach.encoded_len(ctx))?;
    reach.encode(ctx, out)
}

/// Starts an MP_REACH_NLRI whose NLRI are written afterwards: always a 2-byte
/// length, returned position to patch with [`finish_mp_reach`].
pub(crate) fn start_mp_reach(afi: super::Afi, next_hop: &NextHop, out: &mut BytesMut) -> usize {
    out.put_u8(OPTIONAL | EXTENDED_LENGTH);
    out.put_u8(MP_REACH_NLRI);
    let at = out.len();
    out.put_u16(0);
    MpReach::encode_head(afi, next_hop, out);
    at
}

/// Patches the length of an MP_REACH_NLRI begun by [`start_mp_reach`].
pub(crate) fn finish_mp_reach(out: &mut BytesMut, at: usize) -> Result<(), EncodeError> {
    let len = out.len() - at - 2;
    let len = u16::try_from(len).map_err(|_| EncodeError::AttributeTooLong {
        code: MP_REACH_NLRI,
        length: len,
    })?;
    out[at..at + 2].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Writes the attributes other than MP ones, in type code order; `next_hop` is the
/// NEXT_HOP attribute (IPv4 NLRI in the UPDATE's own field).
pub(crate) fn encode(
    attributes: &Attributes,
    next_hop: Option<Ipv4Addr>,
    ctx: &SessionContext,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let asn_len = if ctx.four_octet_as { 4 } else { 2 };
    let well_known = TRANSITIVE;
    let optional_transitive = OPTIONAL | TRANSITIVE;
    if let Some(origin) = attributes.origin {
        header(out, well_known, ORIGIN, 1)?;
        out.put_u8(match origin {
            Origin::Igp => 0,
            Origin::Egp => 1,
            Origin::Incomplete => 2,
        });
    }
    if let Some(path) = &attributes.as_path {
        header(out, well_known, AS_PATH, path.encoded_len(asn_len))?;
        path.encode(asn_len, out);
    }
    if let Some(next_hop) = next_hop {
        header(out, well_known, NEXT_HOP, 4)?;
        out.put_slice(&next_hop.octets());
    }
    if let Some(med) = attributes.med {
        header(out, OPTIONAL, MULTI_EXIT_DISC, 4)?;
        out.put_u32(med);
    }
    if let Some(local_pref) = attributes.local_pref {
        header(out, well_known, LOCAL_PREF, 4)?;
        out.put_u32(local_pref);
    }
    if attributes.atomic_aggregate {
        header(out, well_known, ATOMIC_AGGREGATE, 0)?;
    }
    let aggregator_as4 = attributes
        .aggregator
        .filter(|a| !ctx.four_octet_as && a.asn > u32::from(u16::MAX));
    if let Some(aggregator) = attributes.aggregator {
        header(out, optional_transitive, AGGREGATOR, asn_len + 4)?;
        if ctx.four_octet_as {
            out.put_u32(aggregator.asn);
        } else {
            out.put_u16(u16::try_from(aggregator.asn).unwrap_or(AS_TRANS));
        }
        out.put_slice(&aggregator.address.octets());
    }
    if !attributes.communities.is_empty() {
        header(
            out,
            optional_transitive,
            COMMUNITIES,
            attributes.communities.len() * 4,
        )?;
        for c in &attributes.communities {
            out.put_u32(c.0);
        }
    }
    if let Some(originator) = attributes.originator_id {
        header(out, OPTIONAL, ORIGINATOR_ID, 4)?;
        out.put_slice(&originator.octets());
    }
    if !attributes.cluster_list.is_empty() {
        header(
            out,
            OPTIONAL,
            CLUSTER_LIST,
            attributes.cluster_list.len() * 4,
        )?;
        for id in &attributes.cluster_list {
            out.put_slice(&id.octets());
        }
    }
    if !attributes.extended_communities.is_empty() {
        let list = &attributes.extended_communities;
        header(
            out,
            optional_transitive,
            EXTENDED_COMMUNITIES,
            list.len() * 8,
        )?;
        for c in list {
            out.put_slice(&c.0);
        }
    }
    if !ctx.four_octet_as
        && let Some(path) = attributes
            .as_path
            .as_ref()
            .filter(|p| p.has_four_octet_asns())
    {
        let as4 = path.without_confederations();
        header(out, optional_transitive, AS4_PATH, as4.encoded_len(4))?;
        as4.encode(4, out);
    }
    if let Some(aggregator) = aggregator_as4 {
        header(out, optional_transitive, AS4_AGGREGATOR, 8)?;
        out.put_u32(aggregator.asn);
        out.put_slice(&aggregator.address.octets());
    }
    if !attributes.large_communities.is_empty() {
        let list = &attributes.large_communities;
        header(out, optional_transitive, LARGE_COMMUNITY, list.len() * 12)?;
        for c in list {
            communities::put_large(c, out);
        }
    }
    for raw in &attributes.unknown {
        header(out, raw.flags, raw.code, raw.value.len())?;
        out.put_slice(&raw.value);
    }
    Ok(())
}
