//! `WorkloadEndpoint`: one pod's network interface, as the CNI plugin set it up. The
//! plugin writes it on ADD and deletes it on DEL, on every backend; on etcd and in
//! memory, where there are no core Pods, it is also the record that the pod exists
//! (see [`crate::datastore::Workloads`]), as in Calico's etcd mode.
//!
//! Named `<namespace>.<pod>`: namespaces hold no dots, so the name is unique and the
//! pod is known from it alone.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::meta::{is_dns_label, is_dns_subdomain};
use super::{Cidr, MacAddress, Object, Spec, ValidationError};

pub type WorkloadEndpoint = Object<WorkloadEndpointSpec>;

/// Linux's limit on interface names (IFNAMSIZ less the terminating NUL).
const MAX_INTERFACE_NAME: usize = 15;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadEndpointSpec {
    /// The node the pod runs on.
    pub node: String,
    pub namespace: String,
    pub pod: String,
    /// The container runtime's sandbox ID from CNI ADD; a DEL for another ID (an
    /// older incarnation of a pod with the same name) leaves this endpoint alone.
    #[serde(rename = "containerID")]
    pub container_id: String,
    /// The interface inside the pod, `eth0` by default.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// The host side of the veth pair (`cali…`).
    pub interface_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<MacAddress>,
    /// The pod's addresses, as /32 or /128 networks.
    #[serde(default)]
    pub ip_networks: Vec<Cidr>,
}

fn default_endpoint() -> String {
    "eth0".into()
}

impl WorkloadEndpointSpec {
    /// The object name for the pod `namespace/pod`.
    pub fn name_for(namespace: &str, pod: &str) -> String {
        format!("{namespace}.{pod}")
    }

    /// The pod's addresses.
    pub fn ips(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.ip_networks.iter().map(|network| network.0.addr())
    }
}

impl Spec for WorkloadEndpointSpec {
    const KIND: &'static str = "WorkloadEndpoint";
    const PLURAL: &'static str = "workloadendpoints";

    fn validate(&self, name: &str) -> Result<(), ValidationError> {
        if !is_dns_subdomain(&self.node) {
            return Err(ValidationError::new(
                "spec.node",
                &self.node,
                "is not a node name",
            ));
        }
        if !is_dns_label(&self.namespace) {
            return Err(ValidationError::new(
                "spec.namespace",
                &self.namespace,
                "is not a namespace name (a DNS label)",
            ));
        }
        if !is_dns_subdomain(&self.pod) {
            return Err(ValidationError::new(
                "spec.pod",
                &self.pod,
                "is not a pod name",
            ));
        }
        let expected = Self::name_for(&self.namespace, &self.pod);
        if name != expected {
            return Err(ValidationError::new(
                "metadata.name",
                name,
                format!("does not match spec.namespace and spec.pod (expected {expected:?})"),
            ));
        }
        if self.container_id.is_empty() {
            return Err(ValidationError::new(
                "spec.containerID",
                &self.container_id,
                "is empty",
            ));
        }
        for (field, value) in [
            ("endpoint", &self.endpoint),
            ("interfaceName", &self.interface_name),
        ] {
            let valid = !value.is_empty()
                && value.len() <= MAX_INTERFACE_NAME
                && !value.contains(['/', ' ', ':']);
            if !valid {
                return Err(ValidationError::new(
                    format!("spec.{field}"),
                    value,
                    format!(
                        "is not an interface name (1 to {MAX_INTERFACE_NAME} characters, no '/', ':' or space)"
                    ),
                ));
            }
        }
        for (i, network) in self.ip_networks.iter().enumerate() {
            if network.0.prefix_len() != network.max_prefix_len() {
                return Err(ValidationError::new(
                    format!("spec.ipNetworks[{i}]"),
                    network.to_string(),
                    "is not a single address (/32 or /128)",
                ));
            }
        }
        Ok(())
    }
}
