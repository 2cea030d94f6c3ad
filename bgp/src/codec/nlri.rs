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
        id + 1 + octets(self.prefix.prefix_len())
    }

    /// Writes the NLRI; `path_ids` says whether the session sends path identifiers
    /// (an NLRI without one is sent with identifier 0).
    pub(crate) fn encode(&self, path_ids: bool, out: &mut BytesMut) {
        let mut buf = [0u8; MAX_ENCODED];
        let n = self.write(path_ids, &mut buf);
        out.put_slice(&buf[..n]);
    }

    /// Writes the NLRI at the start of `buf` (fixed-size copies beat a copy of the
    /// exact length); returns the bytes that count.
    fn write(&self, path_ids: bool, buf: &mut [u8; MAX_ENCODED]) -> usize {
        let at = if path_ids {
            buf[..4].copy_from_slice(&self.path_id.unwrap_or(0).to_be_bytes());
            4
        } else {
            0
        };
        let len = self.prefix.prefix_len();
        buf[at] = len;
        match self.prefix {
            IpNet::V4(net) => buf[at + 1..at + 5].copy_from_slice(&net.addr().octets()),
            IpNet::V6(net) => buf[at + 1..at + 17].copy_from_slice(&net.addr().octets()),
        }
        at + 1 + octets(len)
    }
}

/// The octets a prefix of `len` bits takes (a shift: `div_ceil` costs more in the
/// decoder's loop).
fn octets(len: u8) -> usize {
    (usize::from(len) + 7) >> 3
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
        // Shifting a 64-bit mask needs no branch for length 0.
        let mask = (u64::from(u32::MAX) << (32 - u32::from(len))) as u32;
        let bits = u32::from_be_bytes(octets) & mask;
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
    if input.is_empty() {
        return Ok(Vec::new());
    }
    // Typical NLRI are a full address with the length octet; bytes that exist bound
    // the capacity.
    let typical = if IDS { 5 + F::OCTETS } else { 1 + F::OCTETS };
    let mut out = Vec::with_capacity(input.len() / typical + 1);
    let at = |rest: &[u8]| input.len() - rest.len();
    let mut rest = input;
    while !rest.is_empty() {
        let path_id = if IDS {
            let Some((id, tail)) = rest.split_first_chunk::<4>() else {
                return Err(invalid(at(rest), Reason::Truncated { field: "path id" }));
            };
            rest = tail;
            Some(u32::from_be_bytes(*id))
        } else {
            None
        };
        let Some((&len, tail)) = rest.split_first() else {
            return Err(invalid(at(rest), Reason::Truncated { field: "NLRI" }));
        };
        if len > F::MAX_LEN {
            return Err(invalid(
                at(rest),
                Reason::BadPrefixLength {
                    length: len,
                    max: F::MAX_LEN,
                },
            ));
        }
        let significant = octets(len);
        let prefix = match tail.get(..F::OCTETS) {
            // A full window is there (usually part of the next NLRI): read it whole
            // and let the mask drop what is not this prefix's. It holds the
            // significant octets, which are never more than a full address.
            Some(window) => F::prefix(window, len),
            None => {
                let Some(bytes) = tail.get(..significant) else {
                    return Err(invalid(at(rest), Reason::Truncated { field: "prefix" }));
                };
                let mut window = [0u8; 16];
                window[..significant].copy_from_slice(bytes);
                F::prefix(&window, len)
            }
        };
        out.push(Nlri { prefix, path_id });
        rest = &tail[significant..];
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
    write_fitting(nlri, path_ids, encoded_len(nlri, path_ids), out);
    Ok(())
}

/// Writes the leading NLRI of one family that fit in `room` bytes; returns how
/// many it wrote and their bytes. They go into one region of `out` with room to
/// spare for the fixed-size copies, trimmed afterwards.
pub(crate) fn write_fitting(
    nlri: &[Nlri],
    path_ids: bool,
    room: usize,
    out: &mut BytesMut,
) -> (usize, usize) {
    let start = out.len();
    // No more than the NLRI can take, so that a short UPDATE clears little.
    let region = room.min(nlri.len() * MAX_ENCODED);
    out.resize(start + region + MAX_ENCODED, 0);
    let buf = &mut out[start..];
    let (mut count, mut used) = (0, 0);
    for n in nlri {
        // `used` stays within `region`, so a whole window is always there.
        let Some(window) = buf[used..].first_chunk_mut::<MAX_ENCODED>() else {
            break;
        };
        let len = n.write(path_ids, window);
        if used + len > region {
            break;
        }
        used += len;
        count += 1;
    }
    out.truncate(start + used);
    (count, used)
}
