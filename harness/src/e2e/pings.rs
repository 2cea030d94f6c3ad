//! Pings that run while a test breaks something, counted by ping's own statistics
//! (`N packets transmitted, M received`): a fault test asserts that none was lost.
//!
//! ```no_run
//! # fn f(pods: &[harness::e2e::Pod]) -> anyhow::Result<()> {
//! # use std::time::Duration;
//! use harness::e2e::Pings;
//! let pings = Pings::start(&pods[0], &pods[1], Duration::from_secs(30))?;
//! // ... stop etcd, kill an agent ...
//! let stats = pings.finish()?;
//! assert_eq!(stats.lost(), 0, "{stats:?}");
//! # Ok(()) }
//! ```

use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::Pod;
use crate::process::Process;
use crate::wait::wait_until;

/// Time between echo requests.
const INTERVAL: Duration = Duration::from_millis(200);
/// How long ping waits for the last reply before it reports.
const LAST_REPLY: Duration = Duration::from_secs(2);

/// A ping from one pod to another, running in the background.
#[derive(Debug)]
pub struct Pings {
    process: Process,
    what: String,
    duration: Duration,
}

/// What ping counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingStats {
    pub transmitted: u64,
    pub received: u64,
}

impl PingStats {
    pub fn lost(&self) -> u64 {
        self.transmitted.saturating_sub(self.received)
    }
}

impl Pings {
    /// Pings `to` from `from` every 200 ms for `duration` (a fixed count, so that
    /// ping waits for the last reply instead of being cut off with one in flight).
    pub fn start(from: &Pod, to: &Pod, duration: Duration) -> Result<Self> {
        let count = (duration.as_millis() / INTERVAL.as_millis())
            .max(1)
            .to_string();
        let mut command = from.netns.command("ping");
        command.args([
            "-n",
            "-i",
            &format!("{}", INTERVAL.as_secs_f64()),
            "-c",
            &count,
            "-W",
            &LAST_REPLY.as_secs().to_string(),
            &to.ip.to_string(),
        ]);
        let what = format!("ping-{}-{}", from.name, to.name);
        let process = Process::spawn(command, from.netns.logs(), &what)?;
        Ok(Self {
            process,
            what,
            duration,
        })
    }

    /// Waits for ping to finish and reads its statistics.
    pub fn finish(mut self) -> Result<PingStats> {
        let timeout = self.duration * 2 + LAST_REPLY * 2;
        wait_until(timeout, &format!("{} to finish", self.what), || {
            Ok(!self.process.is_running())
        })?;
        let log = self.process.log();
        statistics(&log).with_context(|| format!("{}: {log}", self.what))
    }
}

/// `N packets transmitted, M received, ...` from ping's summary.
fn statistics(output: &str) -> Result<PingStats> {
    let Some(line) = output.lines().find(|l| l.contains("packets transmitted")) else {
        bail!("no statistics in ping's output");
    };
    let number = |word: &str| -> Result<u64> {
        let words: Vec<&str> = line.split([' ', ',']).filter(|w| !w.is_empty()).collect();
        let at = words
            .iter()
            .position(|w| *w == word)
            .with_context(|| format!("no {word:?} in {line:?}"))?;
        Ok(words[at.checked_sub(1).context("nothing before it")?].parse()?)
    };
    Ok(PingStats {
        transmitted: number("packets")?,
        received: number("received")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_are_read_from_pings_summary() {
        let output = "PING 10.244.1.1 (10.244.1.1) 56(84) bytes of data.\n\
                      64 bytes from 10.244.1.1: icmp_seq=1 ttl=62 time=0.1 ms\n\n\
                      --- 10.244.1.1 ping statistics ---\n\
                      150 packets transmitted, 148 received, +2 errors, 1.3% packet loss, time 30000ms\n";
        let stats = statistics(output).unwrap();
        assert_eq!(
            stats,
            PingStats {
                transmitted: 150,
                received: 148
            }
        );
        assert_eq!(stats.lost(), 2);
        assert!(statistics("PING 10.0.0.1\n").is_err());
    }
}
