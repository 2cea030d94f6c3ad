//! The one error the decoder returns: what was wrong, where, the NOTIFICATION that
//! RFC 4271 would send for it, and what RFC 7606 says to do instead.

use std::fmt;

use super::notification::Notification;

/// A malformed message or part of one. `offset` counts bytes from the start of the
/// message (its marker). Session-reset errors are returned by
/// [`decode_message`](super::decode_message); treat-as-withdraw and attribute-discard
/// errors are recorded in [`Update::malformed`](super::Update::malformed) and the
/// UPDATE is still returned.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{reason} at byte {offset}: {outcome}, NOTIFICATION {}/{}", notification.code, notification.subcode)]
pub struct DecodeError {
    pub offset: usize,
    pub outcome: Outcome,
    /// The NOTIFICATION RFC 4271 prescribes; sent only when `outcome` is
    /// [`Outcome::SessionReset`].
    pub notification: Notification,
    pub reason: Reason,
}

/// What the speaker must do about a malformed message (RFC 7606 section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Send the NOTIFICATION and close the session.
    SessionReset,
    /// Keep the session; handle every route the UPDATE announces as withdrawn.
    TreatAsWithdraw,
    /// Keep the session and the routes; the attribute was dropped.
    AttributeDiscard,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::SessionReset => "session reset",
            Outcome::TreatAsWithdraw => "treat-as-withdraw",
            Outcome::AttributeDiscard => "attribute discard",
        })
    }
}

/// What exactly was wrong, naming the field and the value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Reason {
    #[error("marker is not all ones")]
    BadMarker,
    #[error("message length {0} out of range for its type")]
    BadMessageLength(u16),
    #[error("unknown message type {0}")]
    BadMessageType(u8),
    #[error("{field} ends early")]
    Truncated { field: &'static str },
    #[error("{field} has {extra} bytes left over")]
    TrailingBytes { field: &'static str, extra: usize },
    #[error("{field} length {length} overruns the {available} bytes left")]
    LengthOverrun {
        field: &'static str,
        length: usize,
        available: usize,
    },
    #[error("BGP version {0} is not 4")]
    UnsupportedVersion(u8),
    #[error("hold time {0} is neither 0 nor at least 3")]
    UnacceptableHoldTime(u16),
    #[error("BGP identifier 0.0.0.0")]
    ZeroBgpIdentifier,
    #[error("unsupported optional parameter type {0}")]
    UnsupportedOptionalParameter(u8),
    #[error("capability {code} is malformed")]
    MalformedCapability { code: u8 },
    #[error("prefix length {length} exceeds {max}")]
    BadPrefixLength { length: u8, max: u8 },
    #[error("attribute {code} has flags {flags:#04x}")]
    AttributeFlags { code: u8, flags: u8 },
    #[error("attribute {code} has length {length}")]
    AttributeLength { code: u8, length: usize },
    #[error("attribute {0} appears twice")]
    DuplicateAttribute(u8),
    #[error("unrecognized well-known attribute {0}")]
    UnrecognizedWellKnown(u8),
    #[error("well-known attribute {0} is missing")]
    MissingWellKnown(u8),
    #[error("ORIGIN value {0}")]
    InvalidOrigin(u8),
    #[error("AS_PATH segment type {0}")]
    BadSegmentType(u8),
    #[error("AS_PATH segment of zero ASes")]
    EmptySegment,
    #[error("AS4_PATH carries confederation segments (dropped, the rest kept)")]
    ConfederationInAs4Path,
    #[error("AS_PATH from an external peer carries confederation segments")]
    ConfederationFromExternalPeer,
    #[error("attribute {0} from an external peer")]
    InternalAttributeFromExternalPeer(u8),
    #[error("attribute {0} from a 4-octet AS speaker")]
    As4FromNewSpeaker(u8),
    #[error("AFI {afi} SAFI {safi} is not supported")]
    UnsupportedFamily { afi: u16, safi: u8 },
    #[error("next hop of {length} bytes for AFI {afi}")]
    BadNextHopLength { afi: u16, length: usize },
    #[error("ROUTE-REFRESH length {0} is not 23")]
    RouteRefreshLength(usize),
}

impl DecodeError {
    fn new(outcome: Outcome, code: u8, subcode: u8, data: Vec<u8>, reason: Reason) -> Self {
        Self {
            offset: 0,
            outcome,
            notification: Notification {
                code,
                subcode,
                data,
            },
            reason,
        }
    }

    /// An error that closes the session with NOTIFICATION `code`/`subcode`/`data`.
    pub(crate) fn reset(code: u8, subcode: u8, data: Vec<u8>, reason: Reason) -> Self {
        Self::new(Outcome::SessionReset, code, subcode, data, reason)
    }

    /// An UPDATE error handled by treat-as-withdraw (RFC 7606).
    pub(crate) fn withdraw(subcode: u8, data: Vec<u8>, reason: Reason) -> Self {
        use super::iana::error::UPDATE_MESSAGE;
        Self::new(
            Outcome::TreatAsWithdraw,
            UPDATE_MESSAGE,
            subcode,
            data,
            reason,
        )
    }

    /// An UPDATE error handled by attribute discard (RFC 7606).
    pub(crate) fn discard(subcode: u8, data: Vec<u8>, reason: Reason) -> Self {
        use super::iana::error::UPDATE_MESSAGE;
        Self::new(
            Outcome::AttributeDiscard,
            UPDATE_MESSAGE,
            subcode,
            data,
            reason,
        )
    }

    /// The same error found `by` bytes further into the message: decoders report
    /// offsets into their own input and callers shift them to theirs.
    pub(crate) fn shift(mut self, by: usize) -> Self {
        self.offset += by;
        self
    }

    /// The same error with the session-reset outcome (RFC 7606 5.2).
    pub(crate) fn escalate(mut self) -> Self {
        self.outcome = Outcome::SessionReset;
        self
    }

    /// The same error at `offset` into the decoder's input.
    pub(crate) fn at(mut self, offset: usize) -> Self {
        self.offset = offset;
        self
    }
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("message of {length} bytes exceeds the session's maximum of {max}")]
    MessageTooLong { length: usize, max: usize },
    #[error("attribute {code} of {length} bytes exceeds 65535")]
    AttributeTooLong { code: u8, length: usize },
    #[error("{field} of {length} bytes exceeds its {max}-byte length field")]
    FieldTooLong {
        field: &'static str,
        length: usize,
        max: usize,
    },
    #[error("{0} is not a prefix of the family being encoded")]
    WrongFamily(ipnet::IpNet),
    #[error("an IPv4 next hop cannot reach IPv6 prefixes")]
    NextHopFamily,
    #[error("an IPv6 next hop for IPv4 prefixes needs the extended next hop capability")]
    ExtendedNextHopNotNegotiated,
}
