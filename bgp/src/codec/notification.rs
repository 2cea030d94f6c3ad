//! NOTIFICATION (RFC 4271 4.5) and the shutdown communication of RFC 9003.
//!
//! ```text
//! +--------+--------+----------------------+
//! | code   | subcode| data (variable)      |
//! +--------+--------+----------------------+
//! ```

use bytes::{BufMut, BytesMut};

use super::error::{DecodeError, Reason};
use super::iana::error::{ADMINISTRATIVE_RESET, ADMINISTRATIVE_SHUTDOWN, CEASE, MESSAGE_HEADER};

/// A NOTIFICATION; `data` is kept as sent (its meaning depends on code and subcode).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

/// RFC 9003: a shutdown communication is at most 255 bytes of UTF-8.
pub const MAX_SHUTDOWN_COMMUNICATION: usize = 255;

impl Notification {
    /// Cease with a shutdown communication (RFC 9003); `reset` picks Administrative
    /// Reset over Administrative Shutdown. The message is cut at a character boundary
    /// to fit 255 bytes.
    pub fn cease(reset: bool, message: &str) -> Self {
        let mut end = message.len().min(MAX_SHUTDOWN_COMMUNICATION);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let mut data = Vec::with_capacity(end + 1);
        // `end` is at most 255, so it fits the length octet.
        data.push(end as u8);
        data.extend_from_slice(&message.as_bytes()[..end]);
        Self {
            code: CEASE,
            subcode: if reset {
                ADMINISTRATIVE_RESET
            } else {
                ADMINISTRATIVE_SHUTDOWN
            },
            data,
        }
    }

    /// The RFC 9003 shutdown communication, when this is an Administrative Shutdown or
    /// Reset whose data holds a well-formed one. Anything else (no data, a length that
    /// overruns, invalid UTF-8) gives `None`: RFC 9003 says to ignore it.
    pub fn shutdown_communication(&self) -> Option<&str> {
        if self.code != CEASE
            || !matches!(self.subcode, ADMINISTRATIVE_SHUTDOWN | ADMINISTRATIVE_RESET)
        {
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
