//! The 19-byte message header (RFC 4271 4.1), and the framing a socket reader needs:
//! "read more" versus "this stream is broken".
//!
//! ```text
//! +-------------------------------+
//! |      marker (16 x 0xff)       |
//! +---------------+-------+-------+
//! | length (2)    | type  |
//! +---------------+-------+
//! ```

use bytes::{BufMut, BytesMut};

use super::context::SessionContext;
use super::error::{DecodeError, EncodeError, Reason};
use super::iana::error::{
    BAD_MESSAGE_LENGTH, BAD_MESSAGE_TYPE, CONNECTION_NOT_SYNCHRONIZED, MESSAGE_HEADER,
};
use super::iana::message::{KEEPALIVE, NOTIFICATION, OPEN, ROUTE_REFRESH, UPDATE};

pub const HEADER_LEN: usize = 19;
const MARKER: [u8; 16] = [0xff; 16];

/// A complete message's type and length, found at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub kind: MessageKind,
    /// The whole message, header included.
    pub len: usize,
}

/// The message types the codec knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    Open,
    Update,
    Notification,
    Keepalive,
    RouteRefresh,
}

impl MessageKind {
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            OPEN => MessageKind::Open,
            UPDATE => MessageKind::Update,
            NOTIFICATION => MessageKind::Notification,
            KEEPALIVE => MessageKind::Keepalive,
            ROUTE_REFRESH => MessageKind::RouteRefresh,
            _ => return None,
        })
    }

    pub fn code(self) -> u8 {
        match self {
            MessageKind::Open => OPEN,
            MessageKind::Update => UPDATE,
            MessageKind::Notification => NOTIFICATION,
            MessageKind::Keepalive => KEEPALIVE,
            MessageKind::RouteRefresh => ROUTE_REFRESH,
        }
    }

    /// The smallest length RFC 4271 allows. RFC 7313 reports a wrong ROUTE-REFRESH
    /// length with its own error code, so framing only needs its header.
    fn min_len(self) -> usize {
        match self {
            MessageKind::Open => 29,
            MessageKind::Update => 23,
            MessageKind::Notification => 21,
            MessageKind::Keepalive | MessageKind::RouteRefresh => HEADER_LEN,
        }
    }
}

/// Looks at the start of `buf`. `Ok(None)`: the message is not all there yet, read
/// more. `Ok(Some(frame))`: `buf[..frame.len]` is one message. `Err`: the stream is
/// broken (bad marker, length or type) and the session must be reset.
pub fn frame(buf: &[u8], ctx: &SessionContext) -> Result<Option<Frame>, DecodeError> {
    // Reject a bad marker as soon as its bytes arrive rather than waiting for more.
    let seen = buf.len().min(MARKER.len());
    if buf[..seen] != MARKER[..seen] {
        return Err(DecodeError::reset(
            MESSAGE_HEADER,
            CONNECTION_NOT_SYNCHRONIZED,
            Vec::new(),
            Reason::BadMarker,
        ));
    }
    let [.., l0, l1, message_type] = match buf.get(..HEADER_LEN) {
        Some(&[.., l0, l1, t]) => [l0, l1, t],
        _ => return Ok(None),
    };
    let length = u16::from_be_bytes([l0, l1]);
    let len = usize::from(length);
    let Some(kind) = MessageKind::from_code(message_type) else {
        return Err(DecodeError::reset(
            MESSAGE_HEADER,
            BAD_MESSAGE_TYPE,
            vec![message_type],
            Reason::BadMessageType(message_type),
        )
        .at(18));
    };
    let bad_length = len < kind.min_len()
        || len > ctx.max_len(message_type)
        || (message_type == KEEPALIVE && len != HEADER_LEN);
    if bad_length {
        return Err(DecodeError::reset(
            MESSAGE_HEADER,
            BAD_MESSAGE_LENGTH,
            length.to_be_bytes().to_vec(),
            Reason::BadMessageLength(length),
        )
        .at(16));
    }
    Ok((buf.len() >= len).then_some(Frame { kind, len }))
}

/// Starts a message of `kind` in `out`; returns where it starts, for
/// [`finish`].
pub(crate) fn start(out: &mut BytesMut, kind: MessageKind) -> usize {
    let start = out.len();
    out.put_slice(&MARKER);
    out.put_u16(0);
    out.put_u8(kind.code());
    start
}

/// Writes the length of the message begun at `start`, or undoes it when it exceeds
/// the session's maximum.
pub(crate) fn finish(
    out: &mut BytesMut,
    start: usize,
    ctx: &SessionContext,
) -> Result<(), EncodeError> {
    let length = out.len() - start;
    let max = ctx.max_len(out[start + 18]);
    if length > max {
        out.truncate(start);
        return Err(EncodeError::MessageTooLong { length, max });
    }
    // `max` is at most 65535.
    out[start + 16..start + 18].copy_from_slice(&(length as u16).to_be_bytes());
    Ok(())
}
