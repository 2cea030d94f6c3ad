//! The CNI result: what tabby-ipam (or another IPAM plugin) returns to tabby-cni
//! and what tabby-cni returns to the runtime, in the shape of the configuration's
//! `cniVersion`.
//!
//! 1.0.0 dropped the per-IP `version` field that 0.3.x and 0.4.0 require; every
//! other field used here is the same in all three.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CniResult {
    pub cni_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteEntry>,
    #[serde(default, skip_serializing_if = "Dns::is_empty")]
    pub dns: Dns,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    /// The namespace path for interfaces inside the container; empty on the host.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sandbox: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// "4" or "6": required before 1.0.0, gone since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub address: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// Index into `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteEntry {
    pub dst: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl CniResult {
    /// An IPAM plugin's result: the spec's abbreviated Success (addresses, no
    /// interfaces). Addresses carry their full-length prefix (/32, /128): pod
    /// addresses are routed one by one, not on a shared subnet.
    pub fn addresses(cni_version: &str, addresses: impl IntoIterator<Item = IpAddr>) -> Self {
        Self {
            cni_version: String::new(),
            interfaces: Vec::new(),
            ips: addresses
                .into_iter()
                .map(|ip| IpConfig {
                    version: None,
                    address: IpNet::from(ip),
                    gateway: None,
                    interface: None,
                })
                .collect(),
            routes: Vec::new(),
            dns: Dns::default(),
        }
        .for_version(cni_version)
    }

    /// The result in the shape of `cni_version` (one of the supported versions).
    pub fn for_version(mut self, cni_version: &str) -> Self {
        let legacy = cni_version.starts_with("0.");
        for ip in &mut self.ips {
            ip.version = legacy.then(|| {
                if ip.address.addr().is_ipv4() {
                    "4"
                } else {
                    "6"
                }
                .to_owned()
            });
        }
        self.cni_version = cni_version.to_owned();
        self
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a result of strings and addresses serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// The ADD result example of the CNI spec 1.0.0 (SPEC.md, "Add: Result").
    fn spec_1_0_0() -> Value {
        json!({
            "cniVersion": "1.0.0",
            "interfaces": [
                {"name": "cni0", "mac": "00:11:22:33:44:55"},
                {"name": "veth3243", "mac": "55:44:33:22:11:11"},
                {"name": "eth0", "mac": "99:88:77:66:55:44", "sandbox": "/var/run/netns/blue"}
            ],
            "ips": [{"address": "10.1.0.5/16", "gateway": "10.1.0.1", "interface": 2}],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dns": {"nameservers": ["10.1.0.1"]}
        })
    }

    #[test]
    fn the_specs_1_0_0_result_round_trips_unchanged() {
        let result: CniResult = serde_json::from_value(spec_1_0_0()).unwrap();
        assert_eq!(result.ips[0].interface, Some(2));
        assert_eq!(serde_json::to_value(&result).unwrap(), spec_1_0_0());
    }

    #[test]
    fn a_0_4_0_result_carries_the_ip_version_and_1_0_0_drops_it() {
        let result: CniResult = serde_json::from_value(spec_1_0_0()).unwrap();
        let legacy = serde_json::to_value(result.clone().for_version("0.4.0")).unwrap();
        assert_eq!(legacy["cniVersion"], "0.4.0");
        assert_eq!(legacy["ips"][0]["version"], "4");
        let current =
            serde_json::to_value(result.for_version("0.4.0").for_version("1.0.0")).unwrap();
        assert_eq!(current, spec_1_0_0());
    }

    #[test]
    fn ipam_results_follow_the_specs_shape_per_version() {
        let ips = ["10.0.0.5".parse().unwrap(), "fd00::5".parse().unwrap()];
        let current: Value =
            serde_json::from_str(&CniResult::addresses("1.0.0", ips).to_json()).unwrap();
        assert_eq!(
            current,
            json!({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.5/32"}, {"address": "fd00::5/128"}]})
        );
        let legacy: Value =
            serde_json::from_str(&CniResult::addresses("0.3.1", ips).to_json()).unwrap();
        assert_eq!(
            legacy["ips"][1],
            json!({"version": "6", "address": "fd00::5/128"})
        );
    }

    /// What host-local 1.1 prints for a 0.3.1 config with one IPv4 and one IPv6 range.
    #[test]
    fn a_host_local_0_3_1_result_parses() {
        let result: CniResult = serde_json::from_str(
            r#"{"cniVersion":"0.3.1","ips":[{"version":"4","address":"10.244.0.2/24","gateway":"10.244.0.1"},{"version":"6","address":"fd00:244::2/64","gateway":"fd00:244::1"}],"dns":{}}"#,
        )
        .unwrap();
        let addresses: Vec<String> = result.ips.iter().map(|ip| ip.address.to_string()).collect();
        assert_eq!(addresses, ["10.244.0.2/24", "fd00:244::2/64"]);
        assert!(result.dns.is_empty());
    }
}
