//! This node: which address it speaks BGP from ([`autodetect`], over the
//! [`interfaces`] the kernel reports) and its `Node` resource ([`register`]).

pub mod autodetect;
pub mod default_pools;
pub mod interfaces;
pub mod register;

pub use autodetect::{AddressChoice, DetectError, Detected, Interface, Method};
pub use register::{Identity, RegisterError, register};
