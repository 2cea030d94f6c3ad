//! A timer a session task arms, re-arms and cancels; dropping it (with the task)
//! cancels it.

use std::future::pending;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Instant, Sleep, sleep};

#[derive(Debug)]
pub(super) struct Alarm {
    sleep: Pin<Box<Sleep>>,
    armed: bool,
}

impl Alarm {
    pub fn new() -> Self {
        Self {
            sleep: Box::pin(sleep(Duration::ZERO)),
            armed: false,
        }
    }

    /// Fires after `after`, replacing any earlier setting.
    pub fn arm(&mut self, after: Duration) {
        self.sleep.as_mut().reset(Instant::now() + after);
        self.armed = true;
    }

    pub fn cancel(&mut self) {
        self.armed = false;
    }

    /// Completes when the armed timer fires (disarming it); never while disarmed.
    pub async fn fired(&mut self) {
        if !self.armed {
            return pending().await;
        }
        self.sleep.as_mut().await;
        self.armed = false;
    }
}
