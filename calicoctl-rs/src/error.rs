//! The CLI's errors. Each prints as one line naming what is wrong and, where the fix
//! is not obvious, what to do; [`CliError::exit_code`] maps it to 1 or 2.

use crate::input::InputError;
use crate::output::exit;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line or the CLI configuration is wrong; nothing was done.
    #[error("{0}")]
    Usage(String),
    /// A file given with `-f` cannot be used; nothing was written.
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("{}", datastore_message(.0))]
    Datastore(#[from] api::datastore::Error),
    /// The datastore named by the configuration cannot be reached or built.
    #[error("{0}")]
    Connect(String),
    /// The operation is refused to protect what exists (for example deleting a pool
    /// that still holds allocations); the message says how to override.
    #[error("{0}")]
    Refused(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => exit::USAGE,
            _ => exit::PROBLEM,
        }
    }

    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
        let context = context.into();
        move |source| CliError::Io { context, source }
    }
}

/// The datastore's error; a failed etcd request as its status message and innermost
/// cause (the refused connection, the timeout), not the whole gRPC chain.
fn datastore_message(error: &api::datastore::Error) -> String {
    let api::datastore::Error::Etcd(etcd_client::Error::GRpcStatus(status)) = error else {
        return error.to_string();
    };
    let mut cause: &dyn std::error::Error = status;
    while let Some(source) = cause.source() {
        cause = source;
    }
    if std::ptr::addr_eq(cause, status as &dyn std::error::Error) {
        format!("etcd: {}", status.message())
    } else {
        format!("etcd: {}: {cause}", status.message())
    }
}
