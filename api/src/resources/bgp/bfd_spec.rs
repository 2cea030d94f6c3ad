//! The `bfd` block of `BGPConfiguration` (for the node-to-node mesh) and of
//! `BGPPeer`: whether the sessions run BFD (RFC 5880) beside BGP, and its timers.
//! `docs/bfd.md` says what a BFD Down does to the BGP session.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::resources::{GoDuration, ValidationError};

/// The defaults: 300 ms × 3, a dead peer detected in 900 ms.
pub const DEFAULT_BFD_INTERVAL: Duration = Duration::from_millis(300);
pub const DEFAULT_BFD_MULTIPLIER: u8 = 3;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BfdSpec {
    #[serde(default)]
    pub enabled: bool,
    /// The fastest this end accepts the peer's packets (Required Min RX Interval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_rx: Option<GoDuration>,
    /// How often this end would like to send (Desired Min TX Interval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_tx: Option<GoDuration>,
    /// Packets missed before the peer is declared down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiplier: Option<u8>,
    /// When BFD goes down and the peer offered graceful restart, keep its routes
    /// stale for its restart time (as after a TCP reset) instead of removing them
    /// at once. Off by default: BFD wins (RFC 5882 section 4.3, `docs/bfd.md`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub graceful_restart_on_down: bool,
    /// Strict mode (FRR's `neighbor X bfd strict`): the BGP session is neither
    /// opened nor accepted until BFD is Up, and after a BFD Down it waits for BFD
    /// Up again. Off by default: BGP runs whatever BFD says (`docs/bfd.md`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strict: bool,
}

impl BfdSpec {
    /// The session's timers, defaults filled in; `None` when BFD is off.
    pub fn timers(&self) -> Option<bfd::Timers> {
        self.enabled.then(|| self.checked().unwrap_or_default())
    }

    /// Refuses timers the BFD session would (the range is the `bfd` crate's).
    pub fn validate(&self, path: &str) -> Result<(), ValidationError> {
        use bfd::session::{MAX_INTERVAL, MIN_INTERVAL, TimersError};
        match self.checked() {
            Ok(_) => Ok(()),
            Err(TimersError::Interval { field, value }) => Err(ValidationError::rendered(
                format!("{path}.{field}"),
                format!("\"{}\"", GoDuration(value)),
                format!(
                    "is outside {} to {}",
                    GoDuration(MIN_INTERVAL),
                    GoDuration(MAX_INTERVAL)
                ),
            )),
            Err(TimersError::ZeroMultiplier) => Err(ValidationError::new(
                format!("{path}.multiplier"),
                0,
                "must be at least 1",
            )),
        }
    }

    fn checked(&self) -> Result<bfd::Timers, bfd::session::TimersError> {
        bfd::Timers::new(
            self.min_tx.map_or(DEFAULT_BFD_INTERVAL, |d| d.0),
            self.min_rx.map_or(DEFAULT_BFD_INTERVAL, |d| d.0),
            self.multiplier.unwrap_or(DEFAULT_BFD_MULTIPLIER),
        )
    }
}
