//! The IPAM result: the spec's abbreviated Success (addresses, no interfaces), in
//! the shape of the config's `cniVersion` (before 1.0.0 every IP says its version).
//! Addresses carry their full-length prefix (/32, /128): pod addresses are routed
//! one by one, not on a shared subnet.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IpamResult {
    pub cni_version: String,
    pub ips: Vec<IpConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<&'static str>,
    pub address: IpNet,
}

impl IpamResult {
    pub fn new(cni_version: &str, addresses: impl IntoIterator<Item = IpAddr>) -> Self {
        let legacy = cni_version.starts_with("0.");
        Self {
            cni_version: cni_version.to_owned(),
            ips: addresses
                .into_iter()
                .map(|ip| IpConfig {
                    version: legacy.then_some(if ip.is_ipv4() { "4" } else { "6" }),
                    address: IpNet::from(ip),
                })
                .collect(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("strings and addresses serialise")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ipam_results_follow_the_specs_shape_per_version() {
        let ips = ["10.0.0.5".parse().unwrap(), "fd00::5".parse().unwrap()];
        let current: serde_json::Value =
            serde_json::from_str(&IpamResult::new("1.0.0", ips).to_json()).unwrap();
        assert_eq!(
            current,
            json!({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.5/32"}, {"address": "fd00::5/128"}]})
        );
        let legacy: serde_json::Value =
            serde_json::from_str(&IpamResult::new("0.3.1", ips).to_json()).unwrap();
        assert_eq!(
            legacy["ips"][1],
            json!({"version": "6", "address": "fd00::5/128"})
        );
    }
}
