//! tabby-reflector: a standalone BGP route reflector over the `bgp` crate.
//!
//! - [`config`]: the YAML file, validated with field paths.
//! - [`desired`]: what the file and the datastore ask of the speaker.
//! - [`changes`]: the difference a reload applies, leaving other sessions alone.
//! - [`discovery`]: peers from the datastore's `Node`s, followed with a watch;
//!   [`rbac`] lists the Kubernetes API calls it makes.
//! - [`daemon`]: the loop owning the speaker: reloads, notices, shutdown.
//! - [`status`], [`observe`]: the gRPC status API and `/metrics`, `/readyz`.

pub mod changes;
pub mod cluster_id;
pub mod config;
pub mod daemon;
pub mod desired;
pub mod discovery;
pub mod observe;
pub mod rbac;
pub mod status;
pub mod view;

pub use cluster_id::{ClusterId, ClusterIdError};
