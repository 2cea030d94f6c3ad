//! NLRI: prefixes as length + significant octets (RFC 4271 4.3), optionally led by
//! an ADD-PATH path identifier (RFC 7911 3).
//!
//! ```text
//! +--------------------------+
//! | path id (4, ADD-PATH)    |
//! +------------+-------------+
//! | length (1) | prefix (0..16, ceil(length / 8)) |
//! +------------+-------------+
//! ```

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, BytesMut};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::Afi;
use super::error::{DecodeError, Reason};
use super::iana::error::{INVALID_NETWORK_FIELD, UPDATE_MESSAGE};

/// A prefix and, on ADD-PATH sessions, its path identifier. Host bits past the
/// prefix length are always zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nlri {
    pub prefix: IpNet,
    pub path_id: Option<u32>,
}

impl Nlri {
    pub fn new(prefix: IpNet) -> Self {
        Self {
            prefix: prefix.trunc(),
            path_id: None,
        }
    }

    pub fn with_path_id(prefix: IpNet, path_id: u32) -> Self {
        Self {
            prefix: prefix.trunc(),
            path_id: Some(path_id),
        }
    }

    pub fn afi(&self) -> Afi {
        Afi::of_prefix(&self.prefix)
    }

    /// Bytes this NLRI takes on the wire.
    pub(crate) fn encoded_len(&self, path_ids: bool) -> usize {
        let id = if path_ids { 4 } else { 0 };
        id + 1 + usize::from(self.prefix.prefix_len()).div_ceil(8)
    }

    /// Writes the NLRI; `path_ids` says whether the session sends path identifiers
    /// (an NLRI without one is sent with identifier 0).
    pub(crate) fn encode(&self, path_ids: bool, out: &mut BytesMut) {
        let mut buf = [0u8; MAX_ENCODED];
        let n = self.write(path_ids, &mut buf);
        out.put_slice(&buf[..n]);
    }

    /// Writes the NLRI at the start of `buf`, which must hold [`MAX_ENCODED`]
    /// bytes (fixed-size copies beat a copy of the exact length); returns the bytes
    /// that count.
    fn write(&self, path_ids: bool, buf: &mut [u8]) -> usize {
        let mut at = 0;
        if path_ids {
            buf[..4].copy_from_slice(&self.path_id.unwrap_or(0).to_be_bytes());
            at = 4;
        }
        let len = self.prefix.prefix_len();
        buf[at] = len;
        match self.prefix {
            IpNet::V4(net) => buf[at + 1..at + 5].copy_from_slice(&net.addr().octets()),
            IpNet::V6(net) => buf[at + 1..at + 17].copy_from_slice(&net.addr().octets()),
        }
        at + 1 + usize::from(len).div_ceil(8)
    }
}

fn invalid(offset: usize, reason: Reason) -> DecodeError {
    DecodeError::reset(UPDATE_MESSAGE, INVALID_NETWORK_FIELD, Vec::new(), reason).at(offset)
}

/// Decodes a whole field of NLRI of `afi`. Any error is a session reset (RFC 7606
/// 5.3: a field that cannot be parsed leaves nothing to withdraw).
pub(crate) fn decode(input: &[u8], afi: Afi, path_ids: bool) -> Result<Vec<Nlri>, DecodeError> {
    // One loop per case, so the hot loop tests nothing but the bytes.
    match (afi, path_ids) {
        (Afi::Ipv4, false) => decode_field::<V4, false>(input),
        (Afi::Ipv4, true) => decode_field::<V4, true>(input),
        (Afi::Ipv6, false) => decode_field::<V6, false>(input),
        (Afi::Ipv6, true) => decode_field::<V6, true>(input),
    }
}

/// An address family's prefix layout.
trait Layout {
    const MAX_LEN: u8;
    /// Octets of a full address.
    const OCTETS: usize;
    /// The prefix from the first octets of a full-size window (octets past the
    /// prefix length are masked away).
    fn prefix(window: &[u8], len: u8) -> IpNet;
}

struct V4;
struct V6;

impl Layout for V4 {
    const MAX_LEN: u8 = 32;
    const OCTETS: usize = 4;
    fn prefix(window: &[u8], len: u8) -> IpNet {
        let mut octets = [0u8; 4];
        octets.copy_from_slice(&window[..4]);
        let bits =
            u32::from_be_bytes(octets) & u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
        // `len` was checked against MAX_LEN, so `new` cannot fail.
        IpNet::V4(Ipv4Net::new(Ipv4Addr::from(bits), len).unwrap_or_default())
    }
}

impl Layout for V6 {
    const MAX_LEN: u8 = 128;
    const OCTETS: usize = 16;
    fn prefix(window: &[u8], len: u8) -> IpNet {
        let mut octets = [0u8; 16];
        octets.copy_from_slice(&window[..16]);
        let bits =
            u128::from_be_bytes(octets) & u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
        IpNet::V6(Ipv6Net::new(Ipv6Addr::from(bits), len).unwrap_or_default())
    }
}

fn decode_field<F: Layout, const IDS: bool>(input: &[u8]) -> Result<Vec<Nlri>, DecodeError> {
    // Typical NLRI are a full address with the length octet; bytes that exist bound
    // the capacity.
    let typical = if IDS { 5 + F::OCTETS } else { 1 + F::OCTETS };
    let mut out = Vec::with_capacity(input.len() / typical + 1);
    let mut pos = 0;
    while pos < input.len() {
        let path_id = if IDS {
            let Some(&[a, b, c, d]) = input.get(pos..pos + 4) else {
                return Err(invalid(pos, Reason::Truncated { field: "path id" }));
            };
            pos += 4;
            Some(u32::from_be_bytes([a, b, c, d]))
        } else {
            None
        };
        let Some(&len) = input.get(pos) else {
            return Err(invalid(pos, Reason::Truncated { field: "NLRI" }));
        };
        if len > F::MAX_LEN {
            return Err(invalid(
                pos,
                Reason::BadPrefixLength {
                    length: len,
                    max: F::MAX_LEN,
                },
            ));
        }
        let significant = usize::from(len).div_ceil(8);
        let end = pos + 1 + significant;
        let prefix = match input.get(pos + 1..pos + 1 + F::OCTETS) {
            // A full window is there (usually part of the next NLRI): read it whole
            // and let the mask drop what is not this prefix's.
            Some(window) if end <= input.len() => F::prefix(window, len),
            _ => {
                let Some(bytes) = input.get(pos + 1..end) else {
                    return Err(invalid(pos, Reason::Truncated { field: "prefix" }));
                };
                let mut window = [0u8; 16];
                window[..significant].copy_from_slice(bytes);
                F::prefix(&window, len)
            }
        };
        out.push(Nlri { prefix, path_id });
        pos = end;
    }
    Ok(out)
}

/// Total bytes of `nlri` on the wire.
pub(crate) fn encoded_len(nlri: &[Nlri], path_ids: bool) -> usize {
    nlri.iter().map(|n| n.encoded_len(path_ids)).sum()
}

/// The most bytes one NLRI takes: a path id, the length and a full IPv6 address.
pub(crate) const MAX_ENCODED: usize = 4 + 1 + 16;

/// Writes every NLRI, failing on one of another family.
pub(crate) fn encode_all(
    nlri: &[Nlri],
    afi: Afi,
    path_ids: bool,
    out: &mut BytesMut,
) -> Result<(), super::EncodeError> {
    if let Some(other) = nlri.iter().find(|n| n.afi() != afi) {
        return Err(super::EncodeError::WrongFamily(other.prefix));
    }
    write_all(nlri, path_ids, encoded_len(nlri, path_ids), out);
    Ok(())
}

/// Writes NLRI of one family, `len` bytes in all, into one region of `out` with
/// room to spare for the fixed-size copies, then trims the spare bytes.
pub(crate) fn write_all(nlri: &[Nlri], path_ids: bool, len: usize, out: &mut BytesMut) {
    let start = out.len();
    out.resize(start + len + MAX_ENCODED, 0);
    let buf = &mut out[start..];
    let mut at = 0;
    for n in nlri {
        at += n.write(path_ids, &mut buf[at..]);
    }
    out.truncate(start + at);
}
