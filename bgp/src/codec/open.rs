//! OPEN (RFC 4271 4.2), with optional parameters in the RFC 9072 extended form when
//! they exceed 255 bytes.
//!
//! ```text
//! +---------+---------+-----------+-----------------+--------------+------------+
//! | version | my AS   | hold time | BGP identifier  | opt parm len | parameters |
//! | 1       | 2       | 2         | 4               | 1            | variable   |
//! +---------+---------+-----------+-----------------+--------------+------------+
//! extended (RFC 9072): opt parm len = 255, then type 255 and a 2-byte length;
//! each parameter's length is then 2 bytes too.
//! ```

use std::net::Ipv4Addr;

use bytes::{BufMut, BytesMut};
use nom::Parser;

use super::capability::{self, Capability};
use super::error::{DecodeError, EncodeError, Reason};
use super::iana::AS_TRANS;
use super::iana::error::{
    BAD_BGP_IDENTIFIER, OPEN_MESSAGE, UNACCEPTABLE_HOLD_TIME, UNSPECIFIC,
    UNSUPPORTED_OPTIONAL_PARAMETER, UNSUPPORTED_VERSION,
};
use super::iana::parameter::{CAPABILITIES, EXTENDED_LENGTH};
use super::wire;

const VERSION: u8 = 4;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Open {
    /// The 2-octet "My Autonomous System" field: AS_TRANS when the real AS needs
    /// four octets (see [`Open::asn`]).
    pub my_as: u16,
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    pub capabilities: Vec<Capability>,
    /// How the capabilities are spread over optional parameters.
    pub layout: ParameterLayout,
    /// The RFC 9072 extended form was used although the short one fits (FRR's
    /// `extended-optional-parameters`); the encoder uses it anyway when needed.
    pub extended_form: bool,
}

/// BIRD puts every capability in one optional parameter; FRR and GoBGP send one
/// parameter per capability. Both are valid (RFC 5492 4); decoding records which,
/// so that re-encoding gives the same bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ParameterLayout {
    #[default]
    OneParameter,
    ParameterPerCapability,
}

impl Open {
    /// An OPEN for `asn` (AS_TRANS in the 2-octet field when it does not fit) with
    /// the given capabilities; a 4-octet AS capability is the caller's to add.
    pub fn new(asn: u32, hold_time: u16, bgp_id: Ipv4Addr, capabilities: Vec<Capability>) -> Self {
        Self {
            my_as: u16::try_from(asn).unwrap_or(AS_TRANS),
            hold_time,
            bgp_id,
            capabilities,
            layout: ParameterLayout::OneParameter,
            extended_form: false,
        }
    }

    /// The sender's AS: from the 4-octet AS capability when present (RFC 6793).
    pub fn asn(&self) -> u32 {
        self.capabilities
            .iter()
            .find_map(|c| match c {
                Capability::FourOctetAs(asn) => Some(*asn),
                _ => None,
            })
            .unwrap_or(u32::from(self.my_as))
    }

    pub(crate) fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let truncated = |input: &[u8]| {
            DecodeError::reset(
                OPEN_MESSAGE,
                UNSPECIFIC,
                Vec::new(),
                Reason::Truncated { field: "OPEN" },
            )
            .at(wire::offset(body, input))
        };
        let (rest, (version, my_as, hold_time, bgp_id, params_len)) =
            (wire::u8, wire::u16, wire::u16, wire::ipv4, wire::u8)
                .parse(body)
                .map_err(|_| truncated(body))?;
        if version != VERSION {
            return Err(DecodeError::reset(
                OPEN_MESSAGE,
                UNSUPPORTED_VERSION,
                u16::from(VERSION).to_be_bytes().to_vec(),
                Reason::UnsupportedVersion(version),
            ));
        }
        if hold_time == 1 || hold_time == 2 {
            return Err(DecodeError::reset(
                OPEN_MESSAGE,
                UNACCEPTABLE_HOLD_TIME,
                Vec::new(),
                Reason::UnacceptableHoldTime(hold_time),
            )
            .at(3));
        }
        if bgp_id.is_unspecified() {
            return Err(DecodeError::reset(
                OPEN_MESSAGE,
                BAD_BGP_IDENTIFIER,
                Vec::new(),
                Reason::ZeroBgpIdentifier,
            )
            .at(5));
        }
        // RFC 9072: a length of 255 followed by type 255 announces the extended form.
        let extended = params_len == EXTENDED_LENGTH && rest.first() == Some(&EXTENDED_LENGTH);
        let (mut params, declared) = if extended {
            let (rest, (_, len)) = (wire::u8, wire::u16)
                .parse(rest)
                .map_err(|_| truncated(rest))?;
            (rest, usize::from(len))
        } else {
            (rest, usize::from(params_len))
        };
        if params.len() != declared {
            return Err(DecodeError::reset(
                OPEN_MESSAGE,
                UNSPECIFIC,
                Vec::new(),
                Reason::LengthOverrun {
                    field: "optional parameters",
                    length: declared,
                    available: params.len(),
                },
            )
            .at(wire::offset(body, params)));
        }
        let mut capabilities = Vec::new();
        let mut count = 0;
        // Whether every parameter would have fitted the short form.
        let mut short_len = 0;
        let mut short_fits = true;
        while !params.is_empty() {
            let at = wire::offset(body, params);
            let header = if extended {
                (wire::u8, wire::u16).parse(params)
            } else {
                (wire::u8, wire::u8.map(u16::from)).parse(params)
            };
            let (rest, (kind, len)) = header.map_err(|_| truncated(params))?;
            let (rest, value) = wire::bytes(usize::from(len))(rest).map_err(|_| truncated(rest))?;
            if kind != CAPABILITIES {
                return Err(DecodeError::reset(
                    OPEN_MESSAGE,
                    UNSUPPORTED_OPTIONAL_PARAMETER,
                    Vec::new(),
                    Reason::UnsupportedOptionalParameter(kind),
                )
                .at(at));
            }
            short_len += 2 + value.len();
            short_fits &= value.len() <= usize::from(u8::MAX);
            let value_at = wire::offset(body, value);
            capabilities.extend(capability::decode_all(value).map_err(|e| e.shift(value_at))?);
            count += 1;
            params = rest;
        }
        let layout = if count > 1 && count == capabilities.len() {
            ParameterLayout::ParameterPerCapability
        } else {
            ParameterLayout::OneParameter
        };
        Ok(Self {
            my_as,
            hold_time,
            bgp_id,
            capabilities,
            layout,
            extended_form: extended && short_fits && short_len <= usize::from(EXTENDED_LENGTH),
        })
    }

    pub(crate) fn encode_body(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u8(VERSION);
        out.put_u16(self.my_as);
        out.put_u16(self.hold_time);
        out.put_u32(self.bgp_id.into());
        // Encode the capabilities once, then frame them as parameters.
        let mut caps = BytesMut::new();
        let mut bounds = Vec::with_capacity(self.capabilities.len());
        for capability in &self.capabilities {
            let start = caps.len();
            capability.encode(&mut caps)?;
            bounds.push(start..caps.len());
        }
        let groups: Vec<&[u8]> = match self.layout {
            ParameterLayout::OneParameter if caps.is_empty() => Vec::new(),
            ParameterLayout::OneParameter => vec![&caps[..]],
            ParameterLayout::ParameterPerCapability => {
                bounds.iter().map(|r| &caps[r.clone()]).collect()
            }
        };
        let short_len: usize = groups.iter().map(|g| 2 + g.len()).sum();
        // 255 is still the short form: the extended one needs a first type of 255,
        // and capabilities are type 2.
        let fits_short = !self.extended_form
            && short_len <= usize::from(EXTENDED_LENGTH)
            && groups.iter().all(|g| g.len() <= usize::from(u8::MAX));
        if fits_short {
            // Checked just above: both lengths fit one octet.
            out.put_u8(short_len as u8);
            for group in groups {
                out.put_u8(CAPABILITIES);
                out.put_u8(group.len() as u8);
                out.put_slice(group);
            }
        } else {
            let long_len: usize = groups.iter().map(|g| 3 + g.len()).sum();
            let too_long = |length| EncodeError::FieldTooLong {
                field: "optional parameters",
                length,
                max: usize::from(u16::MAX),
            };
            out.put_u8(EXTENDED_LENGTH);
            out.put_u8(EXTENDED_LENGTH);
            out.put_u16(u16::try_from(long_len).map_err(|_| too_long(long_len))?);
            for group in groups {
                out.put_u8(CAPABILITIES);
                out.put_u16(u16::try_from(group.len()).map_err(|_| too_long(group.len()))?);
                out.put_slice(group);
            }
        }
        Ok(())
    }
}
