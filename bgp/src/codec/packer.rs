//! Packs routes into as few UPDATEs as the session's maximum message size allows:
//! the attributes are encoded once and copied into each message, then NLRI are
//! added until the next one would not fit.

use bytes::{BufMut, BytesMut};

use super::attributes::{self, Attributes, NextHop};
use super::context::SessionContext;
use super::error::EncodeError;
use super::framing::{self, HEADER_LEN, MessageKind};
use super::iana::attribute::MP_UNREACH_NLRI;
use super::iana::flags::{EXTENDED_LENGTH, OPTIONAL};
use super::nlri::{self, Nlri};
use super::update::{Update, patch_len};
use super::{Afi, Message};

/// Writes UPDATEs for one session. Holds a scratch buffer so that packing many
/// attribute sets does not allocate each time.
#[derive(Debug)]
pub struct UpdatePacker {
    ctx: SessionContext,
    scratch: BytesMut,
}

impl UpdatePacker {
    pub fn new(ctx: SessionContext) -> Self {
        Self {
            ctx,
            scratch: BytesMut::new(),
        }
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Announces `nlri` (one family) with `attributes` via `next_hop`; returns the
    /// number of UPDATEs written. IPv4 routes with an IPv4 next hop go in the NLRI
    /// field with NEXT_HOP; everything else in MP_REACH_NLRI.
    pub fn announce(
        &mut self,
        attributes: &Attributes,
        next_hop: NextHop,
        nlri: &[Nlri],
        out: &mut BytesMut,
    ) -> Result<usize, EncodeError> {
        let Some(first) = nlri.first() else {
            return Ok(0);
        };
        let afi = first.afi();
        if let Some(other) = nlri.iter().find(|n| n.afi() != afi) {
            return Err(EncodeError::WrongFamily(other.prefix));
        }
        next_hop.check(afi, &self.ctx)?;
        let ids = self.ctx.sends_path_ids(afi);
        self.scratch.clear();
        let plain_v4 = match (afi, next_hop) {
            (Afi::Ipv4, NextHop::V4(address)) => Some(address),
            _ => None,
        };
        attributes::encode(attributes, plain_v4, &self.ctx, &mut self.scratch)?;
        let max = self.ctx.max_len(MessageKind::Update.code());
        // Header, the two length fields, the attributes, and for MP the MP_REACH
        // header with its next hop.
        let mp_overhead = match plain_v4 {
            Some(_) => 0,
            None => 4 + 5 + next_hop.encoded_len(),
        };
        let fixed = HEADER_LEN + 4 + self.scratch.len() + mp_overhead;
        if fixed + nlri::MAX_ENCODED > max {
            return Err(EncodeError::MessageTooLong {
                length: fixed + nlri::MAX_ENCODED,
                max,
            });
        }
        let mut messages = 0;
        let mut rest = nlri;
        while !rest.is_empty() {
            let start = framing::start(out, MessageKind::Update);
            out.put_u16(0);
            let attributes_at = out.len();
            out.put_u16(0);
            let mp_at = plain_v4
                .is_none()
                .then(|| attributes::start_mp_reach(afi, &next_hop, out));
            let room = max - fixed;
            let taken = match mp_at {
                Some(at) => {
                    let (taken, _) = nlri::write_fitting(rest, ids, room, out);
                    attributes::finish_mp_reach(out, at)?;
                    out.put_slice(&self.scratch);
                    patch_len(out, attributes_at, "path attributes")?;
                    taken
                }
                None => {
                    out.put_slice(&self.scratch);
                    patch_len(out, attributes_at, "path attributes")?;
                    nlri::write_fitting(rest, ids, room, out).0
                }
            };
            framing::finish(out, start, &self.ctx)?;
            rest = &rest[taken..];
            messages += 1;
        }
        Ok(messages)
    }

    /// Withdraws `nlri` (either family, IPv4 in the Withdrawn Routes field, IPv6 in
    /// MP_UNREACH_NLRI); returns the number of UPDATEs written.
    pub fn withdraw(&mut self, nlri: &[Nlri], out: &mut BytesMut) -> Result<usize, EncodeError> {
        let max = self.ctx.max_len(MessageKind::Update.code());
        let mut messages = 0;
        for afi in [Afi::Ipv4, Afi::Ipv6] {
            let ids = self.ctx.sends_path_ids(afi);
            let mut pending = nlri.iter().filter(|n| n.afi() == afi).peekable();
            while pending.peek().is_some() {
                let start = framing::start(out, MessageKind::Update);
                let fixed = match afi {
                    // Header, both length fields.
                    Afi::Ipv4 => HEADER_LEN + 4,
                    // And the MP_UNREACH header with its family.
                    Afi::Ipv6 => HEADER_LEN + 4 + 4 + 3,
                };
                let mut room = max - fixed;
                let (length_at, mp) = match afi {
                    Afi::Ipv4 => {
                        let at = out.len();
                        out.put_u16(0);
                        (at, None)
                    }
                    Afi::Ipv6 => {
                        out.put_u16(0);
                        let attributes_at = out.len();
                        out.put_u16(0);
                        out.put_u8(OPTIONAL | EXTENDED_LENGTH);
                        out.put_u8(MP_UNREACH_NLRI);
                        let at = out.len();
                        out.put_u16(0);
                        let family = afi.family();
                        out.put_u16(family.afi);
                        out.put_u8(family.safi);
                        (at, Some(attributes_at))
                    }
                };
                while let Some(n) = pending.next_if(|n| n.encoded_len(ids) <= room) {
                    room -= n.encoded_len(ids);
                    n.encode(ids, out);
                }
                patch_len(out, length_at, "withdrawn routes")?;
                match mp {
                    Some(attributes_at) => patch_len(out, attributes_at, "path attributes")?,
                    None => out.put_u16(0),
                }
                framing::finish(out, start, &self.ctx)?;
                messages += 1;
            }
        }
        Ok(messages)
    }

    /// Writes the End-of-RIB marker of `afi`.
    pub fn end_of_rib(&self, afi: Afi, out: &mut BytesMut) -> Result<(), EncodeError> {
        Message::Update(Update::end_of_rib(afi)).encode(&self.ctx, out)
    }

    /// Writes the Beginning or End of Route Refresh marker of `afi` (RFC 7313).
    pub fn refresh_marker(
        &self,
        afi: Afi,
        kind: super::RouteRefreshKind,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let family = afi.family();
        Message::RouteRefresh(super::RouteRefresh { family, kind }).encode(&self.ctx, out)
    }
}
