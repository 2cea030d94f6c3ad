//! A session's timers: what it asks of the peer and how many missed packets it
//! tolerates. Valid by construction.

use std::fmt;
use std::time::Duration;

/// The shortest interval accepted: software timers below it are noise.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// The longest interval accepted.
pub const MAX_INTERVAL: Duration = Duration::from_secs(60);

/// Desired Min TX Interval, Required Min RX Interval and Detect Mult (RFC 5880
/// section 6.8.1). The default, 300 ms × 3, detects a dead peer in 900 ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timers {
    desired_min_tx: Duration,
    required_min_rx: Duration,
    detect_mult: u8,
}

/// Timers out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimersError {
    #[error("{field} {value:?} is outside {MIN_INTERVAL:?} to {MAX_INTERVAL:?}")]
    Interval {
        field: &'static str,
        value: Duration,
    },
    #[error("multiplier must be at least 1")]
    ZeroMultiplier,
}

impl Timers {
    /// `min_tx`: how often this system would like to send; `min_rx`: the fastest it
    /// is willing to receive; `multiplier`: packets missed before the peer is down.
    pub fn new(min_tx: Duration, min_rx: Duration, multiplier: u8) -> Result<Self, TimersError> {
        for (field, value) in [("minTx", min_tx), ("minRx", min_rx)] {
            if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&value) {
                return Err(TimersError::Interval { field, value });
            }
        }
        if multiplier == 0 {
            return Err(TimersError::ZeroMultiplier);
        }
        Ok(Self {
            desired_min_tx: min_tx,
            required_min_rx: min_rx,
            detect_mult: multiplier,
        })
    }

    pub fn desired_min_tx(&self) -> Duration {
        self.desired_min_tx
    }

    pub fn required_min_rx(&self) -> Duration {
        self.required_min_rx
    }

    pub fn detect_mult(&self) -> u8 {
        self.detect_mult
    }

    pub(super) fn desired_min_tx_us(&self) -> u32 {
        micros(self.desired_min_tx)
    }

    pub(super) fn required_min_rx_us(&self) -> u32 {
        micros(self.required_min_rx)
    }
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            desired_min_tx: Duration::from_millis(300),
            required_min_rx: Duration::from_millis(300),
            detect_mult: 3,
        }
    }
}

impl fmt::Display for Timers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "minTx {:?}, minRx {:?} × {}",
            self.desired_min_tx, self.required_min_rx, self.detect_mult
        )
    }
}

/// Microseconds of an interval within [`MAX_INTERVAL`], which fits in 32 bits.
fn micros(interval: Duration) -> u32 {
    u32::try_from(interval.as_micros()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_300_ms_times_3() {
        let timers = Timers::default();
        assert_eq!(
            Timers::new(Duration::from_millis(300), Duration::from_millis(300), 3),
            Ok(timers)
        );
        assert_eq!(timers.desired_min_tx_us(), 300_000);
    }

    #[test]
    fn intervals_out_of_range_and_a_zero_multiplier_are_refused_by_name() {
        let ms = Duration::from_millis;
        let error = Timers::new(ms(5), ms(300), 3).unwrap_err();
        assert_eq!(
            error,
            TimersError::Interval {
                field: "minTx",
                value: ms(5)
            }
        );
        assert!(error.to_string().contains("minTx 5ms"), "{error}");
        assert!(matches!(
            Timers::new(ms(300), Duration::from_secs(61), 3),
            Err(TimersError::Interval { field: "minRx", .. })
        ));
        assert_eq!(
            Timers::new(ms(300), ms(300), 0),
            Err(TimersError::ZeroMultiplier)
        );
    }
}
