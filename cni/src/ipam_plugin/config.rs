//! tabby-ipam's config: the network config every plugin reads (the datastore and the
//! node are there, at the top level, as Calico's plugin names them) and the `ipam`
//! section, which is tabby-ipam's and rejects unknown keys so a typo is an error.
//!
//! ```json
//! "ipam": {
//!   "type": "tabby-ipam",
//!   "ipv4_pools": ["default-ipv4-ippool"],
//!   "assign_ipv4": "true",
//!   "assign_ipv6": "false",
//!   "state_dir": "/var/lib/tabby/ipam",
//!   "lock_timeout": "60s"
//! }
//! ```
//!
//! `assign_*` take `true` or `"true"` as Calico's do. The datastore keys tabby-ipam
//! read from this section before are still accepted there (see `spec::config`).

use std::path::PathBuf;
use std::time::Duration;

use api::datastore::DatastoreConfig;
use api::resources::GoDuration;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::error::CniError;
use crate::spec::config::{EARLIER_IPAM_KEYS, NetConf};

/// Where the plugin keeps its lock and its cached view of the node's blocks.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/tabby/ipam";

/// How long a call waits for the node's lock before answering "try again later":
/// a call holds it for a few datastore round trips, each bounded by the datastore's
/// request deadline.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// A checked config: the network config, the `ipam` section, the datastore.
#[derive(Debug, Clone)]
pub struct IpamNetConf {
    pub net: NetConf,
    pub ipam: IpamConf,
    pub datastore: DatastoreConfig,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpamConf {
    pub ipv4_pools: Vec<String>,
    pub ipv6_pools: Vec<String>,
    pub assign_ipv4: bool,
    pub assign_ipv6: bool,
    pub state_dir: PathBuf,
    pub lock_timeout: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireIpam {
    #[serde(rename = "type")]
    _plugin: String,
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
    #[serde(default)]
    lock_timeout: Option<GoDuration>,
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

impl IpamNetConf {
    pub fn parse(stdin: &[u8]) -> Result<Self, CniError> {
        let net = NetConf::parse(stdin)?;
        let mut section = net.ipam.clone();
        if let Some(keys) = section.as_object_mut() {
            for key in EARLIER_IPAM_KEYS {
                keys.remove(key);
            }
        }
        let wire: WireIpam =
            serde_json::from_value(section).map_err(|e| CniError::config("ipam", e.to_string()))?;
        let assign_ipv4 = wire.assign_ipv4.unwrap_or(true);
        let assign_ipv6 = wire.assign_ipv6.unwrap_or(false);
        if !assign_ipv4 && !assign_ipv6 {
            return Err(CniError::config(
                "ipam.assign_ipv4",
                "and assign_ipv6 are both false: the pod would get no address",
            ));
        }
        let ipam = IpamConf {
            ipv4_pools: wire.ipv4_pools,
            ipv6_pools: wire.ipv6_pools,
            assign_ipv4,
            assign_ipv6,
            state_dir: wire
                .state_dir
                .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
            lock_timeout: wire.lock_timeout.map_or(DEFAULT_LOCK_TIMEOUT, |t| t.0),
        };
        let datastore = net.datastore_config()?;
        Ok(Self {
            net,
            ipam,
            datastore,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use api::datastore::config::{Kubeconfigs, KubernetesConfig};
    use serde_json::json;

    use super::*;

    fn parse(value: Value) -> Result<IpamNetConf, CniError> {
        IpamNetConf::parse(value.to_string().as_bytes())
    }

    fn base() -> Value {
        json!({
            "cniVersion": "1.0.0",
            "name": "k8s-pod-network",
            "type": "tabby-cni",
            "datastore_type": "etcdv3",
            "etcd_endpoints": "http://10.0.0.1:2379, http://10.0.0.2:2379",
            "ipam": {
                "type": "tabby-ipam",
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
        let DatastoreConfig::Etcd(etcd) = &conf.datastore else {
            panic!("not etcd: {:?}", conf.datastore);
        };
        assert_eq!(
            etcd.endpoints,
            ["http://10.0.0.1:2379", "http://10.0.0.2:2379"]
        );
        assert!(conf.ipam.assign_ipv4 && conf.ipam.assign_ipv6);
        assert_eq!(
            conf.net.requested_ips,
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
            conf.as_object_mut().unwrap().remove("datastore_type");
            conf.as_object_mut().unwrap().remove("etcd_endpoints");
            conf["ipam"]["datastore_type"] = json!("etcdv3");
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
    fn ipam_the_kubernetes_datastore_takes_a_kubeconfig_and_an_api_root_override() {
        let kubernetes = |edit: &dyn Fn(&mut Value)| {
            let mut conf = base();
            let top = conf.as_object_mut().unwrap();
            top.remove("datastore_type");
            top.remove("etcd_endpoints");
            edit(&mut conf);
            parse(conf)
        };
        let conf = kubernetes(&|conf| conf["kubernetes"] = json!({"kubeconfig": "/kc"})).unwrap();
        let DatastoreConfig::Kubernetes(kube) = conf.datastore else {
            panic!("kubernetes is the default datastore");
        };
        assert_eq!(
            kube,
            KubernetesConfig {
                kubeconfig: Kubeconfigs::Named("/kc".into()),
                context: None,
                api_endpoint: None,
            }
        );
        let both = kubernetes(&|conf| {
            conf["kubernetes"] =
                json!({"kubeconfig": "/kc", "k8s_api_root": "http://127.0.0.1:8001"});
        })
        .unwrap();
        let DatastoreConfig::Kubernetes(kube) = both.datastore else {
            panic!("not kubernetes");
        };
        assert_eq!(kube.api_endpoint.as_deref(), Some("http://127.0.0.1:8001"));
        let errors = [
            (
                kubernetes(&|conf| {
                    conf["datastore_type"] = json!("kubernetes");
                    conf["etcd_endpoints"] = json!("http://10.0.0.1:2379");
                }),
                "etcd_endpoints applies to the etcd datastore",
            ),
            (
                kubernetes(&|conf| {
                    conf["datastore_type"] = json!("kubernetes");
                    conf["ipam"]["etcd_endpoints"] = json!("http://10.0.0.1:2379");
                }),
                "ipam.etcd_endpoints applies to the etcd datastore",
            ),
            (
                kubernetes(&|conf| {
                    conf["kubernetes"] = json!({"k8s_api_root": "127.0.0.1:8001"});
                }),
                "kubernetes.k8s_api_root: \"127.0.0.1:8001\" is not a URL",
            ),
        ];
        for (result, expected) in errors {
            let error = result.unwrap_err();
            assert_eq!(error.code(), 7);
            assert!(error.to_string().contains(expected), "{error}");
        }
    }
}
