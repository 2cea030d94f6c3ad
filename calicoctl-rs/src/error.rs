//! The CLI's errors. Each prints as one line naming what is wrong and, where the fix
//! is not obvious, what to do; [`CliError::exit_code`] maps it to 1 or 2.

use api::datastore::ConnectError;
use api::datastore::explain::{etcd_message, with_cause};

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
    #[error("{}", ipam_message(.0))]
    Ipam(#[from] ipam::IpamError),
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

/// Settings that cannot work are usage errors; an unreachable store is not.
impl From<ConnectError> for CliError {
    fn from(error: ConnectError) -> Self {
        match error {
            ConnectError::Config(message) => Self::Usage(message),
            ConnectError::Unreachable(message) => Self::Connect(message),
        }
    }
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

/// The datastore's error. A failed request says what failed and its innermost cause
/// (the refused connection, the timeout), not the whole chain of client errors.
fn datastore_message(error: &api::datastore::Error) -> String {
    use api::datastore::Error;
    match error {
        Error::Etcd(etcd @ etcd_client::Error::GRpcStatus(_)) => {
            format!("etcd: {}", etcd_message(etcd))
        }
        Error::Kubernetes(kube::Error::Api(status)) => {
            format!("kubernetes: {} ({})", status.message, status.reason)
        }
        Error::Kubernetes(kube @ (kube::Error::Service(_) | kube::Error::HyperError(_))) => {
            let summary = "the API server cannot be reached".to_owned();
            format!("kubernetes: {}", with_cause(summary, kube))
        }
        other => other.to_string(),
    }
}

fn ipam_message(error: &ipam::IpamError) -> String {
    match error {
        ipam::IpamError::Datastore(e) => datastore_message(e),
        other => other.to_string(),
    }
}
