//! The BFD Control packet (RFC 5880 section 4): its fields as values, the decoder
//! with every discard rule of section 6.8.6 that a packet alone can break, and the
//! encoder.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       My Discriminator                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                      Your Discriminator                       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Desired Min TX Interval                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                   Required Min RX Interval                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 Required Min Echo RX Interval                 |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Auth Type   |   Auth Len    |    Authentication Data...     |   (A bit set)
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The version is always 1 and the Multipoint bit always 0 (a packet saying otherwise
//! is discarded), so neither is a field; the A bit is `authentication.is_some()`
//! and Length follows from the contents.

mod auth;
mod decode;
mod encode;
#[cfg(test)]
mod tests;

pub use auth::{AuthError, Authentication};
pub use decode::DecodeError;

use std::fmt;

/// The protocol version this codec speaks (RFC 5880 section 4.1).
pub const VERSION: u8 = 1;
/// Length of a Control packet without an authentication section.
pub const HEADER_LEN: usize = 24;

/// A BFD Control packet. Intervals are in microseconds, as on the wire. The
/// default has every field zero (not a valid packet: Detect Mult and My
/// Discriminator must be set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlPacket {
    pub diagnostic: Diagnostic,
    pub state: State,
    /// P: the sender asks for verification of a parameter change (a Poll Sequence).
    pub poll: bool,
    /// F: the answer to a Poll.
    pub final_: bool,
    /// C: the sender's BFD does not share fate with its control plane.
    pub control_plane_independent: bool,
    /// D: the sender wants Demand mode.
    pub demand: bool,
    pub detect_mult: u8,
    pub my_discriminator: u32,
    pub your_discriminator: u32,
    pub desired_min_tx_us: u32,
    pub required_min_rx_us: u32,
    pub required_min_echo_rx_us: u32,
    /// The authentication section; present exactly when the A bit is set.
    pub authentication: Option<Authentication>,
}

/// The session state a packet reports (RFC 5880 section 4.1, "Sta").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum State {
    AdminDown,
    /// Where every session starts (RFC 5880 section 6.8.1).
    #[default]
    Down,
    Init,
    Up,
}

impl State {
    pub fn from_bits(bits: u8) -> Self {
        match bits & 0b11 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }

    pub fn bits(self) -> u8 {
        match self {
            State::AdminDown => 0,
            State::Down => 1,
            State::Init => 2,
            State::Up => 3,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Why the sender's session last changed state (RFC 5880 section 4.1, "Diag").
/// Codes 9 to 31 are reserved; they are carried, not rejected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Diagnostic {
    #[default]
    NoDiagnostic,
    ControlDetectionTimeExpired,
    EchoFunctionFailed,
    NeighborSignaledSessionDown,
    ForwardingPlaneReset,
    PathDown,
    ConcatenatedPathDown,
    AdministrativelyDown,
    ReverseConcatenatedPathDown,
    /// A reserved code (9 to 31).
    Other(u8),
}

impl Diagnostic {
    pub fn from_code(code: u8) -> Self {
        match code & 0x1f {
            0 => Diagnostic::NoDiagnostic,
            1 => Diagnostic::ControlDetectionTimeExpired,
            2 => Diagnostic::EchoFunctionFailed,
            3 => Diagnostic::NeighborSignaledSessionDown,
            4 => Diagnostic::ForwardingPlaneReset,
            5 => Diagnostic::PathDown,
            6 => Diagnostic::ConcatenatedPathDown,
            7 => Diagnostic::AdministrativelyDown,
            8 => Diagnostic::ReverseConcatenatedPathDown,
            other => Diagnostic::Other(other),
        }
    }

    pub fn code(self) -> u8 {
        match self {
            Diagnostic::NoDiagnostic => 0,
            Diagnostic::ControlDetectionTimeExpired => 1,
            Diagnostic::EchoFunctionFailed => 2,
            Diagnostic::NeighborSignaledSessionDown => 3,
            Diagnostic::ForwardingPlaneReset => 4,
            Diagnostic::PathDown => 5,
            Diagnostic::ConcatenatedPathDown => 6,
            Diagnostic::AdministrativelyDown => 7,
            Diagnostic::ReverseConcatenatedPathDown => 8,
            Diagnostic::Other(code) => code & 0x1f,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Diagnostic::NoDiagnostic => "no diagnostic",
            Diagnostic::ControlDetectionTimeExpired => "control detection time expired",
            Diagnostic::EchoFunctionFailed => "echo function failed",
            Diagnostic::NeighborSignaledSessionDown => "neighbor signaled session down",
            Diagnostic::ForwardingPlaneReset => "forwarding plane reset",
            Diagnostic::PathDown => "path down",
            Diagnostic::ConcatenatedPathDown => "concatenated path down",
            Diagnostic::AdministrativelyDown => "administratively down",
            Diagnostic::ReverseConcatenatedPathDown => "reverse concatenated path down",
            Diagnostic::Other(code) => return write!(f, "reserved diagnostic {code}"),
        })
    }
}
