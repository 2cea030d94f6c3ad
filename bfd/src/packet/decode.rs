//! Decoding one UDP payload into a [`ControlPacket`], applying the discard rules of
//! RFC 5880 section 6.8.6 that need nothing but the packet, in the RFC's order. The
//! rules that need a session (an unknown Your Discriminator, the A bit without
//! authentication configured) are the session's and the driver's.

use super::{AuthError, Authentication, ControlPacket, Diagnostic, HEADER_LEN, State, VERSION};

/// Why a payload was discarded; each variant is one rule of section 6.8.6.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{0} bytes are too few for a BFD Control packet")]
    Truncated(usize),
    #[error("version {0}, not 1")]
    Version(u8),
    #[error("Length {length} is below the minimum {minimum}")]
    LengthTooShort { length: usize, minimum: usize },
    #[error("Length {length} exceeds the {payload}-byte payload")]
    LengthExceedsPayload { length: usize, payload: usize },
    #[error("Detect Mult is zero")]
    ZeroDetectMult,
    #[error("the Multipoint bit is set")]
    Multipoint,
    #[error("My Discriminator is zero")]
    ZeroMyDiscriminator,
    #[error("Your Discriminator is zero while the state is {0}")]
    ZeroYourDiscriminator(State),
    #[error("authentication section: {0}")]
    Authentication(#[from] AuthError),
}

impl DecodeError {
    /// The byte offset of the offending field, from the start of the packet.
    pub fn offset(&self) -> usize {
        match self {
            DecodeError::Truncated(len) => *len,
            DecodeError::Version(_) => 0,
            DecodeError::Multipoint => 1,
            DecodeError::ZeroDetectMult => 2,
            DecodeError::LengthTooShort { .. } | DecodeError::LengthExceedsPayload { .. } => 3,
            DecodeError::ZeroMyDiscriminator => 4,
            DecodeError::ZeroYourDiscriminator(_) => 8,
            DecodeError::Authentication(_) => HEADER_LEN,
        }
    }
}

fn u32_at(payload: &[u8], offset: usize) -> u32 {
    u32::from_be_bytes([
        payload[offset],
        payload[offset + 1],
        payload[offset + 2],
        payload[offset + 3],
    ])
}

impl ControlPacket {
    /// Decodes a UDP payload. Bytes past Length are ignored.
    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        if payload.len() < HEADER_LEN {
            return Err(DecodeError::Truncated(payload.len()));
        }
        let version = payload[0] >> 5;
        if version != VERSION {
            return Err(DecodeError::Version(version));
        }
        let flags = payload[1];
        let authenticated = flags & 0x04 != 0;
        let length = usize::from(payload[3]);
        let minimum = if authenticated {
            HEADER_LEN + 2
        } else {
            HEADER_LEN
        };
        if length < minimum {
            return Err(DecodeError::LengthTooShort { length, minimum });
        }
        if length > payload.len() {
            return Err(DecodeError::LengthExceedsPayload {
                length,
                payload: payload.len(),
            });
        }
        let detect_mult = payload[2];
        if detect_mult == 0 {
            return Err(DecodeError::ZeroDetectMult);
        }
        if flags & 0x01 != 0 {
            return Err(DecodeError::Multipoint);
        }
        let my_discriminator = u32_at(payload, 4);
        if my_discriminator == 0 {
            return Err(DecodeError::ZeroMyDiscriminator);
        }
        let state = State::from_bits(flags >> 6);
        let your_discriminator = u32_at(payload, 8);
        if your_discriminator == 0 && !matches!(state, State::Down | State::AdminDown) {
            return Err(DecodeError::ZeroYourDiscriminator(state));
        }
        let authentication = if authenticated {
            Some(Authentication::decode(&payload[HEADER_LEN..length])?)
        } else {
            None
        };
        Ok(ControlPacket {
            diagnostic: Diagnostic::from_code(payload[0]),
            state,
            poll: flags & 0x20 != 0,
            final_: flags & 0x10 != 0,
            control_plane_independent: flags & 0x08 != 0,
            demand: flags & 0x02 != 0,
            detect_mult,
            my_discriminator,
            your_discriminator,
            desired_min_tx_us: u32_at(payload, 12),
            required_min_rx_us: u32_at(payload, 16),
            required_min_echo_rx_us: u32_at(payload, 20),
            authentication,
        })
    }
}
