//! The kernel boundary: pure builders and readers of rtnetlink messages, one module
//! per kernel object, and the socket that sends them in batches.

pub mod address;
pub mod link;
pub mod neigh;
pub mod routes;
pub mod socket;
pub mod veth;

/// Failures of the netlink conversation itself (not of single changes, which the
/// reconciler reports per change).
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("netlink {op}: {source}")]
    Io {
        op: &'static str,
        source: std::io::Error,
    },
    #[error("netlink datagram of {len} bytes does not fit the receive buffer")]
    Truncated { len: usize },
    #[error("undecodable netlink message: {0}")]
    Decode(String),
    #[error("netlink dump refused: {}", std::io::Error::from_raw_os_error(*errno))]
    Dump { errno: i32 },
    #[error("netlink dump interrupted by concurrent changes on every attempt")]
    DumpInterrupted,
}
