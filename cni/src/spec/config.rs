//! The network configuration the runtime writes to stdin, as both plugins read it.
//!
//! Unknown top-level keys are accepted on purpose (unlike tabby's own configs):
//! runtimes add `runtimeConfig`, `args` and keys for other plugins of a chain, and
//! the spec tells plugins to ignore what they do not use. The `ipam` section is
//! tabby-ipam's and is checked strictly there.
//!
//! The datastore and the node are named with Calico's plugin keys, at the top level:
//!
//! ```json
//! "datastore_type": "kubernetes",            (or "etcdv3")
//! "kubernetes": {"kubeconfig": "/etc/cni/net.d/tabby/kubeconfig", "k8s_api_root": "..."},
//! "etcd_endpoints": "https://10.0.0.1:2379,https://10.0.0.2:2379",
//! "etcd_ca_cert_file": "...", "etcd_cert_file": "...", "etcd_key_file": "...",
//! "etcd_username": "...", "etcd_password": "...", "etcd_prefix": "/tabby/v1",
//! "nodename": "node-1",                      (else nodename_file, else the host name)
//! "mtu": 1440                                (else mtu_file, written by tabby-agent)
//! ```
//!
//! tabby's earlier places still work, each with a warning: the datastore keys and
//! `nodename` inside the `ipam` section, and `kubeconfig` / `k8s_api_root` at the top.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use agent::config::{MTU_FILE, NODENAME_FILE};
use api::datastore::DatastoreConfig;
use api::datastore::config::{DatastoreType, Settings, setting, split_endpoints};
use ipnet::IpNet;
use serde::Deserialize;
use serde_json::Value;

use super::result::CniResult;
use super::version;
use crate::error::CniError;

/// Smallest MTU the kernel accepts for IPv4 (RFC 791); veths allow up to 65535.
const MTU_RANGE: std::ops::RangeInclusive<u32> = 68..=65535;

/// A checked network config.
#[derive(Debug, Clone)]
pub struct NetConf {
    pub cni_version: String,
    /// The network's name: the first part of every IPAM handle.
    pub name: String,
    /// `ipam.type`: the IPAM plugin's binary name on `CNI_PATH`.
    pub ipam_plugin: String,
    /// The `ipam` section as written (tabby-ipam reads its own keys from it).
    pub ipam: Value,
    /// The ADD result, given to CHECK and DEL (DEL does not need it).
    pub prev_result: Option<Value>,
    /// `runtimeConfig.ips` (the `ips` capability): addresses the runtime asks for.
    pub requested_ips: Vec<IpAddr>,
    /// `cni.dev/valid-attachments` (GC, CNI 1.1).
    pub valid_attachments: Vec<Attachment>,
    /// The datastore keys, named as the config spells them.
    pub datastore: Settings,
    mtu: Option<u32>,
    mtu_file: Option<PathBuf>,
    nodename: Option<(String, &'static str)>,
    nodename_file: Option<PathBuf>,
    /// Old spellings found, for the plugin to log.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Attachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
}

/// The config as the runtime writes it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    cni_version: String,
    name: String,
    ipam: Option<Value>,
    mtu: Option<u32>,
    prev_result: Option<Value>,
    #[serde(default)]
    runtime_config: RuntimeConfig,
    #[serde(rename = "cni.dev/valid-attachments", default)]
    valid_attachments: Vec<Attachment>,
    #[serde(rename = "mtu_file")]
    mtu_file: Option<PathBuf>,
    #[serde(rename = "nodename_file")]
    nodename_file: Option<PathBuf>,
    #[serde(flatten)]
    keys: DatastoreKeys,
    kubernetes: Option<Kubernetes>,
}

#[derive(Debug, Default, Deserialize)]
struct RuntimeConfig {
    #[serde(default)]
    ips: Vec<String>,
}

/// Calico's `kubernetes` object.
#[derive(Debug, Default, Deserialize)]
struct Kubernetes {
    kubeconfig: Option<PathBuf>,
    k8s_api_root: Option<String>,
}

/// The datastore keys: at the top level (Calico's place), or in the `ipam` section
/// (tabby's earlier place) where `kubeconfig` and `k8s_api_root` sat beside them.
#[derive(Debug, Default, Deserialize)]
struct DatastoreKeys {
    datastore_type: Option<String>,
    etcd_endpoints: Option<String>,
    etcd_prefix: Option<String>,
    etcd_ca_cert_file: Option<PathBuf>,
    etcd_cert_file: Option<PathBuf>,
    etcd_key_file: Option<PathBuf>,
    etcd_username: Option<String>,
    etcd_password: Option<String>,
    kubeconfig: Option<PathBuf>,
    k8s_api_root: Option<String>,
    nodename: Option<String>,
}

/// The datastore keys tabby-ipam used to read from its section.
pub const EARLIER_IPAM_KEYS: [&str; 6] = [
    "datastore_type",
    "etcd_endpoints",
    "etcd_prefix",
    "kubeconfig",
    "k8s_api_root",
    "nodename",
];

impl NetConf {
    /// Parses and checks stdin.
    pub fn parse(stdin: &[u8]) -> Result<Self, CniError> {
        let wire: Wire = serde_json::from_slice(stdin).map_err(|e| {
            if e.is_data() {
                // Valid JSON of the wrong shape: a config mistake, not a decode error.
                CniError::config("(top level)", e.to_string())
            } else {
                CniError::Decode(e)
            }
        })?;
        version::check(&wire.cni_version)?;
        if wire.name.is_empty() {
            return Err(CniError::config("name", "is empty: name the network"));
        }
        let Some(ipam) = wire.ipam else {
            return Err(CniError::config(
                "ipam",
                "is missing: add \"ipam\": {\"type\": \"tabby-ipam\"} (or another IPAM plugin)",
            ));
        };
        let ipam_plugin = ipam
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if ipam_plugin.is_empty() {
            return Err(CniError::config(
                "ipam.type",
                "is missing: name an IPAM plugin binary on CNI_PATH, e.g. \"tabby-ipam\"",
            ));
        }
        if ipam_plugin.contains('/') || ipam_plugin.starts_with('.') {
            return Err(CniError::config(
                "ipam.type",
                format!(
                    "is {ipam_plugin:?}: name an IPAM plugin binary on CNI_PATH, e.g. \"tabby-ipam\""
                ),
            ));
        }
        let section: DatastoreKeys = serde_json::from_value(ipam.clone())
            .map_err(|e| CniError::config("ipam", e.to_string()))?;
        let mut warnings = Vec::new();
        let kubernetes = wire.kubernetes.unwrap_or_default();
        let datastore = datastore(&wire.keys, kubernetes, &section, &mut warnings)?;
        let nodename = match (wire.keys.nodename, section.nodename) {
            (Some(name), _) => Some((name, "nodename")),
            (None, Some(name)) => {
                warnings.push(deprecated("ipam.nodename"));
                Some((name, "ipam.nodename"))
            }
            (None, None) => None,
        };
        let requested_ips = wire
            .runtime_config
            .ips
            .iter()
            .map(|text| {
                parse_ip(text).ok_or_else(|| {
                    CniError::config(
                        "runtimeConfig.ips",
                        format!("{text:?} is not an IP address (or address/prefix)"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        let conf = Self {
            cni_version: wire.cni_version,
            name: wire.name,
            ipam_plugin,
            ipam,
            prev_result: wire.prev_result,
            requested_ips,
            valid_attachments: wire.valid_attachments,
            datastore,
            mtu: wire.mtu,
            mtu_file: wire.mtu_file,
            nodename,
            nodename_file: wire.nodename_file,
            warnings,
        };
        if let Some(mtu) = conf.mtu {
            check_mtu(mtu)?;
        }
        Ok(conf)
    }

    /// Whether the config names a datastore (tabby-cni records pods only then).
    pub fn has_datastore(&self) -> bool {
        self.datastore.is_given()
    }

    /// The datastore: the one named, else the kubernetes datastore as a node's
    /// kubeconfig or service account reaches it.
    pub fn datastore_config(&self) -> Result<DatastoreConfig, CniError> {
        let env = |name: &str| std::env::var(name).ok();
        self.datastore
            .clone()
            .resolve(&env)
            .map_err(|problem| CniError::config("datastore", problem))
    }

    /// Both ends of the veth: `mtu`, else the MTU tabby-agent wrote (`mtu_file`),
    /// else none (the kernel's default, 1500).
    pub fn mtu(&self) -> Result<Option<u32>, CniError> {
        let mtu = match self.mtu {
            Some(mtu) => Some(mtu),
            None => read_mtu(self.mtu_file.as_deref())?,
        };
        if let Some(mtu) = mtu {
            check_mtu(mtu)?;
        }
        Ok(mtu)
    }

    /// This node's name: `nodename`, else `TABBY_NODENAME` (through `var`), else the
    /// file tabby-agent writes (`nodename_file`, which must read when given), else the
    /// host name.
    pub fn node(&self, var: &dyn Fn(&str) -> Option<String>) -> Result<String, CniError> {
        let (name, field) = match (
            &self.nodename,
            var("TABBY_NODENAME").filter(|n| !n.is_empty()),
        ) {
            (Some((name, field)), _) => (name.clone(), *field),
            (None, Some(name)) => (name, "TABBY_NODENAME"),
            (None, None) => match self.agents_nodename()? {
                Some(name) => (name, "nodename_file"),
                None => {
                    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                        .map_err(CniError::io("reading the host name (set nodename instead)"))?;
                    (host.trim().to_ascii_lowercase(), "the host name")
                }
            },
        };
        if !ipam::handles::is_object_name(&name) {
            return Err(CniError::config(
                field,
                format!(
                    "{name:?} is not a Kubernetes node name (lower-case letters, digits, '-', '.')"
                ),
            ));
        }
        Ok(name)
    }

    /// The name tabby-agent wrote; none when the default file is absent.
    fn agents_nodename(&self) -> Result<Option<String>, CniError> {
        let path = self
            .nodename_file
            .clone()
            .unwrap_or_else(|| NODENAME_FILE.into());
        match std::fs::read_to_string(&path) {
            Ok(name) => Ok(Some(name.trim().to_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.nodename_file.is_none() => {
                Ok(None)
            }
            Err(e) => Err(CniError::config(
                "nodename",
                format!(
                    "is not set and {} cannot be read ({e}): is tabby-agent running on this node?",
                    path.display()
                ),
            )),
        }
    }

    /// `prevResult`, which CHECK requires.
    pub fn prev_result(&self) -> Result<CniResult, CniError> {
        let value = self.prev_result.clone().ok_or_else(|| {
            CniError::config("prevResult", "is missing: CHECK needs the result of ADD")
        })?;
        serde_json::from_value(value).map_err(|e| CniError::config("prevResult", e.to_string()))
    }
}

/// The datastore settings at Calico's places, else at tabby's earlier ones
/// (`kubeconfig` and `k8s_api_root` at the top, everything in the `ipam` section),
/// with a warning for each key found at an earlier place.
fn datastore(
    top: &DatastoreKeys,
    kubernetes: Kubernetes,
    section: &DatastoreKeys,
    warnings: &mut Vec<String>,
) -> Result<Settings, CniError> {
    let calico = Settings {
        kubeconfig: kubernetes
            .kubeconfig
            .and_then(|p| setting(p, "kubernetes.kubeconfig")),
        k8s_api_endpoint: kubernetes
            .k8s_api_root
            .and_then(|u| setting(u, "kubernetes.k8s_api_root")),
        ..keys(top, "")?
    };
    let earlier_top = Settings {
        kubeconfig: top
            .kubeconfig
            .clone()
            .and_then(|p| setting(p, "kubeconfig")),
        k8s_api_endpoint: top
            .k8s_api_root
            .clone()
            .and_then(|u| setting(u, "k8s_api_root")),
        ..Settings::default()
    };
    let earlier_section = Settings {
        kubeconfig: section
            .kubeconfig
            .clone()
            .and_then(|p| setting(p, "ipam.kubeconfig")),
        k8s_api_endpoint: section
            .k8s_api_root
            .clone()
            .and_then(|u| setting(u, "ipam.k8s_api_root")),
        ..keys(section, "ipam.")?
    };
    for old in earlier_top.sources().chain(earlier_section.sources()) {
        warnings.push(deprecated(old));
    }
    Ok(calico.or(earlier_top).or(earlier_section))
}

/// The warning for a key at tabby's earlier place.
fn deprecated(old: &str) -> String {
    let new = match old.strip_prefix("ipam.").unwrap_or(old) {
        "kubeconfig" => "kubernetes.kubeconfig",
        "k8s_api_root" => "kubernetes.k8s_api_root",
        key => key,
    };
    format!("{old} is deprecated: use {new} at the top level of the plugin's config")
}

/// The `datastore_type` and `etcd_*` keys, named with `prefix` (`""` or `"ipam."`).
fn keys(keys: &DatastoreKeys, prefix: &str) -> Result<Settings, CniError> {
    let named = |key: &str| format!("{prefix}{key}");
    let datastore_type = match &keys.datastore_type {
        Some(text) => setting(
            text.parse::<DatastoreType>()
                .map_err(|e| CniError::config(&named("datastore_type"), e))?,
            named("datastore_type"),
        ),
        None => None,
    };
    let path =
        |value: &Option<PathBuf>, key: &str| value.clone().and_then(|p| setting(p, named(key)));
    let text =
        |value: &Option<String>, key: &str| value.clone().and_then(|v| setting(v, named(key)));
    Ok(Settings {
        datastore_type,
        etcd_endpoints: keys
            .etcd_endpoints
            .as_deref()
            .and_then(|list| setting(split_endpoints(list), named("etcd_endpoints"))),
        etcd_prefix: text(&keys.etcd_prefix, "etcd_prefix"),
        etcd_ca_cert_file: path(&keys.etcd_ca_cert_file, "etcd_ca_cert_file"),
        etcd_cert_file: path(&keys.etcd_cert_file, "etcd_cert_file"),
        etcd_key_file: path(&keys.etcd_key_file, "etcd_key_file"),
        etcd_username: text(&keys.etcd_username, "etcd_username"),
        etcd_password: text(&keys.etcd_password, "etcd_password"),
        ..Settings::default()
    })
}

fn check_mtu(mtu: u32) -> Result<(), CniError> {
    if MTU_RANGE.contains(&mtu) {
        return Ok(());
    }
    Err(CniError::config(
        "mtu",
        format!(
            "{mtu} is outside {}..={}: use the underlay MTU minus the encapsulation overhead",
            MTU_RANGE.start(),
            MTU_RANGE.end()
        ),
    ))
}

/// The MTU tabby-agent wrote for pods; none when it has not (yet).
fn read_mtu(file: Option<&Path>) -> Result<Option<u32>, CniError> {
    let path = file.unwrap_or(Path::new(MTU_FILE));
    match std::fs::read_to_string(path) {
        Ok(text) => text.trim().parse().map(Some).map_err(|_| {
            CniError::config(
                "mtu_file",
                format!("{} holds {:?}, not an MTU", path.display(), text.trim()),
            )
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(CniError::io(format!("reading {}", path.display()))(error)),
    }
}

/// `10.0.0.5` or `10.0.0.5/24` (the `ips` capability's form).
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<IpNet>().ok().map(|n| n.addr()))
}

#[cfg(test)]
mod tests;
