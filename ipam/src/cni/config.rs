//! The network configuration on stdin: the spec's top-level keys (others are
//! ignored, as the spec asks, since runtimes and chains add their own) and the
//! `ipam` section, which is tabby's and rejects unknown keys so a typo is an error.
//!
//! ```json
//! "ipam": {
//!   "type": "tabby-ipam",
//!   "datastore_type": "etcdv3",
//!   "etcd_endpoints": "http://10.0.0.1:2379,http://10.0.0.2:2379",
//!   (or "datastore_type": "kubernetes" with "kubeconfig": "/etc/cni/net.d/tabby-kubeconfig",
//!    or "k8s_api_root": "http://127.0.0.1:8001", or neither: $KUBECONFIG or the
//!    service account)
//!   "nodename": "node-1",
//!   "ipv4_pools": ["default-ipv4-ippool"],
//!   "assign_ipv4": "true",
//!   "assign_ipv6": "false"
//! }
//! ```
//!
//! Names follow Calico's CNI config, except that `kubeconfig` and `k8s_api_root` sit in
//! the `ipam` section rather than a top-level `kubernetes` object (tabby-ipam's own
//! settings all live there); `assign_*` take `true` or `"true"` as Calico's do.

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::error::CniError;
pub use crate::connect::DatastoreConf;

/// Versions of the CNI spec whose configs and results tabby-ipam speaks.
pub const SUPPORTED_VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// Where the plugin keeps its lock and its cached view of the node's blocks.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/tabby/ipam";

/// The checked configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct NetConf {
    pub cni_version: String,
    /// The network's name: the first part of every handle.
    pub name: String,
    pub ipam: IpamConf,
    pub prev_result: Option<Value>,
    /// `runtimeConfig.ips` (the `ips` capability): addresses the runtime asks for.
    pub requested_ips: Vec<IpAddr>,
    /// `cni.dev/valid-attachments` (GC, CNI 1.1).
    pub valid_attachments: Vec<Attachment>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IpamConf {
    pub datastore: DatastoreConf,
    /// Unset: `TABBY_NODENAME`, else the host name.
    pub nodename: Option<String>,
    pub ipv4_pools: Vec<String>,
    pub ipv6_pools: Vec<String>,
    pub assign_ipv4: bool,
    pub assign_ipv6: bool,
    pub state_dir: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    cni_version: String,
    name: String,
    ipam: Option<Value>,
    prev_result: Option<Value>,
    #[serde(default)]
    runtime_config: RuntimeConfig,
    #[serde(rename = "cni.dev/valid-attachments", default)]
    valid_attachments: Vec<Attachment>,
}

#[derive(Debug, Default, Deserialize)]
struct RuntimeConfig {
    #[serde(default)]
    ips: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireIpam {
    #[serde(rename = "type")]
    _plugin: String,
    #[serde(default)]
    datastore_type: Option<String>,
    #[serde(default)]
    etcd_endpoints: Option<String>,
    #[serde(default)]
    etcd_prefix: Option<String>,
    #[serde(default)]
    kubeconfig: Option<PathBuf>,
    #[serde(default)]
    k8s_api_root: Option<String>,
    #[serde(default)]
    nodename: Option<String>,
    #[serde(default)]
    ipv4_pools: Vec<String>,
    #[serde(default)]
    ipv6_pools: Vec<String>,
    #[serde(default, deserialize_with = "flag")]
    assign_ipv4: Option<bool>,
    #[serde(default, deserialize_with = "flag")]
    assign_ipv6: Option<bool>,
    #[serde(default)]
    state_dir: Option<PathBuf>,
}

/// `true`, or Calico's `"true"` / `"false"`.
fn flag<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Bool(b) => Ok(Some(b)),
        Value::String(s) if s == "true" => Ok(Some(true)),
        Value::String(s) if s == "false" => Ok(Some(false)),
        other => Err(serde::de::Error::custom(format!(
            "{other} is not true or false"
        ))),
    }
}

impl NetConf {
    /// The `cniVersion` of a config, if it has a readable one (for error replies).
    pub fn version_of(stdin: &[u8]) -> Option<String> {
        let value: Value = serde_json::from_slice(stdin).ok()?;
        let version = value.get("cniVersion")?.as_str()?;
        SUPPORTED_VERSIONS
            .contains(&version)
            .then(|| version.to_owned())
    }

    pub fn parse(stdin: &[u8]) -> Result<Self, CniError> {
        let wire: Wire = serde_json::from_slice(stdin).map_err(|e| {
            if e.is_data() {
                CniError::config("(top level)", e.to_string())
            } else {
                CniError::Decode(e)
            }
        })?;
        if !SUPPORTED_VERSIONS.contains(&wire.cni_version.as_str()) {
            return Err(CniError::IncompatibleVersion {
                found: wire.cni_version,
            });
        }
        if wire.name.is_empty() {
            return Err(CniError::config("name", "is empty: name the network"));
        }
        let Some(ipam) = wire.ipam else {
            return Err(CniError::config(
                "ipam",
                "is missing: add \"ipam\": {\"type\": \"tabby-ipam\", ...}",
            ));
        };
        let ipam: WireIpam =
            serde_json::from_value(ipam).map_err(|e| CniError::config("ipam", e.to_string()))?;
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
        Ok(Self {
            cni_version: wire.cni_version,
            name: wire.name,
            ipam: IpamConf::check(ipam)?,
            prev_result: wire.prev_result,
            requested_ips,
            valid_attachments: wire.valid_attachments,
        })
    }
}

impl IpamConf {
    fn check(wire: WireIpam) -> Result<Self, CniError> {
        let datastore = match wire.datastore_type.as_deref().unwrap_or("kubernetes") {
            "etcdv3" | "etcd" => {
                let endpoints: Vec<String> = wire
                    .etcd_endpoints
                    .as_deref()
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(str::to_owned)
                    .collect();
                if endpoints.is_empty() {
                    return Err(CniError::config(
                        "ipam.etcd_endpoints",
                        "is empty: list the etcd client URLs, e.g. \"http://10.0.0.1:2379\"",
                    ));
                }
                for endpoint in &endpoints {
                    http_url("ipam.etcd_endpoints", endpoint)?;
                }
                if let Some(prefix) = wire.etcd_prefix.as_deref().filter(|p| !p.starts_with('/')) {
                    return Err(CniError::config(
                        "ipam.etcd_prefix",
                        format!("{prefix:?} does not start with '/'"),
                    ));
                }
                DatastoreConf::Etcd {
                    endpoints,
                    prefix: wire.etcd_prefix,
                }
            }
            "kubernetes" => kubernetes(wire.kubeconfig, wire.k8s_api_root, &wire.etcd_endpoints)?,
            other => {
                return Err(CniError::config(
                    "ipam.datastore_type",
                    format!("{other:?} is not \"kubernetes\" or \"etcdv3\""),
                ));
            }
        };
        if let Some(name) = wire.nodename.as_deref().filter(|n| n.is_empty()) {
            return Err(CniError::config(
                "ipam.nodename",
                format!("{name:?} is empty: remove it to use the host name"),
            ));
        }
        let assign_ipv4 = wire.assign_ipv4.unwrap_or(true);
        let assign_ipv6 = wire.assign_ipv6.unwrap_or(false);
        if !assign_ipv4 && !assign_ipv6 {
            return Err(CniError::config(
                "ipam.assign_ipv4",
                "and assign_ipv6 are both false: the pod would get no address",
            ));
        }
        Ok(Self {
            datastore,
            nodename: wire.nodename,
            ipv4_pools: wire.ipv4_pools,
            ipv6_pools: wire.ipv6_pools,
            assign_ipv4,
            assign_ipv6,
            state_dir: wire
                .state_dir
                .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
        })
    }
}

/// The kubernetes datastore's settings, checked: at most one of a kubeconfig and an
/// API root, and no etcd endpoints (a sign `datastore_type` was forgotten).
fn kubernetes(
    kubeconfig: Option<PathBuf>,
    api_root: Option<String>,
    etcd_endpoints: &Option<String>,
) -> Result<DatastoreConf, CniError> {
    if etcd_endpoints.is_some() {
        return Err(CniError::config(
            "ipam.etcd_endpoints",
            "is set but datastore_type is kubernetes (the default): set \"datastore_type\": \"etcdv3\" or remove etcd_endpoints",
        ));
    }
    if kubeconfig.is_some() && api_root.is_some() {
        return Err(CniError::config(
            "ipam.k8s_api_root",
            "and ipam.kubeconfig are both set: keep one",
        ));
    }
    if let Some(url) = &api_root {
        http_url("ipam.k8s_api_root", url)?;
    }
    Ok(DatastoreConf::Kubernetes {
        kubeconfig,
        api_root,
    })
}

fn http_url(field: &str, url: &str) -> Result<(), CniError> {
    match url.starts_with("http://") || url.starts_with("https://") {
        true => Ok(()),
        false => Err(CniError::config(
            field,
            format!("{url:?} is not an http:// or https:// URL"),
        )),
    }
}

/// `10.0.0.5` or `10.0.0.5/24` (the capability's form).
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<IpNet>().ok().map(|n| n.addr()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(value: Value) -> Result<NetConf, CniError> {
        NetConf::parse(value.to_string().as_bytes())
    }

    fn base() -> Value {
        json!({
            "cniVersion": "1.0.0",
            "name": "k8s-pod-network",
            "type": "tabby-cni",
            "ipam": {
                "type": "tabby-ipam",
                "datastore_type": "etcdv3",
                "etcd_endpoints": "http://10.0.0.1:2379, http://10.0.0.2:2379",
                "assign_ipv4": "true",
                "assign_ipv6": true,
                "ipv4_pools": ["10.244.0.0/16"]
            },
            "runtimeConfig": {"ips": ["10.244.1.9/32"], "portMappings": []},
            "someOtherPlugin": {"x": 1}
        })
    }

    #[test]
    fn ipam_a_calico_style_config_parses_with_foreign_keys_at_the_top() {
        let conf = parse(base()).unwrap();
        assert_eq!(
            conf.ipam.datastore,
            DatastoreConf::Etcd {
                endpoints: vec!["http://10.0.0.1:2379".into(), "http://10.0.0.2:2379".into()],
                prefix: None,
            }
        );
        assert!(conf.ipam.assign_ipv4 && conf.ipam.assign_ipv6);
        assert_eq!(
            conf.requested_ips,
            ["10.244.1.9".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(conf.ipam.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
    }

    #[test]
    fn ipam_a_typo_in_the_ipam_section_is_an_error_naming_the_key() {
        let mut conf = base();
        conf["ipam"]["asign_ipv4"] = json!("true");
        let error = parse(conf).unwrap_err();
        assert_eq!(error.code(), 7);
        assert!(
            error.to_string().contains("unknown field `asign_ipv4`"),
            "{error}"
        );
    }

    #[test]
    fn ipam_bad_values_are_rejected_with_their_field() {
        let cases = [
            (
                "datastore_type",
                json!("consul"),
                "ipam.datastore_type: \"consul\" is not",
            ),
            (
                "etcd_endpoints",
                json!("10.0.0.1:2379"),
                "ipam.etcd_endpoints: \"10.0.0.1:2379\" is not",
            ),
            ("assign_ipv4", json!("yes"), "\"yes\" is not true or false"),
        ];
        for (key, value, expected) in cases {
            let mut conf = base();
            conf["ipam"][key] = value;
            let error = parse(conf).unwrap_err().to_string();
            assert!(error.contains(expected), "{key}: {error}");
        }
        let mut conf = base();
        conf["ipam"]["assign_ipv4"] = json!(false);
        conf["ipam"]["assign_ipv6"] = json!(false);
        assert!(parse(conf).unwrap_err().to_string().contains("both false"));
        let mut conf = base();
        conf["cniVersion"] = json!("0.2.0");
        assert_eq!(parse(conf).unwrap_err().code(), 1);
    }

    #[test]
    fn ipam_the_kubernetes_datastore_takes_a_kubeconfig_or_an_api_root_but_not_both() {
        let kubernetes = |edit: &dyn Fn(&mut Value)| {
            let mut conf = base();
            let ipam = conf["ipam"].as_object_mut().unwrap();
            ipam.remove("datastore_type");
            ipam.remove("etcd_endpoints");
            edit(&mut conf["ipam"]);
            parse(conf)
        };
        let conf = kubernetes(&|ipam| ipam["kubeconfig"] = json!("/etc/cni/net.d/kc")).unwrap();
        assert_eq!(
            conf.ipam.datastore,
            DatastoreConf::Kubernetes {
                kubeconfig: Some("/etc/cni/net.d/kc".into()),
                api_root: None,
            },
            "kubernetes is the default datastore"
        );
        let errors = [
            (
                kubernetes(&|ipam| ipam["etcd_endpoints"] = json!("http://10.0.0.1:2379")),
                "ipam.etcd_endpoints: is set but datastore_type is kubernetes",
            ),
            (
                kubernetes(&|ipam| {
                    ipam["kubeconfig"] = json!("/kc");
                    ipam["k8s_api_root"] = json!("http://127.0.0.1:8001");
                }),
                "ipam.k8s_api_root: and ipam.kubeconfig are both set",
            ),
            (
                kubernetes(&|ipam| ipam["k8s_api_root"] = json!("127.0.0.1:8001")),
                "ipam.k8s_api_root: \"127.0.0.1:8001\" is not an http",
            ),
        ];
        for (result, expected) in errors {
            let error = result.unwrap_err();
            assert_eq!(error.code(), 7);
            assert!(error.to_string().contains(expected), "{error}");
        }
    }
}
