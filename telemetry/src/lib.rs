//! What tabby's daemons show an operator, in one place for every binary:
//!
//! - [`logging`]: one setup for every binary: `--log` / `TABBY_LOG` (a `tracing`
//!   filter) and `--log-json` / `TABBY_LOG_JSON`, to stderr; older spellings are
//!   accepted with a deprecation warning ([`Renamed`]); a size-capped [`LogFile`]
//!   beside stderr for the CNI plugins.
//! - [`metrics`]: Prometheus metrics on the `prometheus-client` crate, one registry
//!   per process; figures read at scrape time are written through [`metrics::Scrape`];
//!   every registry starts with `tabby_build_info` and the [`process`] metrics.
//! - [`http`]: `/metrics`, `/healthz` and `/readyz`, with a header timeout, a
//!   request timeout and a connection limit.
//! - [`stages`]: where a short-lived process (the CNI plugins) spends its time,
//!   as debug spans an operator sees in the logs and a benchmark reads from a file.
//! - [`speaker_status`]: the `bgp` speaker's state as the gRPC status API shows it,
//!   for both daemons that embed a speaker.

pub mod http;
pub mod logging;
pub mod metrics;
pub mod process;
pub mod speaker_status;
pub mod stages;

pub use logging::{LogFile, LogFlags, Renamed};
