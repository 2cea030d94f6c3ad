//! tabby's gRPC API and the serving helpers both daemons share.
//!
//! - [`bgp`]: the BGP status service (`tabby.bgp.v1.BgpStatus`): peers, routes,
//!   health. tabby-agent and tabby-reflector serve it; `calicoctl-rs node status`
//!   calls it.
//! - [`agent`]: the node agent's own service (`tabby.agent.v1.AgentStatus`): its
//!   node, the kernel routes it programs, its dataplane.
//! - [`speaker`]: the `bgp` crate's speaker state as the status API shows it.
//! - [`serve`]: serve tonic services on a Unix socket and optionally TCP.
//! - [`client`]: a channel to a daemon's Unix socket.
//! - [`http`]: `/metrics`, `/healthz` and `/readyz` over plain HTTP.
//! - [`metrics`]: the Prometheus text format, written by hand (a few gauges).
//!
//! The `.proto` files live in `proto/proto/` and are compiled by `build.rs` with
//! protox: no system `protoc` is needed.

pub mod client;
pub mod http;
pub mod metrics;
pub mod serve;
pub mod speaker;

/// `tabby.bgp.v1`: the BGP status service.
pub mod bgp {
    #![allow(missing_debug_implementations, clippy::all)]
    tonic::include_proto!("tabby.bgp.v1");
}

/// `tabby.agent.v1`: what only the node agent knows (its node, kernel routes,
/// dataplane).
pub mod agent {
    #![allow(missing_debug_implementations, clippy::all)]
    tonic::include_proto!("tabby.agent.v1");
}

/// The serving layer's errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("binding {what} {address}: {source}")]
    Bind {
        what: &'static str,
        address: String,
        source: std::io::Error,
    },
    #[error("serving gRPC: {0}")]
    Grpc(#[from] tonic::transport::Error),
    #[error("serving HTTP: {0}")]
    Http(std::io::Error),
}
