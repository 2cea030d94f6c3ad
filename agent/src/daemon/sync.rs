//! Whether BGP has re-learned its routes after the agent started.
//!
//! An agent that restarts finds its routes in the kernel and a speaker that knows
//! nothing yet. Until the speaker has heard from its peers, the gateway routes in
//! the kernel are kept as they are (see `DesiredState::preserve_gateways`), so a
//! restart changes nothing that was right.
//!
//! A restarting speaker defers best-path selection (RFC 4724 4.1) until every
//! peer sent End-of-RIB, or its deferral time ran out, and only then tells the
//! agent anything. So BGP counts as re-learned once every planned peer is up and
//! best paths have arrived and gone quiet for a moment (or, with nothing to
//! learn, the deferral time has passed), or at the latest after a timeout (a peer
//! that stays down must not freeze the dataplane).

use std::time::{Duration, Instant};

/// How long best paths must be quiet after the last peer came up.
pub const SETTLE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct BgpSync {
    /// `None` once in sync.
    waiting: Option<Waiting>,
    timeout: Duration,
    /// The speaker's selection deferral.
    deferral: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Waiting {
    since: Instant,
    last_change: Instant,
}

impl BgpSync {
    /// In sync from the start (nothing to preserve), or waiting from `now`.
    pub fn new(restarted: bool, timeout: Duration, deferral: Duration, now: Instant) -> Self {
        let mut sync = Self {
            waiting: None,
            timeout,
            deferral,
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
        let elapsed = now.duration_since(waiting.since);
        let timed_out = elapsed >= self.timeout;
        let heard = waiting.last_change > waiting.since;
        let nothing_to_hear = elapsed >= self.deferral + SETTLE;
        let quiet = now.duration_since(waiting.last_change) >= SETTLE;
        let settled = all_peers_up && quiet && (heard || nothing_to_hear);
        if timed_out || settled {
            self.waiting = None;
            return true;
        }
        false
    }

    /// When to check again while waiting: the next moment after `now` at which
    /// the answer may change.
    pub fn next_check(&self, now: Instant) -> Option<Instant> {
        let waiting = self.waiting?;
        let due = [
            waiting.since + self.timeout,
            waiting.since + self.deferral + SETTLE,
            waiting.last_change + SETTLE,
        ];
        due.into_iter().filter(|at| *at > now).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(30);
    const DEFERRAL: Duration = Duration::from_secs(5);

    #[test]
    fn a_fresh_start_has_nothing_to_wait_for() {
        let sync = BgpSync::new(false, TIMEOUT, DEFERRAL, Instant::now());
        assert!(sync.synced());
        assert_eq!(sync.next_check(Instant::now()), None);
    }

    #[test]
    fn a_restart_waits_for_every_peer_and_a_quiet_second_after_the_routes() {
        let start = Instant::now();
        let mut sync = BgpSync::new(true, TIMEOUT, DEFERRAL, start);
        assert!(!sync.check(start + SETTLE, false), "a peer is still down");
        assert!(
            !sync.check(start + Duration::from_secs(2), true),
            "the speaker may still be deferring"
        );
        sync.changed(start + Duration::from_secs(3));
        assert!(
            !sync.check(start + Duration::from_secs(3), true),
            "not quiet yet"
        );
        assert_eq!(
            sync.next_check(start + Duration::from_secs(3)),
            Some(start + Duration::from_secs(3) + SETTLE)
        );
        assert!(sync.check(start + Duration::from_secs(4), true));
        assert!(sync.synced());
    }

    #[test]
    fn with_nothing_to_learn_the_deferral_time_is_enough() {
        let start = Instant::now();
        let mut sync = BgpSync::new(true, TIMEOUT, DEFERRAL, start);
        assert!(!sync.check(start + DEFERRAL, true));
        assert!(sync.check(start + DEFERRAL + SETTLE, true));
    }

    #[test]
    fn a_peer_that_stays_down_does_not_hold_the_dataplane_forever() {
        let start = Instant::now();
        let mut sync = BgpSync::new(true, TIMEOUT, DEFERRAL, start);
        assert!(!sync.check(start + TIMEOUT - SETTLE, false));
        // Only the timeout is left to wait for.
        assert_eq!(
            sync.next_check(start + TIMEOUT - SETTLE),
            Some(start + TIMEOUT)
        );
        assert!(sync.check(start + TIMEOUT, false));
    }
}
