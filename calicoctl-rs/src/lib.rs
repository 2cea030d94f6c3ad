//! calicoctl-rs, the operator CLI for tabby.
//!
//! The first module is the output-format vocabulary every `get` shares; commands
//! land with the calicoctl-rs issue.

pub mod output;
