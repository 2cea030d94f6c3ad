//! tabby's resources and datastore layer.
//!
//! - [`resources`]: the kinds (`IPPool`, `IPAMBlock`, `BGPPeer`, ...) with validation
//!   and defaults.
//! - [`selector`]: Calico's label selector grammar.
//! - [`datastore`]: the `Datastore` trait and its kubernetes, etcd and memory backends.
//! - [`crd`]: the CustomResourceDefinitions, generated from the types (`crdgen`).
//! - [`services`]: Kubernetes Services and EndpointSlices as routing reads them.
//! - [`rbac`]: the Kubernetes API calls a component makes, as RBAC names them.
//! - [`yaml`]: reading and writing resources as operators write them.

pub mod crd;
pub mod datastore;
pub mod rbac;
pub mod resources;
pub mod selector;
pub mod services;
pub mod yaml;
