//! The network configuration the runtime writes to stdin.
//!
//! Unknown keys are accepted on purpose (unlike tabby's own configs): runtimes add
//! `runtimeConfig`, `args` and keys for other plugins of a chain, and the spec
//! tells plugins to ignore what they do not use.

use serde::Deserialize;
use serde_json::Value;

use super::error::{CniError, SUPPORTED_VERSIONS};
use super::result::CniResult;

/// Smallest MTU the kernel accepts for IPv4 (RFC 791); veths allow up to 65535.
const MTU_RANGE: std::ops::RangeInclusive<u32> = 68..=65535;

/// Where tabby-agent writes this node's name and the pods' MTU for the plugin
/// (Calico keeps them in /var/lib/calico).
pub const NODENAME_FILE: &str = "/var/run/tabby/nodename";
pub const MTU_FILE: &str = "/var/run/tabby/mtu";

/// A checked network config: what tabby-cni uses of it.
#[derive(Debug, Clone, PartialEq)]
pub struct NetConf {
    pub cni_version: String,
    /// `ipam.type`: the IPAM plugin's binary name on `CNI_PATH`.
    pub ipam_plugin: String,
    /// Both ends of the veth; from `mtu`, else the agent's MTU file, else the
    /// kernel default (1500).
    pub mtu: Option<u32>,
    /// The ADD result, given to CHECK and DEL (DEL does not need it).
    pub prev_result: Option<Value>,
    /// Where pods are recorded (as `WorkloadEndpoint`s); none without a datastore.
    pub datastore: Option<DatastoreConf>,
}

/// The datastore in Calico's keys: `datastore_type`, then `etcd_endpoints` and
/// `etcd_prefix`, or `kubeconfig` / `k8s_api_root` as tabby-ipam reads them; the
/// node from `nodename` or `nodename_file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatastoreConf {
    /// How to connect: tabby-ipam's settings, so both plugins reach one store.
    pub store: ipam::connect::DatastoreConf,
    pub node: String,
}

/// The config as the runtime writes it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    cni_version: String,
    name: String,
    ipam: Option<Ipam>,
    mtu: Option<u32>,
    prev_result: Option<Value>,
    #[serde(rename = "mtu_file")]
    mtu_file: Option<std::path::PathBuf>,
    #[serde(flatten)]
    datastore: DatastoreKeys,
    #[serde(rename = "nodename_file")]
    nodename_file: Option<std::path::PathBuf>,
}

/// The datastore keys, at the top level (Calico's place) or in the `ipam`
/// section (tabby-ipam's), so one set serves both plugins.
#[derive(Debug, Default, Deserialize)]
struct DatastoreKeys {
    datastore_type: Option<String>,
    etcd_endpoints: Option<String>,
    etcd_prefix: Option<String>,
    kubeconfig: Option<String>,
    k8s_api_root: Option<String>,
    nodename: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Ipam {
    #[serde(rename = "type")]
    plugin: String,
    #[serde(flatten)]
    datastore: DatastoreKeys,
}

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
        if !SUPPORTED_VERSIONS.contains(&wire.cni_version.as_str()) {
            return Err(CniError::IncompatibleVersion {
                found: wire.cni_version,
            });
        }
        if wire.name.is_empty() {
            return Err(CniError::config("name", "is empty: name the network"));
        }
        let datastore = datastore(&wire)?;
        let Some(ipam) = wire.ipam else {
            return Err(CniError::config(
                "ipam",
                "is missing: add \"ipam\": {\"type\": \"tabby-ipam\"} (or another IPAM plugin)",
            ));
        };
        if ipam.plugin.is_empty() || ipam.plugin.contains('/') || ipam.plugin.starts_with('.') {
            return Err(CniError::config(
                "ipam.type",
                format!(
                    "is {:?}: name an IPAM plugin binary on CNI_PATH, e.g. \"tabby-ipam\"",
                    ipam.plugin
                ),
            ));
        }
        let mtu = match wire.mtu {
            Some(mtu) => Some(mtu),
            None => read_mtu(wire.mtu_file.as_deref())?,
        };
        if let Some(mtu) = mtu.filter(|mtu| !MTU_RANGE.contains(mtu)) {
            return Err(CniError::config(
                "mtu",
                format!(
                    "{mtu} is outside {}..={}: use the underlay MTU minus the encapsulation overhead",
                    MTU_RANGE.start(),
                    MTU_RANGE.end()
                ),
            ));
        }
        Ok(Self {
            cni_version: wire.cni_version,
            ipam_plugin: ipam.plugin,
            mtu,
            prev_result: wire.prev_result,
            datastore,
        })
    }

    /// The node's name, when a datastore is configured.
    pub fn node(&self) -> Option<&str> {
        self.datastore.as_ref().map(|d| d.node.as_str())
    }

    /// `prevResult`, which CHECK requires.
    pub fn prev_result(&self) -> Result<CniResult, CniError> {
        let value = self.prev_result.clone().ok_or_else(|| {
            CniError::config("prevResult", "is missing: CHECK needs the result of ADD")
        })?;
        serde_json::from_value(value).map_err(|e| CniError::config("prevResult", e.to_string()))
    }
}

/// The MTU tabby-agent wrote for pods; none when it has not (yet).
fn read_mtu(file: Option<&std::path::Path>) -> Result<Option<u32>, CniError> {
    let path = file.unwrap_or(std::path::Path::new(MTU_FILE));
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

fn datastore(wire: &Wire) -> Result<Option<DatastoreConf>, CniError> {
    let ipam = wire.ipam.as_ref().map(|i| &i.datastore);
    // A key at the top level wins; the ipam section's otherwise.
    let key = |pick: fn(&DatastoreKeys) -> &Option<String>| {
        pick(&wire.datastore)
            .clone()
            .or_else(|| ipam.and_then(|i| pick(i).clone()))
    };
    let store = match key(|k| &k.datastore_type).as_deref() {
        None => return Ok(None),
        Some("etcdv3" | "etcd") => etcd(key(|k| &k.etcd_endpoints), key(|k| &k.etcd_prefix))?,
        // tabby-ipam checks these keys in full before anything is recorded.
        Some("kubernetes") => ipam::connect::DatastoreConf::Kubernetes {
            kubeconfig: key(|k| &k.kubeconfig).map(Into::into),
            api_root: key(|k| &k.k8s_api_root),
        },
        Some(other) => {
            return Err(CniError::config(
                "datastore_type",
                format!("is {other:?}: use \"etcdv3\" or \"kubernetes\""),
            ));
        }
    };
    let node = node(wire, key(|k| &k.nodename))?;
    Ok(Some(DatastoreConf { store, node }))
}

fn etcd(
    endpoints: Option<String>,
    prefix: Option<String>,
) -> Result<ipam::connect::DatastoreConf, CniError> {
    let endpoints: Vec<String> = endpoints
        .iter()
        .flat_map(|e| e.split(','))
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty())
        .collect();
    if endpoints.is_empty() {
        return Err(CniError::config(
            "etcd_endpoints",
            "is missing: list the etcd URLs, comma-separated (\"http://10.0.0.1:2379\")",
        ));
    }
    Ok(ipam::connect::DatastoreConf::Etcd { endpoints, prefix })
}

/// The node from `nodename`, else from the file tabby-agent writes.
fn node(wire: &Wire, nodename: Option<String>) -> Result<String, CniError> {
    Ok(match nodename {
        Some(node) => node,
        None => {
            let path = wire
                .nodename_file
                .clone()
                .unwrap_or_else(|| NODENAME_FILE.into());
            std::fs::read_to_string(&path)
                .map(|n| n.trim().to_owned())
                .map_err(|e| {
                    CniError::config(
                        "nodename",
                        format!(
                            "is not set and {} cannot be read ({e}): is tabby-agent running on this node?",
                            path.display()
                        ),
                    )
                })?
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A network config as containerd passes it to the plugin, after it has
    /// merged `runtimeConfig` and (for CHECK) `prevResult` in.
    fn containerd_check() -> Value {
        json!({
            "cniVersion": "1.0.0",
            "name": "k8s-pod-network",
            "type": "tabby-cni",
            "mtu": 1440,
            "ipam": {"type": "tabby-ipam", "assign_ipv4": "true"},
            "runtimeConfig": {"portMappings": [], "bandwidth": {}},
            "args": {"cni": {"labels": []}},
            "prevResult": {
                "cniVersion": "1.0.0",
                "interfaces": [{"name": "cali8ce18e28dcb", "mac": "ee:ee:ee:ee:ee:ee"}],
                "ips": [{"address": "10.244.0.5/32", "interface": 1}]
            }
        })
    }

    fn parse(value: &Value) -> Result<NetConf, CniError> {
        NetConf::parse(value.to_string().as_bytes())
    }

    #[test]
    fn a_containerd_config_parses_with_its_extra_keys() {
        let conf = parse(&containerd_check()).unwrap();
        assert_eq!(conf.ipam_plugin, "tabby-ipam");
        assert_eq!(conf.mtu, Some(1440));
        assert_eq!(
            conf.prev_result().unwrap().ips[0].address.to_string(),
            "10.244.0.5/32"
        );
    }

    /// The network configuration example of the CNI spec 1.0.0 (SPEC.md,
    /// "Example configuration"), one plugin of the list.
    #[test]
    fn the_specs_example_config_parses() {
        let conf = parse(&json!({
            "cniVersion": "1.0.0",
            "name": "dbnet",
            "type": "bridge",
            "bridge": "cni0",
            "keyA": ["some more", "plugin specific", "configuration"],
            "ipam": {"type": "host-local", "subnet": "10.1.0.0/16", "gateway": "10.1.0.1"},
            "dns": {"nameservers": ["10.1.0.1"]}
        }))
        .unwrap();
        assert_eq!(conf.ipam_plugin, "host-local");
        assert_eq!(conf.mtu, None);
        assert_eq!(conf.prev_result, None);
    }

    #[test]
    fn older_spec_versions_runtimes_still_send_are_accepted() {
        for version in ["0.3.1", "0.4.0"] {
            let mut value = containerd_check();
            value["cniVersion"] = json!(version);
            assert_eq!(parse(&value).unwrap().cni_version, version);
        }
    }

    #[test]
    fn mistakes_name_the_field_and_the_fix() {
        let cases = [
            ("cniVersion", json!("0.2.0"), 1, "0.3.1, 0.4.0, 1.0.0"),
            ("mtu", json!(70000), 7, "mtu: 70000 is outside"),
            ("ipam", json!({"type": "../evil"}), 7, "ipam.type"),
            (
                "ipam",
                Value::Null,
                7,
                "\"ipam\": {\"type\": \"tabby-ipam\"}",
            ),
            ("mtu", json!("1500"), 7, "invalid type"),
        ];
        for (key, value, code, needle) in cases {
            let mut conf = containerd_check();
            conf[key] = value;
            let error = parse(&conf).unwrap_err();
            assert_eq!(error.code(), code, "{error}");
            assert!(error.to_string().contains(needle), "{error}");
        }
    }

    #[test]
    fn calicos_datastore_keys_configure_etcd_and_the_node() {
        let mut conf = containerd_check();
        conf["datastore_type"] = json!("etcdv3");
        conf["etcd_endpoints"] = json!("http://10.0.1.1:2379, http://10.0.1.2:2379");
        conf["nodename"] = json!("n1");
        let datastore = parse(&conf).unwrap().datastore.unwrap();
        let endpoints = ["http://10.0.1.1:2379", "http://10.0.1.2:2379"];
        assert_eq!(
            datastore.store,
            ipam::connect::DatastoreConf::Etcd {
                endpoints: endpoints.map(String::from).to_vec(),
                prefix: None
            }
        );
        assert_eq!(datastore.node, "n1");
    }

    #[test]
    fn the_ipam_sections_datastore_keys_serve_when_the_top_level_has_none() {
        let mut conf = containerd_check();
        conf["ipam"] = json!({
            "type": "tabby-ipam",
            "datastore_type": "etcdv3",
            "etcd_endpoints": "http://10.0.1.1:2379",
            "etcd_prefix": "/lab/v1",
            "nodename": "n2",
        });
        let datastore = parse(&conf).unwrap().datastore.unwrap();
        assert_eq!(
            datastore.store,
            ipam::connect::DatastoreConf::Etcd {
                endpoints: vec!["http://10.0.1.1:2379".into()],
                prefix: Some("/lab/v1".into())
            }
        );
        assert_eq!(datastore.node, "n2");
    }

    #[test]
    fn the_kubernetes_datastore_takes_the_ipam_sections_kubeconfig() {
        let mut conf = containerd_check();
        conf["ipam"] = json!({
            "type": "tabby-ipam",
            "datastore_type": "kubernetes",
            "kubeconfig": "/etc/cni/net.d/tabby/kubeconfig",
            "nodename": "n3",
        });
        let datastore = parse(&conf).unwrap().datastore.unwrap();
        assert_eq!(
            datastore.store,
            ipam::connect::DatastoreConf::Kubernetes {
                kubeconfig: Some("/etc/cni/net.d/tabby/kubeconfig".into()),
                api_root: None
            }
        );
        conf["datastore_type"] = json!("consul");
        let error = parse(&conf).unwrap_err();
        assert!(error.to_string().contains("\"kubernetes\""), "{error}");
    }

    #[test]
    fn the_node_name_and_mtu_come_from_the_agents_files_when_not_given() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("nodename"), "n7\n").unwrap();
        std::fs::write(dir.path().join("mtu"), "1450\n").unwrap();
        let mut conf = containerd_check();
        conf.as_object_mut().unwrap().remove("mtu");
        conf["datastore_type"] = json!("etcdv3");
        conf["etcd_endpoints"] = json!("http://10.0.1.1:2379");
        conf["nodename_file"] = json!(dir.path().join("nodename"));
        conf["mtu_file"] = json!(dir.path().join("mtu"));
        let parsed = parse(&conf).unwrap();
        assert_eq!(parsed.node(), Some("n7"));
        assert_eq!(parsed.mtu, Some(1450));
        conf["nodename_file"] = json!("/nonexistent/nodename");
        let error = parse(&conf).unwrap_err();
        assert!(
            error.to_string().contains("is tabby-agent running"),
            "{error}"
        );
    }

    #[test]
    fn broken_json_is_a_decode_error() {
        assert_eq!(NetConf::parse(b"{\"cniVersion\":").unwrap_err().code(), 6);
    }

    #[test]
    fn check_without_prev_result_says_what_is_missing() {
        let mut conf = containerd_check();
        conf.as_object_mut().unwrap().remove("prevResult");
        let error = parse(&conf).unwrap().prev_result().unwrap_err();
        assert!(
            error.to_string().contains("prevResult: is missing"),
            "{error}"
        );
    }
}
