//! Waiting for a condition with a deadline: poll often, fail with what was last seen.
//! Tests never sleep a fixed time.

use std::fmt::Display;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};

/// How often a condition is polled.
const INTERVAL: Duration = Duration::from_millis(50);

/// What a poll returns: ready with a value, or not yet (with an observation).
pub trait Poll {
    type Output;
    /// `Ok(value)` when ready; `Err(observation)` when not.
    fn ready(self) -> Result<Self::Output, String>;
}

impl Poll for bool {
    type Output = ();
    fn ready(self) -> Result<(), String> {
        if self {
            Ok(())
        } else {
            Err("condition false".into())
        }
    }
}

impl<T> Poll for Option<T> {
    type Output = T;
    fn ready(self) -> Result<T, String> {
        self.ok_or_else(|| "nothing yet".into())
    }
}

/// Not ready, with a description of what was seen instead.
impl<T, E: Display> Poll for Result<T, E> {
    type Output = T;
    fn ready(self) -> Result<T, String> {
        self.map_err(|e| e.to_string())
    }
}

/// Polls `check` until it is ready or `timeout` passes. Errors returned by `check` count
/// as "not yet" (a daemon's socket may not exist yet); the timeout error names `what`
/// and the last observation or error.
///
/// ```no_run
/// # use std::time::Duration;
/// # fn established() -> anyhow::Result<bool> { Ok(true) }
/// harness::wait_until(Duration::from_secs(10), "the session is established", || established())?;
/// # anyhow::Ok(())
/// ```
pub fn wait_until<P: Poll>(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<P>,
) -> Result<P::Output> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match check() {
            Ok(poll) => match poll.ready() {
                Ok(value) => return Ok(value),
                Err(observation) => observation,
            },
            Err(error) => format!("error: {error:#}"),
        };
        if Instant::now() >= deadline {
            return Err(anyhow!(
                "timed out after {timeout:?} waiting for {what}; last observation: {last}"
            ));
        }
        std::thread::sleep(INTERVAL);
    }
}

/// Waits until `ready` (a question to a daemon's socket) says so, failing at once
/// when `process` exits meanwhile rather than at the deadline.
pub fn wait_serving(
    mut process: Option<&mut crate::process::Process>,
    timeout: Duration,
    what: &str,
    mut ready: impl FnMut() -> Result<Result<(), String>>,
) -> Result<()> {
    let exited = wait_until(timeout, what, || {
        if let Some(process) = process.as_deref_mut()
            && let Err(exited) = process.check_running()
        {
            return Ok(Ok(Some(exited)));
        }
        Ok(ready()?.map(|()| None))
    })?;
    exited.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_value_once_ready() {
        let mut polls = 0;
        let value = wait_until(Duration::from_secs(5), "third poll", || {
            polls += 1;
            Ok((polls == 3).then_some(polls))
        })
        .unwrap();
        assert_eq!(value, 3);
    }

    #[test]
    fn timeout_names_the_condition_and_the_last_observation() {
        let error = wait_until(Duration::from_millis(120), "the moon", || {
            Ok(Err::<(), _>("still dark"))
        })
        .unwrap_err()
        .to_string();
        assert!(error.contains("the moon"), "{error}");
        assert!(error.contains("still dark"), "{error}");
    }

    #[test]
    fn errors_are_retried_and_reported() {
        let error = wait_until(
            Duration::from_millis(120),
            "a socket",
            || -> Result<bool> { Err(anyhow!("no such file")) },
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("no such file"), "{error}");
    }
}
