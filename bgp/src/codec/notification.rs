//! NOTIFICATION (RFC 4271 4.5) and the shutdown communication of RFC 9003.
//!
//! ```text
//! +--------+--------+----------------------+
//! | code   | subcode| data (variable)      |
//! +--------+--------+----------------------+
//! ```

use bytes::{BufMut, BytesMut};

use super::error::{DecodeError, Reason};
use super::iana::error::{
    CEASE, CeaseSubcode, FSM_ERROR, FsmSubcode, HOLD_TIMER_EXPIRED, MESSAGE_HEADER, OPEN_MESSAGE,
};

/// A NOTIFICATION; `data` is kept as sent (its meaning depends on code and subcode).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

/// RFC 9003: a shutdown communication is at most 255 bytes of UTF-8.
pub const MAX_SHUTDOWN_COMMUNICATION: usize = 255;

const SHUTDOWN: u8 = CeaseSubcode::AdministrativeShutdown as u8;
const RESET: u8 = CeaseSubcode::AdministrativeReset as u8;

impl Notification {
    /// Cease (RFC 4486) with this subcode and data.
    pub fn cease(subcode: CeaseSubcode, data: Vec<u8>) -> Self {
        Self {
            code: CEASE,
            subcode: subcode as u8,
            data,
        }
    }

    /// Cease/Administrative Shutdown with a shutdown communication (RFC 9003), cut
    /// at a character boundary to fit 255 bytes.
    pub fn administrative_shutdown(message: &str) -> Self {
        Self::cease(CeaseSubcode::AdministrativeShutdown, communication(message))
    }

    /// Cease/Administrative Reset with a shutdown communication (RFC 9003).
    pub fn administrative_reset(message: &str) -> Self {
        Self::cease(CeaseSubcode::AdministrativeReset, communication(message))
    }

    /// Cease/Maximum Number of Prefixes Reached (RFC 4486 4): the data is AFI,
    /// SAFI and the limit. tabby's limit counts every family, so it names IPv4
    /// unicast.
    pub fn maximum_prefixes_reached(limit: usize) -> Self {
        let mut data = vec![0, 1, 1];
        data.extend_from_slice(&u32::try_from(limit).unwrap_or(u32::MAX).to_be_bytes());
        Self::cease(CeaseSubcode::MaximumPrefixesReached, data)
    }

    /// Cease/Connection Collision Resolution (RFC 4486 4), closing the connection
    /// that lost (RFC 4271 6.8).
    pub fn connection_collision_resolution() -> Self {
        Self::cease(CeaseSubcode::ConnectionCollisionResolution, Vec::new())
    }

    /// Hold Timer Expired (RFC 4271 6.5).
    pub fn hold_timer_expired() -> Self {
        Self {
            code: HOLD_TIMER_EXPIRED,
            subcode: 0,
            data: Vec::new(),
        }
    }

    /// Finite State Machine Error with the RFC 6608 subcode of the state.
    pub fn fsm_error(subcode: FsmSubcode) -> Self {
        Self {
            code: FSM_ERROR,
            subcode: subcode as u8,
            data: Vec::new(),
        }
    }

    /// OPEN Message Error (RFC 4271 6.2) with this subcode and data.
    pub fn open_error(subcode: u8, data: Vec<u8>) -> Self {
        Self {
            code: OPEN_MESSAGE,
            subcode,
            data,
        }
    }

    /// The RFC 9003 shutdown communication, when this is an Administrative Shutdown or
    /// Reset whose data holds a well-formed one. Anything else (no data, a length that
    /// overruns, invalid UTF-8) gives `None`: RFC 9003 says to ignore it.
    pub fn shutdown_communication(&self) -> Option<&str> {
        if self.code != CEASE || !matches!(self.subcode, SHUTDOWN | RESET) {
            return None;
        }
        let (&length, rest) = self.data.split_first()?;
        let text = rest.get(..usize::from(length))?;
        std::str::from_utf8(text).ok()
    }

    pub(crate) fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        match body {
            [code, subcode, data @ ..] => Ok(Self {
                code: *code,
                subcode: *subcode,
                data: data.to_vec(),
            }),
            // The framing layer rejects bodies under 2 bytes; kept for safety.
            _ => Err(DecodeError::reset(
                MESSAGE_HEADER,
                super::iana::error::BAD_MESSAGE_LENGTH,
                Vec::new(),
                Reason::Truncated {
                    field: "NOTIFICATION",
                },
            )),
        }
    }

    pub(crate) fn encode_body(&self, out: &mut BytesMut) {
        out.put_u8(self.code);
        out.put_u8(self.subcode);
        out.put_slice(&self.data);
    }
}

/// The RFC 9003 data: a length octet and at most 255 bytes of the message.
fn communication(message: &str) -> Vec<u8> {
    let mut end = message.len().min(MAX_SHUTDOWN_COMMUNICATION);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let mut data = Vec::with_capacity(end + 1);
    // `end` is at most 255, so it fits the length octet.
    data.push(end as u8);
    data.extend_from_slice(&message.as_bytes()[..end]);
    data
}
