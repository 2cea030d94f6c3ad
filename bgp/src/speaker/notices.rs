//! The owner's stream of best-path changes and peer events: a bounded channel fed
//! from an [`Outbox`] like a peer's. An owner that reads slowly (or not at all)
//! gets the latest state of each prefix when it catches up, never a backlog.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;

use tokio::sync::mpsc::{self, OwnedPermit, error::TrySendError};

use crate::rib::{Change, Rib, SlotId};

use super::Notice;
use super::outbox::Outbox;

/// Notices the channel holds before the owner must read.
pub(crate) const CAPACITY: usize = 4096;
/// Peer events kept while the owner does not read; the oldest go first.
const MAX_EVENTS: usize = 1024;

type Reserve = Pin<Box<dyn Future<Output = Option<OwnedPermit<Notice>>> + Send>>;

pub(crate) struct Notices {
    tx: mpsc::Sender<Notice>,
    pub pending: Pending,
    /// Waits for room once the channel was full.
    waiting: Option<Reserve>,
    /// The owner dropped its receiver: nothing is tracked any more.
    closed: bool,
}

impl std::fmt::Debug for Notices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notices")
            .field("events", &self.pending.events.len())
            .field("closed", &self.closed)
            .finish()
    }
}

impl Notices {
    pub fn new(tx: mpsc::Sender<Notice>) -> Self {
        Self {
            tx,
            pending: Pending::default(),
            waiting: None,
            closed: false,
        }
    }

    pub fn event(&mut self, notice: Notice) {
        if self.closed {
            return;
        }
        let events = &mut self.pending.events;
        if events.len() == MAX_EVENTS {
            events.pop_front();
        }
        events.push_back(notice);
    }

    /// Resolves when the channel has room again (pending while it is not waiting).
    pub async fn room(&mut self) -> Option<OwnedPermit<Notice>> {
        match self.waiting.as_mut() {
            Some(reserve) => {
                let permit = reserve.await;
                self.waiting = None;
                if permit.is_none() {
                    self.close();
                }
                permit
            }
            None => std::future::pending().await,
        }
    }

    /// Sends what is pending until the channel is full; `permit` is room already
    /// reserved.
    pub fn flush(&mut self, rib: &Rib, mut permit: Option<OwnedPermit<Notice>>) {
        if self.closed || self.waiting.is_some() {
            return;
        }
        if let Some(p) = permit.take() {
            match self.pending.next(rib) {
                Some(notice) => drop(p.send(notice)),
                None => return,
            }
        }
        while !self.pending.is_empty() {
            let error = match self.tx.try_reserve() {
                Ok(p) => {
                    if let Some(notice) = self.pending.next(rib) {
                        p.send(notice);
                    }
                    continue;
                }
                Err(error) => error,
            };
            match error {
                TrySendError::Full(()) => {
                    let tx = self.tx.clone();
                    self.waiting = Some(Box::pin(async move { tx.reserve_owned().await.ok() }));
                    return;
                }
                TrySendError::Closed(()) => {
                    self.close();
                    return;
                }
            }
        }
    }

    fn close(&mut self) {
        self.closed = true;
        self.pending = Pending::default();
    }
}

/// What the owner has not been told yet.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    pub outbox: Outbox,
    events: VecDeque<Notice>,
    slots: Vec<SlotId>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.events.is_empty() && self.outbox.is_clean() && self.slots.is_empty()
    }

    /// The next notice: peer events first, then withdrawals, then changed slots.
    fn next(&mut self, rib: &Rib) -> Option<Notice> {
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
            let paths: Vec<_> = rib.best_at(slot).map(|p| p.to_path()).collect();
            // Only paths the owner's hook refused: nothing to forward on.
            if paths.is_empty() {
                if self.outbox.set_advertised(slot, false) {
                    return Some(Notice::Best(Change::Withdrawn { prefix }));
                }
                continue;
            }
            self.outbox.set_advertised(slot, true);
            return Some(Notice::Best(Change::Best { prefix, paths }));
        }
    }
}
