//! BGP sessions: configuration, the sans-IO state machine, OPEN negotiation and
//! collision resolution. The tokio driver feeds it; the RIB consumes its updates.

pub mod collision;
pub mod config;
pub mod driver;
pub mod fsm;
pub mod negotiate;
#[cfg(test)]
mod transitions;

pub use config::{GracefulRestartConfig, SessionConfig};
pub use driver::{
    Command, Event, EventSink, Outgoing, SessionHandle, SessionStats, UPDATE_QUEUE, spawn,
    spawn_into, spawn_linked,
};
pub use fsm::{DownReason, Input, Output, Session, State, Timer};
pub use negotiate::{Negotiated, negotiate};
