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

impl RouteRefreshKind {
    fn code(self) -> u8 {
        match self {
            RouteRefreshKind::Request => 0,
            RouteRefreshKind::Begin => 1,
            RouteRefreshKind::End => 2,
            RouteRefreshKind::Other(code) => code,
        }
    }

    fn from_code(code: u8) -> Self {
        match code {
            0 => RouteRefreshKind::Request,
            1 => RouteRefreshKind::Begin,
            2 => RouteRefreshKind::End,
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

    pub(crate) fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let &[a0, a1, subtype, safi] = body else {
            // RFC 7313 5: the data of this error is the whole message.
            let mut data = Vec::with_capacity(super::HEADER_LEN + body.len());
            data.extend_from_slice(&[0xff; 16]);
            data.extend_from_slice(&((super::HEADER_LEN + body.len()) as u16).to_be_bytes());
            data.push(super::iana::message::ROUTE_REFRESH);
            data.extend_from_slice(body);
            return Err(DecodeError::reset(
                ROUTE_REFRESH_MESSAGE,
                INVALID_MESSAGE_LENGTH,
                data,
                Reason::RouteRefreshLength(super::HEADER_LEN + body.len()),
            ));
        };
        Ok(Self {
            family: Family {
                afi: u16::from_be_bytes([a0, a1]),
                safi,
            },
            kind: RouteRefreshKind::from_code(subtype),
        })
    }

    pub(crate) fn encode_body(&self, out: &mut BytesMut) {
        out.put_u16(self.family.afi);
        out.put_u8(self.kind.code());
        out.put_u8(self.family.safi);
    }
}
