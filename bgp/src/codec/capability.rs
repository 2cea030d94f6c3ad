//! Capabilities advertised in OPEN (RFC 5492): code, length, value.

use bytes::{BufMut, BytesMut};
use nom::Parser;
use nom::multi::many0;

use super::Family;
use super::error::{DecodeError, EncodeError, Reason};
use super::iana::capability::*;
use super::iana::error::{OPEN_MESSAGE, UNSPECIFIC};
use super::wire::{self, Res};

/// One capability. Unknown codes, and known ones whose RFC says to ignore a value it
/// does not define (ADD-PATH with an unknown mode, a hostname that is not UTF-8),
/// are kept as raw bytes so they can be logged and compared; other malformed known
/// capabilities are an OPEN error.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Capability {
    /// RFC 4760.
    Multiprotocol(Family),
    /// RFC 2918.
    RouteRefresh,
    /// RFC 8950.
    ExtendedNextHop(Vec<ExtendedNextHop>),
    /// RFC 8654.
    ExtendedMessage,
    /// RFC 4724 (and the N bit of RFC 8538).
    GracefulRestart(GracefulRestart),
    /// RFC 6793: the speaker's real AS number.
    FourOctetAs(u32),
    /// RFC 7911.
    AddPath(Vec<(Family, AddPathMode)>),
    /// RFC 7313.
    EnhancedRouteRefresh,
    /// draft-walton-bgp-hostname-capability (FRR, GoBGP): host and domain name.
    Hostname {
        hostname: String,
        domain: String,
    },
    Unknown {
        code: u8,
        value: Vec<u8>,
    },
}

/// An NLRI family that may use next hops of another address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExtendedNextHop {
    /// RFC 8950 encodes the SAFI in two octets here.
    pub nlri: Family,
    pub next_hop_afi: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GracefulRestart {
    /// R: the sender has restarted.
    pub restarting: bool,
    /// N (RFC 8538): graceful restart also covers NOTIFICATIONs.
    pub notification: bool,
    /// Seconds, 12 bits.
    pub restart_time: u16,
    /// Families whose forwarding state survives, with the F bit.
    pub families: Vec<(Family, bool)>,
}

/// Whether a speaker can send or receive several paths per prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddPathMode {
    Receive,
    Send,
    Both,
}

impl AddPathMode {
    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(AddPathMode::Receive),
            2 => Some(AddPathMode::Send),
            3 => Some(AddPathMode::Both),
            _ => None,
        }
    }

    fn code(self) -> u8 {
        match self {
            AddPathMode::Receive => 1,
            AddPathMode::Send => 2,
            AddPathMode::Both => 3,
        }
    }

    /// True when this mode allows `direction` (Receive or Send).
    pub fn includes(self, direction: AddPathMode) -> bool {
        self == AddPathMode::Both || self == direction
    }
}

const GR_RESTARTING: u16 = 0x8000;
const GR_NOTIFICATION: u16 = 0x4000;
const GR_TIME: u16 = 0x0fff;
const GR_FORWARDING: u8 = 0x80;

fn family(input: &[u8]) -> Res<'_, Family> {
    (wire::u16, wire::u8, wire::u8)
        .map(|(afi, _, safi)| Family { afi, safi })
        .parse(input)
}

fn family_then_u8(input: &[u8]) -> Res<'_, (Family, u8)> {
    (wire::u16, wire::u8, wire::u8)
        .map(|(afi, safi, flags)| (Family { afi, safi }, flags))
        .parse(input)
}

fn length_prefixed(input: &[u8]) -> Res<'_, &[u8]> {
    let (input, len) = wire::u8(input)?;
    wire::bytes(usize::from(len))(input)
}

/// What a known capability's value turned out to be.
enum Parsed {
    Known(Capability),
    /// Kept as [`Capability::Unknown`]: its RFC says to ignore it.
    NotUnderstood,
    Malformed,
}

/// All of `value` through `parser`, or nothing.
fn all<'a, T>(
    value: &'a [u8],
    mut parser: impl Parser<&'a [u8], Output = T, Error = nom::error::Error<&'a [u8]>>,
) -> Option<T> {
    match parser.parse(value) {
        Ok(([], out)) => Some(out),
        _ => None,
    }
}

/// Parses the value of a capability this codec knows; `None` for other codes.
fn parse_known(code: u8, value: &[u8]) -> Option<Parsed> {
    let known =
        |capability: Option<Capability>| capability.map_or(Parsed::Malformed, Parsed::Known);
    Some(match code {
        MULTIPROTOCOL => known(all(value, family).map(Capability::Multiprotocol)),
        ROUTE_REFRESH => known(value.is_empty().then_some(Capability::RouteRefresh)),
        EXTENDED_MESSAGE => known(value.is_empty().then_some(Capability::ExtendedMessage)),
        ENHANCED_ROUTE_REFRESH => {
            known(value.is_empty().then_some(Capability::EnhancedRouteRefresh))
        }
        FOUR_OCTET_AS => known(all(value, wire::u32).map(Capability::FourOctetAs)),
        EXTENDED_NEXT_HOP => {
            let Some(entries) = all(value, many0((wire::u16, wire::u16, wire::u16))) else {
                return Some(Parsed::Malformed);
            };
            // A SAFI above 255 does not exist; the capability is kept as bytes.
            let entries = entries.into_iter().map(|(afi, safi, next_hop_afi)| {
                Some(ExtendedNextHop {
                    nlri: Family {
                        afi,
                        safi: u8::try_from(safi).ok()?,
                    },
                    next_hop_afi,
                })
            });
            match entries.collect::<Option<_>>() {
                Some(entries) => Parsed::Known(Capability::ExtendedNextHop(entries)),
                None => Parsed::NotUnderstood,
            }
        }
        GRACEFUL_RESTART => known(all(value, (wire::u16, many0(family_then_u8))).map(
            |(head, families)| {
                Capability::GracefulRestart(GracefulRestart {
                    restarting: head & GR_RESTARTING != 0,
                    notification: head & GR_NOTIFICATION != 0,
                    restart_time: head & GR_TIME,
                    families: families
                        .into_iter()
                        .map(|(f, flags)| (f, flags & GR_FORWARDING != 0))
                        .collect(),
                })
            },
        )),
        ADD_PATH => {
            let Some(entries) = all(value, many0(family_then_u8)) else {
                return Some(Parsed::Malformed);
            };
            // RFC 7911 4: a Send/Receive value other than 1-3 makes the capability
            // not understood.
            let entries = entries
                .into_iter()
                .map(|(f, mode)| Some((f, AddPathMode::from_code(mode)?)));
            match entries.collect::<Option<_>>() {
                Some(entries) => Parsed::Known(Capability::AddPath(entries)),
                None => Parsed::NotUnderstood,
            }
        }
        // The draft defines no error handling: a name only shown to operators
        // never fails a session.
        HOSTNAME => all(value, (length_prefixed, length_prefixed))
            .and_then(|(host, domain)| {
                Some(Capability::Hostname {
                    hostname: String::from_utf8(host.to_vec()).ok()?,
                    domain: String::from_utf8(domain.to_vec()).ok()?,
                })
            })
            .map_or(Parsed::NotUnderstood, Parsed::Known),
        _ => return None,
    })
}

/// Decodes the capabilities in one optional parameter's value.
pub(crate) fn decode_all(mut input: &[u8]) -> Result<Vec<Capability>, DecodeError> {
    let start = input;
    let mut out = Vec::new();
    while !input.is_empty() {
        let at = wire::offset(start, input);
        let Ok((rest, (code, value))) = (wire::u8, length_prefixed).parse(input) else {
            return Err(DecodeError::reset(
                OPEN_MESSAGE,
                UNSPECIFIC,
                Vec::new(),
                Reason::Truncated {
                    field: "capability",
                },
            )
            .at(at));
        };
        let capability = match parse_known(code, value) {
            Some(Parsed::Known(capability)) => capability,
            None | Some(Parsed::NotUnderstood) => Capability::Unknown {
                code,
                value: value.to_vec(),
            },
            Some(Parsed::Malformed) => {
                return Err(DecodeError::reset(
                    OPEN_MESSAGE,
                    UNSPECIFIC,
                    Vec::new(),
                    Reason::MalformedCapability { code },
                )
                .at(at));
            }
        };
        out.push(capability);
        input = rest;
    }
    Ok(out)
}

impl Capability {
    fn code(&self) -> u8 {
        match self {
            Capability::Multiprotocol(_) => MULTIPROTOCOL,
            Capability::RouteRefresh => ROUTE_REFRESH,
            Capability::ExtendedNextHop(_) => EXTENDED_NEXT_HOP,
            Capability::ExtendedMessage => EXTENDED_MESSAGE,
            Capability::GracefulRestart(_) => GRACEFUL_RESTART,
            Capability::FourOctetAs(_) => FOUR_OCTET_AS,
            Capability::AddPath(_) => ADD_PATH,
            Capability::EnhancedRouteRefresh => ENHANCED_ROUTE_REFRESH,
            Capability::Hostname { .. } => HOSTNAME,
            Capability::Unknown { code, .. } => *code,
        }
    }

    /// Writes code, length and value.
    pub(crate) fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u8(self.code());
        let len_at = out.len();
        out.put_u8(0);
        match self {
            Capability::Multiprotocol(f) => {
                out.put_u16(f.afi);
                out.put_u8(0);
                out.put_u8(f.safi);
            }
            Capability::RouteRefresh
            | Capability::ExtendedMessage
            | Capability::EnhancedRouteRefresh => {}
            Capability::ExtendedNextHop(entries) => {
                for e in entries {
                    out.put_u16(e.nlri.afi);
                    out.put_u16(u16::from(e.nlri.safi));
                    out.put_u16(e.next_hop_afi);
                }
            }
            Capability::GracefulRestart(gr) => {
                let mut head = gr.restart_time & GR_TIME;
                if gr.restarting {
                    head |= GR_RESTARTING;
                }
                if gr.notification {
                    head |= GR_NOTIFICATION;
                }
                out.put_u16(head);
                for (f, forwarding) in &gr.families {
                    out.put_u16(f.afi);
                    out.put_u8(f.safi);
                    out.put_u8(if *forwarding { GR_FORWARDING } else { 0 });
                }
            }
            Capability::FourOctetAs(asn) => out.put_u32(*asn),
            Capability::AddPath(entries) => {
                for (f, mode) in entries {
                    out.put_u16(f.afi);
                    out.put_u8(f.safi);
                    out.put_u8(mode.code());
                }
            }
            Capability::Hostname { hostname, domain } => {
                for part in [hostname, domain] {
                    let len = u8::try_from(part.len()).map_err(|_| EncodeError::FieldTooLong {
                        field: "hostname",
                        length: part.len(),
                        max: 255,
                    })?;
                    out.put_u8(len);
                    out.put_slice(part.as_bytes());
                }
            }
            Capability::Unknown { value, .. } => out.put_slice(value),
        }
        let len = out.len() - len_at - 1;
        out[len_at] = u8::try_from(len).map_err(|_| EncodeError::FieldTooLong {
            field: "capability",
            length: len,
            max: 255,
        })?;
        Ok(())
    }
}
