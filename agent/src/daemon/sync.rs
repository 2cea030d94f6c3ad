//! Whether BGP has re-learned its routes after the agent started.
//!
//! An agent that restarts finds its routes in the kernel and a speaker that knows
//! nothing yet. Until the speaker has heard from its peers, the gateway routes in
//! the kernel are kept as they are (see `DesiredState::preserve_gateways`), so a
//! restart changes nothing that was right. BGP counts as re-learned once every
//! planned peer is up and no best path changed for a moment, or at the latest
//! after a timeout (a peer that stays down must not freeze the dataplane).

use std::time::{Duration, Instant};

/// How long best paths must be quiet after the last peer came up.
pub const SETTLE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct BgpSync {
    /// `None` once in sync.
    waiting: Option<Waiting>,
    timeout: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Waiting {
    since: Instant,
    last_change: Instant,
}

impl BgpSync {
    /// In sync from the start (nothing to preserve), or waiting from `now`.
    pub fn new(restarted: bool, timeout: Duration, now: Instant) -> Self {
        let mut sync = Self {
            waiting: None,
            timeout,
        };
        if restarted {
            sync.restart(now);
        }
        sync
    }

    /// The speaker starts over (after a restart or a new configuration).
    pub fn restart(&mut self, now: Instant) {
        self.waiting = Some(Waiting {
            since: now,
            last_change: now,
        });
    }

    pub fn synced(&self) -> bool {
        self.waiting.is_none()
    }

    /// A best path changed.
    pub fn changed(&mut self, now: Instant) {
        if let Some(waiting) = self.waiting.as_mut() {
            waiting.last_change = now;
        }
    }

    /// Re-evaluates at `now`; true when this call brought it in sync.
    pub fn check(&mut self, now: Instant, all_peers_up: bool) -> bool {
        let Some(waiting) = self.waiting else {
            return false;
        };
        let timed_out = now.duration_since(waiting.since) >= self.timeout;
        let settled = all_peers_up && now.duration_since(waiting.last_change) >= SETTLE;
        if timed_out || settled {
            self.waiting = None;
            return true;
        }
        false
    }

    /// When to check again while waiting.
    pub fn next_check(&self) -> Option<Instant> {
        let waiting = self.waiting?;
        Some((waiting.since + self.timeout).min(waiting.last_change + SETTLE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(30);

    #[test]
    fn a_fresh_start_has_nothing_to_wait_for() {
        let sync = BgpSync::new(false, TIMEOUT, Instant::now());
        assert!(sync.synced());
        assert_eq!(sync.next_check(), None);
    }

    #[test]
    fn a_restart_waits_for_every_peer_and_a_quiet_second() {
        let start = Instant::now();
        let mut sync = BgpSync::new(true, TIMEOUT, start);
        assert!(!sync.check(start + SETTLE, false), "a peer is still down");
        sync.changed(start + Duration::from_secs(2));
        assert!(
            !sync.check(start + Duration::from_secs(2), true),
            "not quiet yet"
        );
        assert_eq!(
            sync.next_check(),
            Some(start + Duration::from_secs(2) + SETTLE)
        );
        assert!(sync.check(start + Duration::from_secs(3), true));
        assert!(sync.synced());
    }

    #[test]
    fn a_peer_that_stays_down_does_not_hold_the_dataplane_forever() {
        let start = Instant::now();
        let mut sync = BgpSync::new(true, TIMEOUT, start);
        assert!(!sync.check(start + TIMEOUT - SETTLE, false));
        assert!(sync.check(start + TIMEOUT, false));
    }
}
