//! The BGP-4 wire codec: every message of RFC 4271 and the extensions tabby speaks,
//! decoded with nom from byte slices and encoded with `bytes`.
//!
//! The codec is sans-IO and stateless: the caller passes the [`SessionContext`]
//! negotiated in the OPENs. [`frame`] tells a socket reader whether a whole message
//! has arrived; [`decode_message`] decodes it; [`Message::encode`] writes one message
//! and [`UpdatePacker`] packs many routes into as few UPDATEs as fit.

mod attributes;
mod capability;
mod context;
mod error;
mod framing;
pub mod iana;
mod nlri;
mod notification;
mod open;
mod packer;
mod route_refresh;
mod update;
mod wire;

pub use attributes::{
    Aggregator, AsPath, Attributes, Community, ExtendedCommunity, LargeCommunity, MpReach,
    MpUnreach, NextHop, Origin, PartialFlags, RawAttribute, Segment, SegmentKind,
};
pub use capability::{AddPathMode, Capability, ExtendedNextHop, GracefulRestart};
pub use context::{AddPath, MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN, SessionContext};
pub use error::{DecodeError, EncodeError, Outcome, Reason};
pub use framing::{Frame, HEADER_LEN, MessageKind, frame};
pub use iana::AS_TRANS;
pub use iana::error::{CeaseSubcode, FsmSubcode};
pub use nlri::Nlri;
pub use notification::{MAX_SHUTDOWN_COMMUNICATION, Notification};
pub use open::{Open, ParameterLayout};
pub use packer::UpdatePacker;
pub use route_refresh::{RouteRefresh, RouteRefreshKind};
pub use update::Update;

use bytes::BytesMut;

/// An address family as negotiated in capabilities; values the codec does not know
/// are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Family {
    pub afi: u16,
    pub safi: u8,
}

impl Family {
    pub const IPV4_UNICAST: Family = Family {
        afi: iana::afi::IPV4,
        safi: iana::afi::SAFI_UNICAST,
    };
    pub const IPV6_UNICAST: Family = Family {
        afi: iana::afi::IPV6,
        safi: iana::afi::SAFI_UNICAST,
    };
}

/// The unicast families whose routes the codec decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Afi {
    Ipv4,
    Ipv6,
}

impl Afi {
    pub fn family(self) -> Family {
        match self {
            Afi::Ipv4 => Family::IPV4_UNICAST,
            Afi::Ipv6 => Family::IPV6_UNICAST,
        }
    }

    /// The unicast family of `family`, if the codec decodes its routes.
    pub fn of(family: Family) -> Option<Afi> {
        match family {
            Family::IPV4_UNICAST => Some(Afi::Ipv4),
            Family::IPV6_UNICAST => Some(Afi::Ipv6),
            _ => None,
        }
    }

    fn of_prefix(prefix: &ipnet::IpNet) -> Afi {
        match prefix {
            ipnet::IpNet::V4(_) => Afi::Ipv4,
            ipnet::IpNet::V6(_) => Afi::Ipv6,
        }
    }
}

/// One BGP message.
// UPDATEs are nearly all of a session's traffic; boxing them to shrink the rare
// variants would cost an allocation per message and gain nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

/// Decodes the message at the start of `buf`. `Ok(None)`: not all of it has arrived;
/// `Ok(Some((message, len)))`: consume `len` bytes. `Err` means reset the session
/// with the error's NOTIFICATION; RFC 7606 errors that keep the session are
/// reported inside the returned [`Update`].
pub fn decode_message(
    buf: &[u8],
    ctx: &SessionContext,
) -> Result<Option<(Message, usize)>, DecodeError> {
    let Some(frame) = frame(buf, ctx)? else {
        return Ok(None);
    };
    let body = &buf[HEADER_LEN..frame.len];
    let shift = |e: DecodeError| e.shift(HEADER_LEN);
    let message = match frame.kind {
        MessageKind::Open => Message::Open(Open::decode(body).map_err(shift)?),
        MessageKind::Update => {
            let mut update = Update::decode(body, ctx).map_err(shift)?;
            for error in &mut update.malformed {
                error.offset += HEADER_LEN;
            }
            Message::Update(update)
        }
        MessageKind::Notification => {
            Message::Notification(Notification::decode(body).map_err(shift)?)
        }
        MessageKind::Keepalive => Message::Keepalive,
        MessageKind::RouteRefresh => {
            Message::RouteRefresh(RouteRefresh::decode(body).map_err(shift)?)
        }
    };
    Ok(Some((message, frame.len)))
}

impl Message {
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::Open(_) => MessageKind::Open,
            Message::Update(_) => MessageKind::Update,
            Message::Notification(_) => MessageKind::Notification,
            Message::Keepalive => MessageKind::Keepalive,
            Message::RouteRefresh(_) => MessageKind::RouteRefresh,
        }
    }

    /// Appends this message to `out`. On error `out` is left as it was.
    pub fn encode(&self, ctx: &SessionContext, out: &mut BytesMut) -> Result<(), EncodeError> {
        let start = framing::start(out, self.kind());
        let body = match self {
            Message::Open(open) => open.encode_body(out),
            Message::Update(update) => update.encode_body(ctx, out),
            Message::Notification(notification) => {
                notification.encode_body(out);
                Ok(())
            }
            Message::Keepalive => Ok(()),
            Message::RouteRefresh(refresh) => {
                refresh.encode_body(out);
                Ok(())
            }
        };
        if let Err(error) = body {
            out.truncate(start);
            return Err(error);
        }
        framing::finish(out, start, ctx)
    }
}
