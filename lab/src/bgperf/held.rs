//! What a monitor holds: a bit per benchmark prefix, set by announcements and cleared
//! by withdrawals, read straight from UPDATE bodies (IPv4, no ADD-PATH: what the
//! benchmark's sessions negotiate). Counting costs a few instructions per NLRI, so
//! the monitors never slow the measurement down.

use std::ops::Range;

use super::workload::BASE;

#[derive(Debug)]
pub struct Held {
    bits: Vec<u64>,
    count: usize,
    /// The monitor's own prefixes, not counted (a reflector never sends them back,
    /// and one that did must not make the monitor look complete early).
    own: Range<u32>,
}

impl Held {
    /// Room for prefixes `0..size`.
    pub fn new(size: u32, own: Range<u32>) -> Self {
        Self {
            bits: vec![0; (size as usize).div_ceil(64)],
            count: 0,
            own,
        }
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// Applies one UPDATE body (after the 19-byte header).
    pub fn update(&mut self, body: &[u8]) -> Result<(), &'static str> {
        let (withdrawn, rest) = field(body).ok_or("withdrawn routes overrun")?;
        let (_attributes, nlri) = field(rest).ok_or("path attributes overrun")?;
        self.prefixes(withdrawn, false)?;
        self.prefixes(nlri, true)
    }

    fn prefixes(&mut self, mut bytes: &[u8], announce: bool) -> Result<(), &'static str> {
        while let Some((&len, rest)) = bytes.split_first() {
            let octets = usize::from(len).div_ceil(8);
            let address = rest.get(..octets).ok_or("NLRI overrun")?;
            bytes = &rest[octets..];
            if len != 32 {
                continue;
            }
            let address = u32::from_be_bytes([address[0], address[1], address[2], address[3]]);
            self.set(address.wrapping_sub(u32::from(BASE)), announce);
        }
        Ok(())
    }

    fn set(&mut self, index: u32, announce: bool) {
        if self.own.contains(&index) {
            return;
        }
        let Some(word) = self.bits.get_mut((index / 64) as usize) else {
            return;
        };
        let bit = 1u64 << (index % 64);
        match (announce, *word & bit != 0) {
            (true, false) => {
                *word |= bit;
                self.count += 1;
            }
            (false, true) => {
                *word &= !bit;
                self.count -= 1;
            }
            _ => {}
        }
    }
}

/// A 2-byte length and the field it measures; the rest after it.
fn field(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = usize::from(u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]));
    let rest = &bytes[2..];
    (rest.len() >= len).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_announcements_count_once_and_own_or_foreign_prefixes_not_at_all() {
        let mut held = Held::new(100, 0..10);
        // NLRI: 100.64.0.20/32 twice, 100.64.0.5/32 (own), 10.0.0.0/8 (foreign).
        let body = [
            0, 0, 0, 0, 32, 100, 64, 0, 20, 32, 100, 64, 0, 20, 32, 100, 64, 0, 5, 8, 10,
        ];
        held.update(&body).unwrap();
        assert_eq!(held.count(), 1);
        // Withdraw 100.64.0.20/32.
        held.update(&[0, 5, 32, 100, 64, 0, 20, 0, 0]).unwrap();
        assert_eq!(held.count(), 0);
        assert!(held.update(&[0, 9, 32]).is_err());
    }
}
