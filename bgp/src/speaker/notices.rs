//! What the owner has not been told yet: peer events, and best-path changes
//! followed from the RIB with an [`Outbox`] like a peer's. An owner that reads
//! slowly (or not at all) gets the latest state of each prefix when it catches up,
//! never a backlog. The task feeds the owner's bounded channel from here.

use std::collections::VecDeque;

use crate::rib::{Change, Rib, SlotId, Touched};

use super::Notice;
use super::outbox::Outbox;

/// Peer events kept while the owner does not read; the oldest go first.
const MAX_EVENTS: usize = 1024;
/// Notices the owner's channel holds before the owner must read.
pub(crate) const CAPACITY: usize = 4096;

/// What the owner has not been told yet.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    outbox: Outbox,
    events: VecDeque<Notice>,
    slots: Vec<SlotId>,
    /// The owner dropped its receiver: nothing is tracked any more.
    closed: bool,
}

impl Pending {
    pub fn event(&mut self, notice: Notice) {
        if self.closed {
            return;
        }
        if self.events.len() == MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(notice);
    }

    /// Follows one journal entry of the RIB.
    pub fn follow(&mut self, touched: Touched) {
        if !self.closed {
            self.outbox.follow(touched);
        }
    }

    pub fn close(&mut self) {
        *self = Self {
            closed: true,
            ..Self::default()
        };
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.outbox.is_clean() && self.slots.is_empty()
    }

    /// The next notice: peer events first, then withdrawals, then changed slots.
    pub fn next(&mut self, rib: &Rib) -> Option<Notice> {
        if let Some(event) = self.events.pop_front() {
            return Some(event);
        }
        if let Some(nlri) = self.outbox.withdrawals.pop() {
            return Some(Notice::Best(Change::Withdrawn {
                prefix: nlri.prefix,
            }));
        }
        loop {
            if self.slots.is_empty() {
                self.outbox.take(1024, &mut self.slots);
                self.slots.reverse();
            }
            let slot = self.slots.pop()?;
            let Some(prefix) = rib.prefix_at(slot) else {
                continue;
            };
            self.outbox.set_advertised(slot, true);
            let paths = rib.best_at(slot).map(|p| p.to_path()).collect();
            return Some(Notice::Best(Change::Best { prefix, paths }));
        }
    }
}
