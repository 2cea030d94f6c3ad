//! The plugin's one error type and its CNI error JSON.
//!
//! Codes follow the CNI spec's table (1-7, 11 reserved by the spec); tabby's own
//! failures use 100 and up. A delegated IPAM plugin's error keeps its own code, as
//! the spec asks of plugins that delegate.

use std::io;
use std::path::PathBuf;

use serde::Serialize;

/// Versions of the CNI spec whose configurations and results this plugin speaks.
pub const SUPPORTED_VERSIONS: [&str; 3] = ["0.3.1", "0.4.0", "1.0.0"];

/// tabby's codes above the spec's range.
const CODE_KERNEL: u32 = 100;
const CODE_CHECK: u32 = 101;

#[derive(Debug, thiserror::Error)]
pub enum CniError {
    #[error(
        "cniVersion {found:?} is not supported by tabby-cni: set the network config's cniVersion to one of {}",
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
    #[error("{change}: {}{}", io::Error::from_raw_os_error(*errno), reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default())]
    Kernel {
        change: String,
        errno: i32,
        reason: Option<String>,
    },
    #[error("interface {name}: {problem}")]
    Device { name: String, problem: String },
    #[error("netlink: {0}")]
    Netlink(#[from] crate::dataplane::NetlinkError),
    #[error("IPAM plugin {plugin} ({command}): {msg}")]
    Ipam {
        plugin: String,
        command: &'static str,
        code: u32,
        msg: String,
        details: String,
    },
    #[error("CHECK: {0}")]
    Check(String),
    #[error("datastore ({store}), {what}: {reason}")]
    Datastore {
        what: &'static str,
        store: String,
        reason: String,
    },
}

impl CniError {
    /// The CNI error code.
    pub fn code(&self) -> u32 {
        match self {
            Self::IncompatibleVersion { .. } | Self::UnsupportedCommand { .. } => 1,
            Self::UnknownContainer { .. } => 3,
            Self::Env { .. } => 4,
            Self::Io { .. } => 5,
            Self::Decode(_) => 6,
            Self::Config { .. } => 7,
            Self::Kernel { .. } | Self::Device { .. } | Self::Netlink(_) => CODE_KERNEL,
            Self::Ipam { code, .. } => *code,
            Self::Check(_) => CODE_CHECK,
            // The spec's "try again later": the runtime retries.
            Self::Datastore { .. } => 11,
        }
    }

    /// The error as the CNI spec's error JSON, for stdout.
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
            Self::Ipam { details, .. } => details.as_str(),
            _ => "",
        };
        let wire = Wire {
            cni_version,
            code: self.code(),
            msg: self.to_string(),
            details,
        };
        serde_json::to_string(&wire).unwrap_or_else(|_| {
            format!(
                r#"{{"cniVersion":"{cni_version}","code":{},"msg":"unprintable error"}}"#,
                self.code()
            )
        })
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
        let error = CniError::Ipam {
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
}
