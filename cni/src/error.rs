//! Both plugins' one error type and the spec's error JSON.
//!
//! Codes 1-7 and 11 are the spec's well-known ones, 50 is CNI 1.1's "plugin not
//! available"; tabby's own start at 100 and each means one thing in both plugins
//! ([`code`]). A delegated IPAM plugin's error keeps its own code and details, as
//! the spec asks of plugins that delegate.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use agent::dataplane::pod::PodError;
use api::datastore::ConnectError;
use api::datastore::explain::chain;
use ipam::IpamError;
use serde::Serialize;

use crate::spec::version::SUPPORTED_VERSIONS;

/// The error codes the plugins answer with.
pub mod code {
    /// The config's `cniVersion` (or the command in it) is not supported.
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    /// `CNI_NETNS` does not open.
    pub const UNKNOWN_CONTAINER: u32 = 3;
    /// A `CNI_*` variable is missing or malformed.
    pub const INVALID_ENVIRONMENT: u32 = 4;
    pub const IO: u32 = 5;
    /// stdin (or a delegate's stdout) is not JSON.
    pub const DECODE: u32 = 6;
    pub const INVALID_CONFIG: u32 = 7;
    /// Transient (datastore unreachable, a contended lock): the runtime retries.
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// CNI 1.1 STATUS: the plugin cannot serve ADDs.
    pub const NOT_AVAILABLE: u32 = 50;
    /// tabby: no address can be given (pools exhausted, none usable).
    pub const NO_ADDRESS: u32 = 100;
    /// tabby: a requested address cannot be given.
    pub const ADDRESS_REFUSED: u32 = 101;
    /// tabby: CHECK found the attachment different from what ADD made.
    pub const CHECK_FAILED: u32 = 102;
    /// tabby: the datastore failed in a way a retry will not fix.
    pub const DATASTORE: u32 = 103;
    /// tabby: the kernel refused a change to the pod's interfaces or routes.
    pub const KERNEL: u32 = 104;
}

#[derive(Debug, thiserror::Error)]
pub enum CniError {
    #[error(
        "cniVersion {found:?} is not supported: set the network config's cniVersion to one of {}",
        SUPPORTED_VERSIONS.join(", ")
    )]
    IncompatibleVersion { found: String },
    #[error("{command} is not part of cniVersion {version}: it needs cniVersion 0.4.0 or later")]
    UnsupportedCommand {
        command: &'static str,
        version: String,
    },
    #[error(
        "network namespace {}: {source}: the runtime must pass the pod's namespace in CNI_NETNS",
        path.display()
    )]
    UnknownContainer { path: PathBuf, source: io::Error },
    #[error("environment variable {name} {problem}")]
    Env { name: &'static str, problem: String },
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("the network config on stdin is not valid JSON: {0}")]
    Decode(serde_json::Error),
    #[error("network config: {field}: {problem}")]
    Config { field: String, problem: String },
    /// tabby-cni: the pod's veth, addresses or routes.
    #[error(transparent)]
    Pod(#[from] PodError),
    /// tabby-cni: the IPAM plugin it ran failed.
    #[error("IPAM plugin {plugin} ({command}): {msg}")]
    Delegate {
        plugin: String,
        command: &'static str,
        code: u32,
        msg: String,
        details: String,
    },
    #[error("CHECK: {0}")]
    Check(String),
    #[error("datastore ({store}): {source}")]
    Connect { store: String, source: ConnectError },
    /// tabby-cni: recording or forgetting the pod.
    #[error("datastore ({store}), {what}: {source}")]
    Datastore {
        what: &'static str,
        store: String,
        /// Boxed: a datastore error is large, and this enum is every call's result.
        source: Box<api::datastore::Error>,
    },
    /// tabby-ipam: allocation and release.
    #[error(transparent)]
    Ipam(#[from] IpamError),
    #[error("STATUS: {0}")]
    NotReady(String),
    /// tabby-ipam: another call on this node holds its lock for too long.
    #[error(
        "the node's IPAM lock {} is still held after {waited:?}: another tabby-ipam call is stuck",
        path.display()
    )]
    LockTimeout { path: PathBuf, waited: Duration },
}

impl CniError {
    /// The CNI error code.
    pub fn code(&self) -> u32 {
        use code::*;
        match self {
            Self::IncompatibleVersion { .. } | Self::UnsupportedCommand { .. } => {
                INCOMPATIBLE_VERSION
            }
            Self::UnknownContainer { .. } => UNKNOWN_CONTAINER,
            Self::Env { .. } => INVALID_ENVIRONMENT,
            Self::Io { .. } | Self::Pod(PodError::Io { .. }) => IO,
            Self::Decode(_) => DECODE,
            Self::Config { .. }
            | Self::Connect {
                source: ConnectError::Config(_),
                ..
            } => INVALID_CONFIG,
            Self::Pod(PodError::Differs(_)) | Self::Check(_) => CHECK_FAILED,
            Self::Pod(_) => KERNEL,
            Self::Delegate { code, .. } => *code,
            Self::Connect { .. } | Self::LockTimeout { .. } => TRY_AGAIN_LATER,
            Self::Datastore { source, .. } if source.is_transient() => TRY_AGAIN_LATER,
            Self::Datastore { .. } => DATASTORE,
            Self::Ipam(error) if error.is_transient() => TRY_AGAIN_LATER,
            Self::Ipam(IpamError::Exhausted(_) | IpamError::NoPool { .. }) => NO_ADDRESS,
            Self::Ipam(
                IpamError::InUse { .. }
                | IpamError::NotInPool { .. }
                | IpamError::PoolDisabled { .. }
                | IpamError::Reserved { .. },
            ) => ADDRESS_REFUSED,
            Self::Ipam(IpamError::BadHandle { .. }) => INVALID_ENVIRONMENT,
            Self::Ipam(_) => DATASTORE,
            Self::NotReady(_) => NOT_AVAILABLE,
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
            Self::Connect {
                source: ConnectError::Config(_),
                ..
            } => Some(
                "check kubernetes.kubeconfig and kubernetes.k8s_api_root, or the etcd_* keys, \
                 of the CNI config",
            ),
            Self::Connect {
                source: ConnectError::Unreachable(_),
                ..
            } => Some(
                "check the config's etcd_endpoints (and its TLS and user keys) or its \
                 kubernetes section, and that the datastore is up; the runtime retries",
            ),
            Self::Ipam(IpamError::Datastore(error)) => datastore_hint(error),
            Self::Datastore { source, .. } => datastore_hint(source),
            Self::Ipam(e) if e.is_transient() => Some("the runtime retries"),
            Self::LockTimeout { .. } => Some("the runtime retries"),
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
            #[serde(skip_serializing_if = "str::is_empty")]
            details: &'a str,
        }
        let details = match self {
            Self::Delegate { details, .. } => details.as_str(),
            _ => "",
        };
        let msg = match self.hint() {
            Some(hint) => format!("{}: {hint}", chain(self)),
            None => chain(self),
        };
        let wire = Wire {
            cni_version,
            code: self.code(),
            msg,
            details,
        };
        serde_json::to_string(&wire).expect("strings and numbers serialise")
    }

    pub(crate) fn config(field: &str, problem: impl Into<String>) -> Self {
        Self::Config {
            field: field.to_owned(),
            problem: problem.into(),
        }
    }

    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}

/// What the operator can do about a datastore that failed a call.
fn datastore_hint(error: &api::datastore::Error) -> Option<&'static str> {
    use api::datastore::Error as Ds;
    match error {
        Ds::Etcd(_) => Some("check etcd_endpoints and that etcd is up; the runtime retries"),
        Ds::Kubernetes(_) if error.is_transient() => Some(
            "check that the API server (of kubernetes.kubeconfig or \
             kubernetes.k8s_api_root) is up; the runtime retries",
        ),
        Ds::Kubernetes(_) => Some(
            "the API server refused: check the plugin's credentials and their RBAC \
             rules for tabby.dev resources and core pods and nodes",
        ),
        _ if error.is_transient() => Some("the runtime retries"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_serialise_to_the_specs_error_shape() {
        let error = CniError::config("mtu", "70000 is above 65535");
        let json: serde_json::Value = serde_json::from_str(&error.to_json("1.0.0")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "cniVersion": "1.0.0",
                "code": 7,
                "msg": "network config: mtu: 70000 is above 65535"
            })
        );
    }

    #[test]
    fn a_delegates_error_keeps_its_code_and_details() {
        let error = CniError::Delegate {
            plugin: "host-local".into(),
            command: "ADD",
            code: 11,
            msg: "no free address".into(),
            details: "range 10.0.0.0/30".into(),
        };
        let json: serde_json::Value = serde_json::from_str(&error.to_json("0.4.0")).unwrap();
        assert_eq!(json["code"], 11);
        assert_eq!(json["details"], "range 10.0.0.0/30");
        assert_eq!(json["msg"], "IPAM plugin host-local (ADD): no free address");
    }

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

    #[test]
    fn each_tabby_code_means_one_thing_in_both_plugins() {
        let check = CniError::Check("handle h holds no address".into());
        let differs = CniError::Pod(PodError::Differs("route 10.0.0.5/32 is missing".into()));
        assert_eq!((check.code(), differs.code()), (102, 102));
        let refused = CniError::Ipam(IpamError::Reserved {
            ip: "10.0.0.5".parse().unwrap(),
            why: "IPReservation r".into(),
        });
        assert_eq!(refused.code(), code::ADDRESS_REFUSED);
        let kernel = CniError::Pod(PodError::Kernel {
            change: "ip link add".into(),
            errno: 17,
            reason: None,
        });
        assert_eq!(kernel.code(), code::KERNEL);
    }
}
