//! tabby-agent, the node agent, and the kernel side of tabby-cni (`dataplane::pod`).
//!
//! - [`veth`]: names of the host side of pod veth pairs, shared by plugin and agent.
//! - [`desired`]: the pure desired-state function (kernel state, BGP export, import
//!   checks) from the datastore and the speaker's best paths.
//! - [`dataplane`]: the kernel reconciler (routes, tunnels) over batched rtnetlink,
//!   and a pod's veth, addresses and routes as tabby-cni attaches them.
//! - [`config`]: `tabby-agent`'s flags and `TABBY_*` variables.
//! - [`daemon`]: `tabby-agent`'s loop: datastore and speaker in, kernel and BGP out.
//! - [`grpc`]: the status API (gRPC on a Unix socket) and `/metrics` `/readyz`.
//! - [`nat`]: NAT outgoing as tabby's own nftables tables.
//! - [`node`]: BGP address autodetection and the node's registration.
//! - [`peering`]: the BGP sessions this node should have, and the speaker wiring.
//! - [`rbac`]: the Kubernetes API calls the agent makes (what its role grants).

pub mod config;
pub mod daemon;
pub mod dataplane;
pub mod desired;
pub mod grpc;
pub mod nat;
pub mod node;
pub mod peering;
pub mod rbac;
pub mod veth;
