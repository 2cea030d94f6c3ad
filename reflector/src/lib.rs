//! tabby-reflector: a standalone BGP route reflector over the `bgp` crate.
//!
//! The first module reads the cluster id as operators write it; the configuration
//! file, the speaker wiring and the gRPC API land with the reflector issue;
//! [`rbac`] lists the Kubernetes API calls its datastore discovery makes.

pub mod cluster_id;
pub mod rbac;

pub use cluster_id::{ClusterId, ClusterIdError};
