//! The CNI spec as tabby speaks it, and tabby's two CNI plugins on top of it.
//!
//! ```text
//!  runtime ─ env + stdin ─▶ tabby-cni  (interface) ─ runs ─▶ tabby-ipam (ipam_plugin)
//!                               │ agent::dataplane::pod          │ ipam::Allocator
//!                               └─ WorkloadEndpoint ─▶ datastore ◀┘ blocks, handles
//! ```
//!
//! - [`spec`]: the runtime's environment, the network config (with the datastore
//!   keys both plugins read), results, version negotiation; [`error`]: one error
//!   type for both plugins and the spec's error JSON with one table of codes.
//! - [`interface`]: tabby-cni, the interface plugin (veth, addresses, routes; IPAM
//!   delegated; the pod recorded in the datastore).
//! - [`ipam_plugin`]: tabby-ipam, the IPAM plugin over the `ipam` crate.
//! - [`rbac`]: the Kubernetes API calls tabby-cni makes of its own.
//! - [`log_file`]: both plugins' logging, to stderr and a size-capped file.

pub mod error;
pub mod interface;
pub mod ipam_plugin;
pub mod log_file;
pub mod rbac;
pub mod spec;

use std::io::{Read, Write};
use std::process::ExitCode;

use error::CniError;
use spec::version;

/// What a plugin prints to stdout, and whether it exits with success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: String,
    pub success: bool,
}

/// The network config on stdin, and the version to answer in: its `cniVersion`
/// when that is supported, else the latest.
pub fn read_stdin(mut stdin: impl Read) -> (Result<Vec<u8>, CniError>, String) {
    let mut raw = Vec::new();
    let read = stdin.read_to_end(&mut raw);
    let version = version::version_of(&raw).unwrap_or_else(|| version::LATEST.to_owned());
    match read {
        Ok(_) => (Ok(raw), version),
        Err(e) => (
            Err(CniError::io("reading the network config from stdin")(e)),
            version,
        ),
    }
}

impl Outcome {
    /// The answer to a call in `version`: what the plugin printed, or its error.
    pub fn of(version: &str, result: Result<String, CniError>) -> Self {
        match result {
            Ok(stdout) => {
                tracing::info!("CNI call succeeded");
                Self {
                    stdout,
                    success: true,
                }
            }
            Err(error) => {
                tracing::warn!(code = error.code(), %error, "CNI call failed");
                Self {
                    stdout: error.to_json(version),
                    success: false,
                }
            }
        }
    }

    /// Prints the answer (stdout is the protocol) and gives the exit code.
    pub fn finish(self) -> ExitCode {
        let mut stdout = std::io::stdout().lock();
        let printed = match self.stdout.is_empty() {
            true => Ok(()),
            false => writeln!(stdout, "{}", self.stdout).and_then(|()| stdout.flush()),
        };
        match printed.is_ok() && self.success {
            true => ExitCode::SUCCESS,
            false => ExitCode::FAILURE,
        }
    }
}
