//! A BFD session as a sans-IO state machine (RFC 5880 section 6), asynchronous mode
//! only: this system never asks for Demand mode, sends no Echo packets, takes the
//! Active role and authenticates nothing (a packet with the A bit is discarded).
//! When the peer asks for Demand mode, periodic packets stop as section 6.8.7
//! requires, and Polls are still answered.
//!
//! The states and what moves between them (section 6.2; an event is the State field
//! of a received packet, or TIMER, the Detection Time passing):
//!
//! ```text
//!                              +--+
//!                              |  | UP, ADMIN DOWN, TIMER
//!                              |  V
//!                      DOWN  +------+  INIT
//!               +------------|      |------------+
//!               |            | DOWN |            |
//!               |  +-------->|      |<--------+  |
//!               |  |         +------+         |  |
//!               |  |                          |  |
//!               |  |               ADMIN DOWN,|  |
//!               |  |ADMIN DOWN,          DOWN,|  |
//!               |  |TIMER                TIMER|  |
//!               V  |                          |  V
//!             +------+                      +------+
//!        +----|      |                      |      |----+
//!    DOWN|    | INIT |--------------------->|  UP  |    |INIT, UP
//!        +--->|      | INIT, UP             |      |<---+
//!             +------+                      +------+
//! ```
//!
//! Locally, [`Input::AdminDown`] moves any state to AdminDown, where received
//! packets change nothing, and [`Input::AdminUp`] moves AdminDown back to Down.

mod config;
mod fsm;
#[cfg(test)]
mod tests;

pub use config::{MAX_INTERVAL, MIN_INTERVAL, Timers, TimersError};
pub use fsm::{Discard, Input, Output, Session, Status, Timer};
