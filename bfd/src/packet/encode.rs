//! Encoding a [`ControlPacket`]: version 1, Multipoint clear, the A bit and Length
//! from the authentication section.

use bytes::{BufMut, BytesMut};

use super::{ControlPacket, HEADER_LEN, VERSION};

impl ControlPacket {
    /// The encoded size: Length.
    pub fn len(&self) -> usize {
        HEADER_LEN + self.authentication.as_ref().map_or(0, |a| a.len())
    }

    /// Never true: a packet has at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Appends the packet to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        let flag = |set: bool, bit: u8| if set { bit } else { 0 };
        out.reserve(self.len());
        out.put_u8(VERSION << 5 | self.diagnostic.code());
        out.put_u8(
            self.state.bits() << 6
                | flag(self.poll, 0x20)
                | flag(self.final_, 0x10)
                | flag(self.control_plane_independent, 0x08)
                | flag(self.authentication.is_some(), 0x04)
                | flag(self.demand, 0x02),
        );
        out.put_u8(self.detect_mult);
        // At most 24 + 231 (see `Authentication::len`).
        out.put_u8(self.len() as u8);
        out.put_u32(self.my_discriminator);
        out.put_u32(self.your_discriminator);
        out.put_u32(self.desired_min_tx_us);
        out.put_u32(self.required_min_rx_us);
        out.put_u32(self.required_min_echo_rx_us);
        if let Some(authentication) = &self.authentication {
            authentication.encode(out);
        }
    }

    /// The packet as bytes, for sending.
    pub fn to_bytes(&self) -> BytesMut {
        let mut out = BytesMut::with_capacity(self.len());
        self.encode(&mut out);
        out
    }
}
