//! `tabby-bgperf`: the route-reflector benchmark, in the style of bgperf.
//!
//! ```text
//!   tester sessions ──UPDATEs──▶ target (iBGP route reflector) ──UPDATEs──▶ monitor sessions
//!   (pre-encoded stream)          BIRD | FRR bgpd | GoBGP | tabby         (count NLRI in a bitset)
//! ```
//!
//! The target runs in its own namespace of a [`Lab`](harness::Lab); the tester and
//! monitor sessions run in this process, inside a second namespace with one address
//! per session. The clock runs from the first UPDATE written until every monitor
//! holds every prefix; the target's CPU time and peak RSS come from `/proc`.
//!
//! - [`workload`]: W1-W5, who announces what and who must receive it.
//! - [`stream`]: the testers' UPDATEs, encoded before the clock starts.
//! - [`held`]: a monitor's count of the prefixes it holds, from raw UPDATE bytes.
//! - [`session`]: a minimal BGP session (OPEN, KEEPALIVE, then bytes both ways).
//! - [`target`]: starting each daemon as a passive route reflector; `/proc` figures.
//! - [`run`]: one measured run.

pub mod held;
pub mod run;
pub mod session;
pub mod stream;
pub mod target;
pub mod workload;

pub use run::{Options, Outcome, run};
pub use target::{TargetKind, Usage};
pub use workload::Workload;
