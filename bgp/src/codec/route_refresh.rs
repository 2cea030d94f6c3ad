//! ROUTE-REFRESH (RFC 2918) with the BoRR/EoRR subtypes of RFC 7313.
//!
//! ```text
//! +-----------+----------+------+
//! | AFI (2)   | subtype  | SAFI |
//! +-----------+----------+------+
//! ```

use bytes::{BufMut, BytesMut};

use super::Family;
use super::error::{DecodeError, Reason};
use super::iana::error::{INVALID_MESSAGE_LENGTH, ROUTE_REFRESH_MESSAGE};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteRefresh {
    pub family: Family,
    pub kind: RouteRefreshKind,
}

/// The RFC 7313 message subtype; a receiver ignores subtypes it does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteRefreshKind {
    Request,
    /// Beginning of Route Refresh.
    Begin,
    /// End of Route Refresh.
    End,
    Other(u8),
}

const REQUEST: u8 = 0;
const BEGIN: u8 = 1;
const END: u8 = 2;

impl RouteRefreshKind {
    fn code(self) -> u8 {
        match self {
            RouteRefreshKind::Request => REQUEST,
            RouteRefreshKind::Begin => BEGIN,
            RouteRefreshKind::End => END,
            RouteRefreshKind::Other(code) => code,
        }
    }

    fn from_code(code: u8) -> Self {
        match code {
            REQUEST => RouteRefreshKind::Request,
            BEGIN => RouteRefreshKind::Begin,
            END => RouteRefreshKind::End,
            other => RouteRefreshKind::Other(other),
        }
    }
}

impl RouteRefresh {
    pub fn request(family: Family) -> Self {
        Self {
            family,
            kind: RouteRefreshKind::Request,
        }
    }

    /// RFC 7313 5: a BoRR or EoRR must be exactly 23 bytes. A request may carry
    /// Outbound Route Filter entries (RFC 5291); tabby never announces ORF, so
    /// they are ignored and the request stands for a full refresh.
    pub(crate) fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let header = match body {
            &[a0, a1, subtype, safi, ref orf @ ..]
                if orf.is_empty() || !matches!(subtype, BEGIN | END) =>
            {
                Some((u16::from_be_bytes([a0, a1]), subtype, safi))
            }
            _ => None,
        };
        let Some((afi, subtype, safi)) = header else {
            // RFC 7313 5: the data of this error is the whole message.
            let len = super::HEADER_LEN + body.len();
            let mut data = Vec::with_capacity(len);
            data.extend_from_slice(&[0xff; 16]);
            // The framing layer bounds `len` by the session's maximum, 65535.
            data.extend_from_slice(&(len as u16).to_be_bytes());
            data.push(super::iana::message::ROUTE_REFRESH);
            data.extend_from_slice(body);
            return Err(DecodeError::reset(
                ROUTE_REFRESH_MESSAGE,
                INVALID_MESSAGE_LENGTH,
                data,
                Reason::RouteRefreshLength(len),
            ));
        };
        Ok(Self {
            family: Family { afi, safi },
            kind: RouteRefreshKind::from_code(subtype),
        })
    }

    pub(crate) fn encode_body(&self, out: &mut BytesMut) {
        out.put_u16(self.family.afi);
        out.put_u8(self.kind.code());
        out.put_u8(self.family.safi);
    }
}
