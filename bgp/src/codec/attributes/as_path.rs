//! AS_PATH and AS4_PATH (RFC 4271 4.3, RFC 5065 for confederations, RFC 6793 for
//! 4-octet AS numbers on 2-octet sessions).
//!
//! ```text
//! segment: +------+-------+---------------------------+
//!          | type | count | count AS numbers (2 or 4) |
//!          +------+-------+---------------------------+
//! ```

use bytes::{BufMut, BytesMut};

use crate::codec::error::Reason;
use crate::codec::iana::AS_TRANS;

/// An AS path as segments, with every AS number in 4 octets whatever the session
/// uses on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AsPath {
    pub segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Segment {
    pub kind: SegmentKind,
    pub asns: Vec<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SegmentKind {
    Set,
    Sequence,
    ConfedSequence,
    ConfedSet,
}

/// A segment holds at most 255 AS numbers; longer ones are split on encode.
const MAX_SEGMENT: usize = 255;

impl SegmentKind {
    fn code(self) -> u8 {
        match self {
            SegmentKind::Set => 1,
            SegmentKind::Sequence => 2,
            SegmentKind::ConfedSequence => 3,
            SegmentKind::ConfedSet => 4,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => SegmentKind::Set,
            2 => SegmentKind::Sequence,
            3 => SegmentKind::ConfedSequence,
            4 => SegmentKind::ConfedSet,
            _ => return None,
        })
    }

    pub fn is_confederation(self) -> bool {
        matches!(self, SegmentKind::ConfedSequence | SegmentKind::ConfedSet)
    }
}

impl AsPath {
    /// One AS_SEQUENCE of `asns` (empty: the empty path of iBGP).
    pub fn sequence(asns: impl Into<Vec<u32>>) -> Self {
        let asns = asns.into();
        if asns.is_empty() {
            return Self::default();
        }
        Self {
            segments: vec![Segment {
                kind: SegmentKind::Sequence,
                asns,
            }],
        }
    }

    /// The path length of RFC 4271 9.1.2.2: an AS_SET counts one, confederation
    /// segments count nothing. RFC 6793 counts the same way when merging AS4_PATH.
    pub fn len(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s.kind {
                SegmentKind::Sequence => s.asns.len(),
                SegmentKind::Set => 1,
                SegmentKind::ConfedSequence | SegmentKind::ConfedSet => 0,
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// True when the path needs AS4_PATH to survive a 2-octet session.
    pub(crate) fn has_four_octet_asns(&self) -> bool {
        self.segments
            .iter()
            .any(|s| s.asns.iter().any(|&a| a > u32::from(u16::MAX)))
    }

    /// The path without confederation segments, as AS4_PATH carries it (RFC 6793 3).
    pub(crate) fn without_confederations(&self) -> AsPath {
        AsPath {
            segments: self
                .segments
                .iter()
                .filter(|s| !s.kind.is_confederation())
                .cloned()
                .collect(),
        }
    }

    /// Rebuilds the real path from an AS_PATH received on a 2-octet session and its
    /// AS4_PATH (RFC 6793 4.2.3): the leading AS numbers AS4_PATH lacks come from
    /// AS_PATH (with the confederation segments that lead or adjoin them), the rest
    /// from AS4_PATH; an AS4_PATH longer than AS_PATH is ignored. Where the two
    /// parts meet, two sequences become one, as a NEW speaker would have sent it.
    pub(crate) fn merge_as4(self, as4: AsPath) -> AsPath {
        let (len, len4) = (self.len(), as4.len());
        if len < len4 {
            return self;
        }
        let mut need = len - len4;
        let mut segments = Vec::with_capacity(self.segments.len() + as4.segments.len());
        for mut segment in self.segments {
            if segment.kind.is_confederation() {
                segments.push(segment);
                continue;
            }
            if need == 0 {
                break;
            }
            match segment.kind {
                SegmentKind::Set => need -= 1,
                _ => {
                    let take = need.min(segment.asns.len());
                    segment.asns.truncate(take);
                    need -= take;
                }
            }
            segments.push(segment);
        }
        let mut as4 = as4.segments.into_iter().peekable();
        if let Some(last) = segments.last_mut()
            && last.kind == SegmentKind::Sequence
            && let Some(first) = as4.next_if(|s| s.kind == SegmentKind::Sequence)
        {
            last.asns.extend(first.asns);
        }
        segments.extend(as4);
        AsPath { segments }
    }

    /// Decodes an AS_PATH or AS4_PATH value with AS numbers of `asn_len` octets.
    pub(crate) fn decode(mut value: &[u8], asn_len: usize) -> Result<AsPath, Reason> {
        // Most paths are one sequence.
        let mut segments = Vec::with_capacity(usize::from(!value.is_empty()));
        while let [code, count, rest @ ..] = value {
            let kind = SegmentKind::from_code(*code).ok_or(Reason::BadSegmentType(*code))?;
            if *count == 0 {
                return Err(Reason::EmptySegment);
            }
            let bytes = usize::from(*count) * asn_len;
            let Some(raw) = rest.get(..bytes) else {
                return Err(Reason::Truncated {
                    field: "AS_PATH segment",
                });
            };
            let asns = if asn_len == 4 {
                raw.chunks_exact(4)
                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            } else {
                raw.chunks_exact(2)
                    .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
                    .collect()
            };
            segments.push(Segment { kind, asns });
            value = &rest[bytes..];
        }
        if !value.is_empty() {
            return Err(Reason::Truncated {
                field: "AS_PATH segment",
            });
        }
        Ok(AsPath { segments })
    }

    /// Bytes of the encoded value with AS numbers of `asn_len` octets.
    pub(crate) fn encoded_len(&self, asn_len: usize) -> usize {
        self.segments
            .iter()
            .map(|s| s.asns.len().div_ceil(MAX_SEGMENT) * 2 + s.asns.len() * asn_len)
            .sum()
    }

    /// Writes the value; with 2-octet AS numbers, larger ones become AS_TRANS.
    pub(crate) fn encode(&self, asn_len: usize, out: &mut BytesMut) {
        for segment in &self.segments {
            for chunk in segment.asns.chunks(MAX_SEGMENT) {
                out.put_u8(segment.kind.code());
                // `chunks` keeps this at most 255.
                out.put_u8(chunk.len() as u8);
                for &asn in chunk {
                    if asn_len == 4 {
                        out.put_u32(asn);
                    } else {
                        out.put_u16(u16::try_from(asn).unwrap_or(AS_TRANS));
                    }
                }
            }
        }
    }
}
