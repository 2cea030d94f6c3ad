//! tabby's resources and datastore layer.
//!
//! - [`resources`]: the kinds (`IPPool`, `IPAMBlock`, `BGPPeer`, ...) with validation
//!   and defaults.
//! - [`selector`]: Calico's label selector grammar.
//! - [`yaml`]: reading and writing resources as operators write them.

pub mod datastore;
pub mod resources;
pub mod selector;
pub mod yaml;
