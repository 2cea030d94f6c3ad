//! Decoding an UPDATE's attribute list: the outcomes of RFC 7606, and on 2-octet
//! sessions the AS4_PATH / AS4_AGGREGATOR merge of RFC 6793.

use std::net::Ipv4Addr;

use super::{
    Aggregator, AsPath, Attributes, MpReach, MpUnreach, Origin, RawAttribute, communities,
};
use crate::codec::context::SessionContext;
use crate::codec::error::{DecodeError, Outcome, Reason};
use crate::codec::iana::AS_TRANS;
use crate::codec::iana::attribute::*;
use crate::codec::iana::error::{
    ATTRIBUTE_FLAGS, ATTRIBUTE_LENGTH, INVALID_ORIGIN, MALFORMED_AS_PATH, MALFORMED_ATTRIBUTE_LIST,
    OPTIONAL_ATTRIBUTE, UNRECOGNIZED_WELL_KNOWN, UPDATE_MESSAGE,
};
use crate::codec::iana::flags::{EXTENDED_LENGTH, KIND, OPTIONAL, PARTIAL, TRANSITIVE};
use crate::codec::update::Update;

/// The attribute type codes an UPDATE carried, well-formed or not.
#[derive(Debug, Default)]
pub(crate) struct Seen([u64; 4]);

impl Seen {
    /// True when an attribute of type `code` was present.
    pub fn contains(&self, code: u8) -> bool {
        self.0[usize::from(code >> 6)] & (1 << (code & 63)) != 0
    }

    /// True when `code` is the only attribute type that was present.
    pub fn only(&self, code: u8) -> bool {
        let mut alone = [0u64; 4];
        alone[usize::from(code >> 6)] = 1 << (code & 63);
        self.0 == alone
    }

    fn insert(&mut self, code: u8) {
        self.0[usize::from(code >> 6)] |= 1 << (code & 63);
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
/// RFC 6793 6, RFC 8092 6).
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

/// Decodes an UPDATE's path attributes into `update` (its attributes, NEXT_HOP and
/// MP attributes; in place, the UPDATE is large to move). Errors with a
/// session-reset outcome are returned; the others are added to `update.malformed`
/// with offsets into `input`.
pub(crate) fn decode(
    input: &[u8],
    ctx: &SessionContext,
    update: &mut Update,
) -> Result<Seen, DecodeError> {
    let mut seen = Seen::default();
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
            update.malformed.push(
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
            update.malformed.push(
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
        let result = if seen.contains(code) {
            // RFC 7606 3 g: later copies are dropped, but two MP attributes leave
            // the routes unknowable.
            Err(if code == MP_REACH_NLRI || code == MP_UNREACH_NLRI {
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
            })
        } else {
            seen.insert(code);
            decode_one(flags, code, value, raw, ctx, update, &mut as4)
        };
        if let Err(error) = result {
            let error = error.shift(pos);
            match error.outcome {
                Outcome::SessionReset => return Err(error),
                _ => update.malformed.push(error),
            }
        }
        pos += raw.len();
    }
    if !ctx.four_octet_as {
        as4.merge_into(&mut update.attributes);
    }
    Ok(seen)
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
        if let (Some(aggregator), Some(real)) = (&mut attributes.aggregator, self.aggregator) {
            if aggregator.asn != u32::from(AS_TRANS) {
                // An OLD speaker aggregated after the NEW ones: both AS4 attributes
                // predate the aggregate and are ignored.
                return;
            }
            *aggregator = real;
        }
        if let (Some(path), Some(as4)) = (&mut attributes.as_path, self.path) {
            *path = std::mem::take(path).merge_as4(as4);
        }
    }
}

/// Decodes one attribute that appeared for the first time into `update`. An error
/// with the attribute-discard outcome may still have kept part of it (AS4_PATH
/// without its confederation segments).
fn decode_one(
    flags: u8,
    code: u8,
    value: &[u8],
    raw: &[u8],
    ctx: &SessionContext,
    update: &mut Update,
    as4: &mut As4,
) -> Result<(), DecodeError> {
    let Some(kind) = expected_kind(code) else {
        return keep_unknown(flags, code, value, raw, &mut update.attributes);
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
    if ctx.external && matches!(code, LOCAL_PREF | ORIGINATOR_ID | CLUSTER_LIST) {
        // RFC 7606 7.5, 7.9, 7.10: these belong inside an AS.
        return Err(DecodeError::discard(
            MALFORMED_ATTRIBUTE_LIST,
            raw.to_vec(),
            Reason::InternalAttributeFromExternalPeer(code),
        ));
    }
    if ctx.four_octet_as && matches!(code, AS4_PATH | AS4_AGGREGATOR) {
        // RFC 6793 4.1: a NEW speaker discards them from a NEW speaker.
        return Err(DecodeError::discard(
            OPTIONAL_ATTRIBUTE,
            raw.to_vec(),
            Reason::As4FromNewSpeaker(code),
        ));
    }
    let attributes = &mut update.attributes;
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
            if ctx.external && path.segments.iter().any(|s| s.kind.is_confederation()) {
                // RFC 5065 5: a malformed AS_PATH, treat-as-withdraw (RFC 7606 3 e).
                return Err(attribute_error(
                    code,
                    MALFORMED_AS_PATH,
                    raw,
                    Reason::ConfederationFromExternalPeer,
                ));
            }
            attributes.as_path = Some(path);
        }
        NEXT_HOP => update.next_hop = Some(Ipv4Addr::from(u32_value(code, raw, value)?)),
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
                _ => as4.aggregator = Some(aggregator),
            }
        }
        AS4_PATH => {
            // RFC 7606 4: only AS_PATH and ATOMIC_AGGREGATE may be empty.
            if value.is_empty() {
                return Err(length_error(code, raw, 0));
            }
            let path = AsPath::decode(value, 4)
                .map_err(|reason| attribute_error(code, MALFORMED_AS_PATH, raw, reason))?;
            let confederations = path.segments.iter().any(|s| s.kind.is_confederation());
            // RFC 6793 6: confederation segments are dropped, the rest is used.
            as4.path = Some(path.without_confederations());
            if confederations {
                return Err(attribute_error(
                    code,
                    MALFORMED_AS_PATH,
                    raw,
                    Reason::ConfederationInAs4Path,
                ));
            }
        }
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
            update.mp_reach =
                Some(MpReach::decode(value, ctx).map_err(|e| e.shift(raw.len() - value.len()))?)
        }
        MP_UNREACH_NLRI => {
            update.mp_unreach =
                Some(MpUnreach::decode(value, ctx).map_err(|e| e.shift(raw.len() - value.len()))?)
        }
        // ATOMIC_AGGREGATE with a value.
        _ => return Err(length_error(code, raw, value.len())),
    }
    if flags & PARTIAL != 0
        && matches!(
            code,
            AGGREGATOR | COMMUNITIES | EXTENDED_COMMUNITIES | LARGE_COMMUNITY
        )
    {
        update.attributes.partial.insert(code);
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
