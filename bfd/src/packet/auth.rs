//! The optional authentication section (RFC 5880 sections 4.2 to 4.4). tabby parses
//! it so that a packet carrying one is understood and reported, but authenticates
//! nothing: a session has no authentication configured, so section 6.8.6 has it
//! discard every packet with the A bit set.
//!
//! ```text
//! Simple Password (type 1):
//! |   Auth Type   |   Auth Len    |  Auth Key ID  |  Password...  |
//!
//! Keyed MD5 / Meticulous Keyed MD5 (types 2, 3; Auth Len 24, 16-byte digest),
//! Keyed SHA1 / Meticulous Keyed SHA1 (types 4, 5; Auth Len 28, 20-byte hash):
//! |   Auth Type   |   Auth Len    |  Auth Key ID  |   Reserved    |
//! |                        Sequence Number                        |
//! |                    Auth Key / Digest / Hash ...               |
//! ```

use bytes::{BufMut, BytesMut};

const SIMPLE_PASSWORD: u8 = 1;
const KEYED_MD5: u8 = 2;
const METICULOUS_KEYED_MD5: u8 = 3;
const KEYED_SHA1: u8 = 4;
const METICULOUS_KEYED_SHA1: u8 = 5;

const MD5_LEN: usize = 24;
const SHA1_LEN: usize = 28;
/// Type, length and key id precede a 1 to 16 byte password.
const PASSWORD_MAX: usize = 16;
/// The packet's Length is one byte: what room the header leaves for this section.
const SECTION_MAX: usize = u8::MAX as usize - super::HEADER_LEN;

/// An authentication section as it was on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    SimplePassword {
        key_id: u8,
        /// 1 to 16 bytes.
        password: Vec<u8>,
    },
    KeyedMd5 {
        meticulous: bool,
        key_id: u8,
        sequence: u32,
        digest: [u8; 16],
    },
    KeyedSha1 {
        meticulous: bool,
        key_id: u8,
        sequence: u32,
        hash: [u8; 20],
    },
    /// A reserved type (0, 6 to 255): the bytes after Auth Len.
    Other { auth_type: u8, data: Vec<u8> },
}

/// A malformed authentication section.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("authentication section of {0} bytes is shorter than its type and length")]
    Truncated(usize),
    #[error("Auth Len {auth_len} does not match the {section} bytes after the header")]
    LengthMismatch { auth_len: usize, section: usize },
    #[error("Auth Len {auth_len} is wrong for authentication type {auth_type}")]
    BadLength { auth_type: u8, auth_len: usize },
}

impl Authentication {
    /// The RFC's Auth Type number.
    pub fn auth_type(&self) -> u8 {
        match self {
            Authentication::SimplePassword { .. } => SIMPLE_PASSWORD,
            Authentication::KeyedMd5 { meticulous, .. } => {
                if *meticulous {
                    METICULOUS_KEYED_MD5
                } else {
                    KEYED_MD5
                }
            }
            Authentication::KeyedSha1 { meticulous, .. } => {
                if *meticulous {
                    METICULOUS_KEYED_SHA1
                } else {
                    KEYED_SHA1
                }
            }
            Authentication::Other { auth_type, .. } => *auth_type,
        }
    }

    /// Auth Len: the section's size, type and length bytes included.
    pub fn len(&self) -> usize {
        let natural = match self {
            Authentication::SimplePassword { password, .. } => 3 + password.len(),
            Authentication::KeyedMd5 { .. } => MD5_LEN,
            Authentication::KeyedSha1 { .. } => SHA1_LEN,
            Authentication::Other { data, .. } => 2 + data.len(),
        };
        natural.min(SECTION_MAX)
    }

    /// Never true: a section holds at least its type and length.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Parses `section`: everything after the 24-byte header up to Length.
    pub(super) fn decode(section: &[u8]) -> Result<Self, AuthError> {
        let [auth_type, auth_len, ..] = *section else {
            return Err(AuthError::Truncated(section.len()));
        };
        let auth_len = usize::from(auth_len);
        if auth_len != section.len() {
            return Err(AuthError::LengthMismatch {
                auth_len,
                section: section.len(),
            });
        }
        let bad_length = AuthError::BadLength {
            auth_type,
            auth_len,
        };
        Ok(match auth_type {
            SIMPLE_PASSWORD => {
                if !(4..=3 + PASSWORD_MAX).contains(&auth_len) {
                    return Err(bad_length);
                }
                Authentication::SimplePassword {
                    key_id: section[2],
                    password: section[3..].to_vec(),
                }
            }
            KEYED_MD5 | METICULOUS_KEYED_MD5 => {
                let (key_id, sequence, digest) = keyed(section).ok_or(bad_length)?;
                Authentication::KeyedMd5 {
                    meticulous: auth_type == METICULOUS_KEYED_MD5,
                    key_id,
                    sequence,
                    digest,
                }
            }
            KEYED_SHA1 | METICULOUS_KEYED_SHA1 => {
                let (key_id, sequence, hash) = keyed(section).ok_or(bad_length)?;
                Authentication::KeyedSha1 {
                    meticulous: auth_type == METICULOUS_KEYED_SHA1,
                    key_id,
                    sequence,
                    hash,
                }
            }
            other => Authentication::Other {
                auth_type: other,
                data: section[2..].to_vec(),
            },
        })
    }

    /// Writes the section. A hand-made value too long for the one-byte packet
    /// Length is cut to fit (decoded values always fit).
    pub(super) fn encode(&self, out: &mut BytesMut) {
        let start = out.len();
        out.put_u8(self.auth_type());
        out.put_u8(0); // Auth Len, written below
        match self {
            Authentication::SimplePassword { key_id, password } => {
                out.put_u8(*key_id);
                out.put_slice(password);
            }
            Authentication::KeyedMd5 {
                key_id,
                sequence,
                digest,
                ..
            } => {
                out.put_u8(*key_id);
                out.put_u8(0);
                out.put_u32(*sequence);
                out.put_slice(digest);
            }
            Authentication::KeyedSha1 {
                key_id,
                sequence,
                hash,
                ..
            } => {
                out.put_u8(*key_id);
                out.put_u8(0);
                out.put_u32(*sequence);
                out.put_slice(hash);
            }
            Authentication::Other { data, .. } => out.put_slice(data),
        }
        out.truncate(start + SECTION_MAX);
        out[start + 1] = (out.len() - start) as u8;
    }
}

/// Key ID, sequence number and the `N`-byte digest of a keyed MD5 or SHA1
/// section; None unless the section is exactly 8 + `N` bytes.
fn keyed<const N: usize>(section: &[u8]) -> Option<(u8, u32, [u8; N])> {
    let digest = section.get(8..)?.try_into().ok()?;
    let sequence = u32::from_be_bytes(section.get(4..8)?.try_into().ok()?);
    Some((section[2], sequence, digest))
}
