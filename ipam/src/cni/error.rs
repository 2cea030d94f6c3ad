//! The plugin's errors and the spec's error JSON. Codes 1-11 are the spec's, 50 is
//! CNI 1.1's "plugin not available"; tabby-ipam's own start at 100.

use serde::Serialize;

use super::config::SUPPORTED_VERSIONS;
use crate::connect::ConnectError;
use crate::error::{IpamError, chain};

/// No address can be given: pools exhausted or none usable.
const CODE_NO_ADDRESS: u32 = 100;
/// A requested address cannot be given.
const CODE_REFUSED: u32 = 101;
/// CHECK found the allocation different from the ADD result.
const CODE_CHECK: u32 = 102;
/// The datastore failed in a way a retry will not fix.
const CODE_DATASTORE: u32 = 103;

#[derive(Debug, thiserror::Error)]
pub enum CniError {
    #[error(
        "cniVersion {found:?} is not supported by tabby-ipam: set the network config's cniVersion to one of {}",
        SUPPORTED_VERSIONS.join(", ")
    )]
    IncompatibleVersion { found: String },
    #[error("environment variable {name} {problem}")]
    Env { name: &'static str, problem: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("the network config on stdin is not valid JSON: {0}")]
    Decode(serde_json::Error),
    #[error("network config: {field}: {problem}")]
    Config { field: String, problem: String },
    #[error("{0}")]
    Connect(#[from] ConnectError),
    #[error("{0}")]
    Ipam(#[from] IpamError),
    #[error("CHECK: {0}")]
    Check(String),
    #[error("STATUS: {0}")]
    NotReady(String),
}

impl CniError {
    pub fn code(&self) -> u32 {
        match self {
            Self::IncompatibleVersion { .. } => 1,
            Self::Env { .. } => 4,
            Self::Io { .. } => 5,
            Self::Decode(_) => 6,
            Self::Config { .. } => 7,
            Self::Connect(ConnectError::Unreachable { .. }) => 11,
            Self::Connect(ConnectError::Kubernetes { .. }) => 7,
            Self::Ipam(error) if error.is_transient() => 11,
            Self::Ipam(IpamError::Exhausted(_) | IpamError::NoPool { .. }) => CODE_NO_ADDRESS,
            Self::Ipam(
                IpamError::InUse { .. }
                | IpamError::NotInPool { .. }
                | IpamError::PoolDisabled { .. }
                | IpamError::Reserved { .. },
            ) => CODE_REFUSED,
            Self::Ipam(IpamError::BadHandle { .. }) => 4,
            Self::Ipam(_) => CODE_DATASTORE,
            Self::Check(_) => CODE_CHECK,
            Self::NotReady(_) => 50,
        }
    }

    /// What the operator can do about it, appended to the message.
    fn hint(&self) -> Option<&'static str> {
        match self {
            Self::Ipam(IpamError::Exhausted(_)) => Some(
                "free addresses (delete pods or leaked allocations with \
                 `calicoctl-rs ipam check`), add an IPPool, or relax the IPAMConfig",
            ),
            Self::Ipam(IpamError::NoPool { .. }) => {
                Some("create or enable an IPPool whose nodeSelector selects this node")
            }
            Self::Ipam(IpamError::Datastore(api::datastore::Error::Etcd(_)))
            | Self::Connect(ConnectError::Unreachable { .. }) => {
                Some("check ipam.etcd_endpoints and that etcd is up; the runtime retries")
            }
            Self::Connect(ConnectError::Kubernetes { .. }) => Some(
                "check ipam.kubeconfig or ipam.k8s_api_root (or remove both on a node with a kubeconfig)",
            ),
            Self::Ipam(IpamError::Datastore(api::datastore::Error::Kubernetes(_)))
                if self.code() == 11 =>
            {
                Some(
                    "check that the API server (of ipam.kubeconfig or ipam.k8s_api_root) is up; the runtime retries",
                )
            }
            Self::Ipam(IpamError::Datastore(api::datastore::Error::Kubernetes(_))) => Some(
                "the API server refused: check the plugin's credentials and their RBAC rules \
                 for tabby.dev resources and core pods and nodes",
            ),
            Self::Ipam(e) if e.is_transient() => Some("the runtime retries"),
            _ => None,
        }
    }

    /// The error as the spec's error JSON, for stdout.
    pub fn to_json(&self, cni_version: &str) -> String {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire<'a> {
            cni_version: &'a str,
            code: u32,
            msg: String,
        }
        let msg = match self.hint() {
            Some(hint) => format!("{}: {hint}", chain(self)),
            None => chain(self),
        };
        let wire = Wire {
            cni_version,
            code: self.code(),
            msg,
        };
        serde_json::to_string(&wire).expect("strings and numbers serialise")
    }

    pub(crate) fn config(field: &str, problem: impl Into<String>) -> Self {
        Self::Config {
            field: field.to_owned(),
            problem: problem.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipam_errors_serialise_to_the_specs_shape_with_a_hint() {
        let error = CniError::Ipam(IpamError::Exhausted(
            "pool 10.0.0.0/24 has no free block for node n3 and strictAffinity forbids borrowing"
                .into(),
        ));
        let json: serde_json::Value = serde_json::from_str(&error.to_json("1.0.0")).unwrap();
        assert_eq!(json["cniVersion"], "1.0.0");
        assert_eq!(json["code"], 100);
        let msg = json["msg"].as_str().unwrap();
        assert!(
            msg.starts_with("pool 10.0.0.0/24 has no free block"),
            "{msg}"
        );
        assert!(msg.contains("add an IPPool"), "{msg}");
    }
}
