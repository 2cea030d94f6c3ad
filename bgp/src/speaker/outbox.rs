//! What one consumer of the RIB (a peer's Adj-RIB-Out, the owner's best-path
//! stream) still has to be told: a bit per slot for "changed since last sent" and
//! one for "advertised", and the prefixes to withdraw whose slots were freed. A
//! consumer that cannot keep up costs these two bits per prefix, however many
//! changes it misses: the RIB, not a message queue, is the source of truth.

use std::collections::HashMap;

use crate::codec::Nlri;
use crate::rib::{SlotId, Touched};

#[derive(Debug, Default)]
pub(crate) struct Outbox {
    dirty: Bits,
    advertised: Bits,
    /// How many dirty bits are set.
    pending: usize,
    advertised_count: usize,
    /// Where the last scan for dirty slots stopped.
    cursor: usize,
    /// What to withdraw: advertised prefixes (with their path ids) whose slots
    /// were freed.
    pub withdrawals: Vec<Nlri>,
    /// Sent every path of a prefix (ADD-PATH, RFC 7911), not only the best.
    pub all_paths: bool,
    /// With `all_paths`: the path ids advertised per slot.
    pub path_ids: HashMap<SlotId, Vec<u32>>,
}

impl Outbox {
    /// Follows one journal entry of the RIB.
    pub fn follow(&mut self, touched: Touched) {
        match touched {
            Touched::Best(slot) => self.mark(slot),
            Touched::Paths(slot) if self.all_paths => self.mark(slot),
            Touched::Paths(_) => {}
            Touched::Gone(slot, prefix) => {
                if self.advertised.clear(slot) {
                    self.advertised_count -= 1;
                    match self.path_ids.remove(&slot) {
                        Some(ids) => self
                            .withdrawals
                            .extend(ids.into_iter().map(|id| Nlri::with_path_id(prefix, id))),
                        None => self.withdrawals.push(Nlri::new(prefix)),
                    }
                }
            }
        }
    }

    pub fn mark(&mut self, slot: SlotId) {
        if !self.dirty.set(slot) {
            self.pending += 1;
        }
    }

    /// Prefixes changed and not yet sent, withdrawals included.
    pub fn backlog(&self) -> usize {
        self.pending + self.withdrawals.len()
    }

    /// True when nothing is left to send.
    pub fn is_clean(&self) -> bool {
        self.pending == 0 && self.withdrawals.is_empty()
    }

    /// Takes up to `max` dirty slots, in slot order from where the last call
    /// stopped.
    pub fn take(&mut self, max: usize, into: &mut Vec<SlotId>) {
        into.clear();
        let words = self.dirty.words.len();
        let mut scanned = 0;
        while into.len() < max && self.pending > 0 && scanned <= words {
            if self.cursor >= words {
                self.cursor = 0;
            }
            let word = &mut self.dirty.words[self.cursor];
            while *word != 0 && into.len() < max {
                let bit = word.trailing_zeros() as usize;
                *word &= *word - 1;
                self.pending -= 1;
                into.push((self.cursor * 64 + bit) as SlotId);
            }
            if *word == 0 {
                self.cursor += 1;
                scanned += 1;
            }
        }
    }

    /// Records whether `slot` is now advertised.
    pub fn set_advertised(&mut self, slot: SlotId, advertised: bool) -> bool {
        let was = if advertised {
            self.advertised.set(slot)
        } else {
            self.advertised.clear(slot)
        };
        match (was, advertised) {
            (false, true) => self.advertised_count += 1,
            (true, false) => self.advertised_count -= 1,
            _ => {}
        }
        was
    }

    pub fn advertised(&self) -> usize {
        self.advertised_count
    }
}

#[derive(Debug, Default)]
struct Bits {
    words: Vec<u64>,
}

impl Bits {
    /// Sets the bit; returns whether it was set before.
    fn set(&mut self, slot: SlotId) -> bool {
        let (word, bit) = (slot as usize / 64, slot % 64);
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let was = self.words[word] & (1 << bit) != 0;
        self.words[word] |= 1 << bit;
        was
    }

    /// Clears the bit; returns whether it was set.
    fn clear(&mut self, slot: SlotId) -> bool {
        let (word, bit) = (slot as usize / 64, slot % 64);
        let Some(w) = self.words.get_mut(word) else {
            return false;
        };
        let was = *w & (1 << bit) != 0;
        *w &= !(1 << bit);
        was
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirty_slots_come_out_once_in_order_and_resume_where_they_stopped() {
        let mut outbox = Outbox::default();
        for slot in [130, 3, 64, 3, 7] {
            outbox.mark(slot);
        }
        let mut taken = Vec::new();
        outbox.take(2, &mut taken);
        assert_eq!(taken, [3, 7]);
        outbox.mark(1);
        outbox.take(10, &mut taken);
        assert_eq!(taken, [64, 130, 1]);
        assert!(outbox.is_clean());
    }

    #[test]
    fn a_freed_slot_is_withdrawn_only_if_it_was_advertised() {
        let mut outbox = Outbox::default();
        let prefix: ipnet::IpNet = "10.0.0.0/24".parse().unwrap();
        outbox.set_advertised(5, true);
        outbox.follow(Touched::Gone(6, prefix));
        assert!(outbox.withdrawals.is_empty());
        outbox.follow(Touched::Gone(5, prefix));
        assert_eq!(outbox.withdrawals, [Nlri::new(prefix)]);
        assert_eq!(outbox.advertised(), 0);
    }
}
