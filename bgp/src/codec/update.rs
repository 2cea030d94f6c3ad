//! UPDATE (RFC 4271 4.3), End-of-RIB (RFC 4724 2) and the message-level checks of
//! RFC 7606.
//!
//! ```text
//! +-----------------------------+----------------------------+
//! | withdrawn routes length (2) | withdrawn routes           |
//! +-----------------------------+----------------------------+
//! | total path attribute len (2)| path attributes            |
//! +-----------------------------+----------------------------+
//! | NLRI (rest of the message)                               |
//! +----------------------------------------------------------+
//! ```

use std::net::Ipv4Addr;

use bytes::{BufMut, BytesMut};

use super::attributes::{self, Attributes, MpReach, MpUnreach};
use super::context::SessionContext;
use super::error::{DecodeError, EncodeError, Outcome, Reason};
use super::iana::attribute::{AS_PATH, MP_UNREACH_NLRI, NEXT_HOP, ORIGIN};
use super::iana::error::{MALFORMED_ATTRIBUTE_LIST, MISSING_WELL_KNOWN, UPDATE_MESSAGE};
use super::nlri::{self, Nlri};
use super::{Afi, wire};

/// An UPDATE as on the wire: IPv4 routes in the message's own fields, other
/// families (and IPv4 with IPv6 next hops) in the MP attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    /// The Withdrawn Routes field (IPv4).
    pub withdrawn: Vec<Nlri>,
    pub attributes: Attributes,
    /// The NEXT_HOP attribute, for the IPv4 routes in `nlri`.
    pub next_hop: Option<Ipv4Addr>,
    /// The NLRI field (IPv4).
    pub nlri: Vec<Nlri>,
    pub mp_reach: Option<MpReach>,
    pub mp_unreach: Option<MpUnreach>,
    /// RFC 7606 errors the session survives, found while decoding. When one says
    /// treat-as-withdraw (see [`Update::treat_as_withdraw`]) every route in `nlri`
    /// and `mp_reach` must be handled as withdrawn. Never encoded.
    pub malformed: Vec<DecodeError>,
}

impl Update {
    /// The End-of-RIB marker of `afi` (RFC 4724 2): an empty UPDATE for IPv4, an
    /// empty MP_UNREACH_NLRI otherwise.
    pub fn end_of_rib(afi: Afi) -> Self {
        match afi {
            Afi::Ipv4 => Self::default(),
            Afi::Ipv6 => Self {
                mp_unreach: Some(MpUnreach {
                    afi,
                    nlri: Vec::new(),
                }),
                ..Self::default()
            },
        }
    }

    /// The family this UPDATE marks the End-of-RIB of, if it is such a marker.
    pub fn end_of_rib_family(&self) -> Option<Afi> {
        // A discarded attribute (an MP_UNREACH_NLRI of a family the codec does not
        // carry, say) leaves an UPDATE that only looks empty.
        let bare = self.malformed.is_empty()
            && self.withdrawn.is_empty()
            && self.nlri.is_empty()
            && self.next_hop.is_none()
            && self.mp_reach.is_none()
            && self.attributes == Attributes::default();
        match &self.mp_unreach {
            _ if !bare => None,
            None => Some(Afi::Ipv4),
            Some(unreach) if unreach.nlri.is_empty() => Some(unreach.afi),
            Some(_) => None,
        }
    }

    /// True when RFC 7606 says this UPDATE's announcements are withdrawals.
    pub fn treat_as_withdraw(&self) -> bool {
        self.malformed
            .iter()
            .any(|e| e.outcome == Outcome::TreatAsWithdraw)
    }

    /// Decodes an UPDATE body (after the header); offsets are into the body.
    pub(crate) fn decode(body: &[u8], ctx: &SessionContext) -> Result<Self, DecodeError> {
        let overrun = |field, length, available, at| {
            DecodeError::reset(
                UPDATE_MESSAGE,
                MALFORMED_ATTRIBUTE_LIST,
                Vec::new(),
                Reason::LengthOverrun {
                    field,
                    length,
                    available,
                },
            )
            .at(at)
        };
        let Ok((rest, withdrawn_len)) = wire::u16(body) else {
            return Err(overrun("withdrawn routes", 2, body.len(), 0));
        };
        let withdrawn_len = usize::from(withdrawn_len);
        let Some(withdrawn) = rest.get(..withdrawn_len) else {
            return Err(overrun("withdrawn routes", withdrawn_len, rest.len(), 0));
        };
        let withdrawn = nlri::decode(withdrawn, Afi::Ipv4, ctx.receives_path_ids(Afi::Ipv4))
            .map_err(|e| e.shift(2))?;
        let rest = &rest[withdrawn_len..];
        let attributes_at = 4 + withdrawn_len;
        let Ok((rest, attributes_len)) = wire::u16(rest) else {
            return Err(overrun("path attributes", 2, rest.len(), attributes_at - 2));
        };
        let attributes_len = usize::from(attributes_len);
        let Some(attribute_bytes) = rest.get(..attributes_len) else {
            return Err(overrun(
                "path attributes",
                attributes_len,
                rest.len(),
                attributes_at - 2,
            ));
        };
        let mut update = Self {
            withdrawn,
            ..Self::default()
        };
        let seen = attributes::decode(attribute_bytes, ctx, &mut update)
            .map_err(|e| e.shift(attributes_at))?;
        for error in &mut update.malformed {
            error.offset += attributes_at;
        }
        let nlri_at = attributes_at + attributes_len;
        update.nlri = nlri::decode(
            &rest[attributes_len..],
            Afi::Ipv4,
            ctx.receives_path_ids(Afi::Ipv4),
        )
        .map_err(|e| e.shift(nlri_at))?;

        let reachable =
            !update.nlri.is_empty() || update.mp_reach.as_ref().is_some_and(|r| !r.nlri.is_empty());
        if !reachable && !attribute_bytes.is_empty() && !seen.only(MP_UNREACH_NLRI) {
            // RFC 7606 5.2: attributes but no reachable NLRI is not a shape any
            // speaker sends, so the NLRI may have been misparsed: any error worse
            // than attribute discard resets the session.
            if let Some(error) = update
                .malformed
                .iter()
                .find(|e| e.outcome != Outcome::AttributeDiscard)
            {
                return Err(error.clone().escalate());
            }
        }
        if reachable {
            // RFC 7606 3 d: missing well-known attributes make the routes withdrawn
            // (NEXT_HOP only belongs with the NLRI field).
            let next_hop = !update.nlri.is_empty();
            for code in [ORIGIN, AS_PATH, NEXT_HOP] {
                if (code != NEXT_HOP || next_hop) && !seen.contains(code) {
                    update.malformed.push(
                        DecodeError::withdraw(
                            MISSING_WELL_KNOWN,
                            vec![code],
                            Reason::MissingWellKnown(code),
                        )
                        .at(attributes_at),
                    );
                }
            }
        }
        Ok(update)
    }

    pub(crate) fn encode_body(
        &self,
        ctx: &SessionContext,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let v4_ids = ctx.sends_path_ids(Afi::Ipv4);
        let at = out.len();
        out.put_u16(0);
        nlri::encode_all(&self.withdrawn, Afi::Ipv4, v4_ids, out)?;
        patch_len(out, at, "withdrawn routes")?;
        let at = out.len();
        out.put_u16(0);
        if let Some(unreach) = &self.mp_unreach {
            attributes::encode_mp_unreach(unreach, ctx, out)?;
        }
        if let Some(reach) = &self.mp_reach {
            attributes::encode_mp_reach(reach, ctx, out)?;
        }
        attributes::encode(&self.attributes, self.next_hop, ctx, out)?;
        patch_len(out, at, "path attributes")?;
        nlri::encode_all(&self.nlri, Afi::Ipv4, v4_ids, out)
    }
}

/// Writes the length of the field that follows the 2-byte length at `at`.
pub(crate) fn patch_len(
    out: &mut BytesMut,
    at: usize,
    field: &'static str,
) -> Result<(), EncodeError> {
    let length = out.len() - at - 2;
    let len = u16::try_from(length).map_err(|_| EncodeError::FieldTooLong {
        field,
        length,
        max: usize::from(u16::MAX),
    })?;
    out[at..at + 2].copy_from_slice(&len.to_be_bytes());
    Ok(())
}
