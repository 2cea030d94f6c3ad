//! The CNI spec as both plugins speak it: the runtime's environment ([`env`]), the
//! network config on stdin ([`config`]), results ([`result`]) and version
//! negotiation ([`version`]); errors and their codes are [`crate::error`].

pub mod config;
pub mod env;
pub mod result;
pub mod version;
