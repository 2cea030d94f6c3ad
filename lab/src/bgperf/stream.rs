//! The testers' UPDATEs, encoded once before the clock starts so that encoding never
//! shows in the figures: densely packed 4096-byte UPDATEs sharing one attribute set,
//! or one UPDATE per prefix with its own MED (distinct attributes).

use std::net::Ipv4Addr;
use std::ops::Range;

use anyhow::Result;
use bgp::codec::{AsPath, Attributes, NextHop, Nlri, Origin, SessionContext, UpdatePacker};
use bytes::{Bytes, BytesMut};
use ipnet::{IpNet, Ipv4Net};

use super::workload::prefix;

/// What the benchmark's sessions negotiate: 4-octet AS numbers, 4096-byte messages,
/// no ADD-PATH.
pub fn context() -> SessionContext {
    SessionContext {
        four_octet_as: true,
        ..SessionContext::default()
    }
}

fn nlri(i: u32) -> Nlri {
    Nlri::new(IpNet::V4(
        Ipv4Net::new(prefix(i), 32).expect("32 is a valid length"),
    ))
}

/// iBGP attributes as a client originates them.
fn attributes(med: Option<u32>) -> Attributes {
    Attributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::default()),
        local_pref: Some(100),
        med,
        ..Attributes::default()
    }
}

/// UPDATEs announcing `range` via `next_hop`.
pub fn announce(range: Range<u32>, next_hop: Ipv4Addr, distinct: bool) -> Result<Bytes> {
    let mut packer = UpdatePacker::new(context());
    let mut out = BytesMut::new();
    let next_hop = NextHop::V4(next_hop);
    if distinct {
        for i in range {
            packer.announce(&attributes(Some(i)), next_hop, &[nlri(i)], &mut out)?;
        }
    } else {
        let all: Vec<Nlri> = range.map(nlri).collect();
        packer.announce(&attributes(None), next_hop, &all, &mut out)?;
    }
    Ok(out.freeze())
}

/// UPDATEs withdrawing `range`.
pub fn withdraw(range: Range<u32>) -> Result<Bytes> {
    let mut packer = UpdatePacker::new(context());
    let mut out = BytesMut::new();
    let all: Vec<Nlri> = range.map(nlri).collect();
    packer.withdraw(&all, &mut out)?;
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgperf::held::Held;

    /// Feeds every UPDATE of `stream` to `held`.
    fn apply(stream: &[u8], held: &mut Held) {
        let mut rest = stream;
        while !rest.is_empty() {
            let len = usize::from(u16::from_be_bytes([rest[16], rest[17]]));
            assert_eq!(rest[18], 2, "only UPDATEs");
            held.update(&rest[19..len]).unwrap();
            rest = &rest[len..];
        }
    }

    #[test]
    fn dense_updates_fill_4096_bytes_and_carry_every_prefix() {
        let stream = announce(0..10_000, Ipv4Addr::new(10, 0, 1, 1), false).unwrap();
        let first = usize::from(u16::from_be_bytes([stream[16], stream[17]]));
        assert!(first > 4_000 && first <= 4_096, "{first}");
        let mut held = Held::new(10_000, 0..0);
        apply(&stream, &mut held);
        assert_eq!(held.count(), 10_000);
        apply(&withdraw(0..1_000).unwrap(), &mut held);
        assert_eq!(held.count(), 9_000);
    }

    #[test]
    fn distinct_attributes_mean_one_update_per_prefix() {
        let stream = announce(0..100, Ipv4Addr::new(10, 0, 1, 1), true).unwrap();
        let mut messages = 0;
        let mut rest = &stream[..];
        while !rest.is_empty() {
            let len = usize::from(u16::from_be_bytes([rest[16], rest[17]]));
            rest = &rest[len..];
            messages += 1;
        }
        assert_eq!(messages, 100);
    }
}
