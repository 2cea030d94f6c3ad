//! tabby's gRPC API: wire types only (no domain crate; the conversions from the
//! speaker's types live in `telemetry::speaker_status`), and the transport both
//! ends share.
//!
//! - [`bgp_status`]: the BGP status service (`tabby.bgp.v1.BgpStatus`): peers,
//!   routes, health. tabby-agent and tabby-reflector serve it; `calicoctl-rs node
//!   status` calls it.
//! - [`agent`]: the node agent's own service (`tabby.agent.v1.AgentStatus`): its
//!   node, the kernel routes it programs, its dataplane.
//! - [`serve`]: serve tonic services on a Unix socket (owner-only) and optionally TCP.
//! - [`client`]: a channel to a daemon's Unix socket.
//!
//! The `.proto` files live in `proto/proto/` and are compiled by `build.rs` with
//! protox: no system `protoc` is needed.

pub mod client;
pub mod serve;

/// `tabby.bgp.v1`: the BGP status service.
pub mod bgp_status {
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
}
