//! Writing attributes: MP_UNREACH_NLRI and MP_REACH_NLRI first (RFC 7606 5.1),
//! then the others in type code order; on 2-octet sessions AS4_PATH and
//! AS4_AGGREGATOR carry what does not fit (RFC 6793 4.2.2).

use std::net::Ipv4Addr;

use bytes::{BufMut, BytesMut};

use super::{Attributes, MpReach, MpUnreach, NextHop, Origin, communities};
use crate::codec::Afi;
use crate::codec::context::SessionContext;
use crate::codec::error::EncodeError;
use crate::codec::iana::AS_TRANS;
use crate::codec::iana::attribute::*;
use crate::codec::iana::flags::{EXTENDED_LENGTH, OPTIONAL, PARTIAL, TRANSITIVE};

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
pub(crate) fn start_mp_reach(afi: Afi, next_hop: &NextHop, out: &mut BytesMut) -> usize {
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
    // Known optional transitive attributes keep a Partial bit they arrived with.
    let optional_transitive = |code| {
        let partial = if attributes.partial.contains(code) {
            PARTIAL
        } else {
            0
        };
        OPTIONAL | TRANSITIVE | partial
    };
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
        header(
            out,
            optional_transitive(AGGREGATOR),
            AGGREGATOR,
            asn_len + 4,
        )?;
        if ctx.four_octet_as {
            out.put_u32(aggregator.asn);
        } else {
            out.put_u16(u16::try_from(aggregator.asn).unwrap_or(AS_TRANS));
        }
        out.put_slice(&aggregator.address.octets());
    }
    if !attributes.communities.is_empty() {
        let list = &attributes.communities;
        header(
            out,
            optional_transitive(COMMUNITIES),
            COMMUNITIES,
            list.len() * 4,
        )?;
        for c in list {
            out.put_u32(c.0);
        }
    }
    if let Some(originator) = attributes.originator_id {
        header(out, OPTIONAL, ORIGINATOR_ID, 4)?;
        out.put_slice(&originator.octets());
    }
    if !attributes.cluster_list.is_empty() {
        let list = &attributes.cluster_list;
        header(out, OPTIONAL, CLUSTER_LIST, list.len() * 4)?;
        for id in list {
            out.put_slice(&id.octets());
        }
    }
    if !attributes.extended_communities.is_empty() {
        let list = &attributes.extended_communities;
        let flags = optional_transitive(EXTENDED_COMMUNITIES);
        header(out, flags, EXTENDED_COMMUNITIES, list.len() * 8)?;
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
        header(out, OPTIONAL | TRANSITIVE, AS4_PATH, as4.encoded_len(4))?;
        as4.encode(4, out);
    }
    if let Some(aggregator) = aggregator_as4 {
        header(out, OPTIONAL | TRANSITIVE, AS4_AGGREGATOR, 8)?;
        out.put_u32(aggregator.asn);
        out.put_slice(&aggregator.address.octets());
    }
    if !attributes.large_communities.is_empty() {
        let list = &attributes.large_communities;
        let flags = optional_transitive(LARGE_COMMUNITY);
        header(out, flags, LARGE_COMMUNITY, list.len() * 12)?;
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
