//! Calico's BGPConfiguration. The mesh, AS, port, communities, advertisements and
//! service ranges carry over; the log level is dropped (tabby's components log as
//! `RUST_LOG` says), and so are ignored interfaces (tabby never advertises interface
//! addresses); listening only on the node IP and local-workload peering are refused.

use api::resources::{
    AsNumber, BGPConfigurationSpec, CidrEntry, GoDuration, NamedCommunity, PrefixAdvertisement,
    ValidationError,
};
use serde::Deserialize;

use super::bgppeer::CalicoPassword;
use super::{CalicoSpec, Notes, non_empty, refuse};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct CalicoBGPConfigurationSpec {
    log_severity_screen: Option<String>,
    node_to_node_mesh_enabled: Option<bool>,
    as_number: Option<AsNumber>,
    listen_port: Option<u16>,
    communities: Option<Vec<NamedCommunity>>,
    prefix_advertisements: Option<Vec<PrefixAdvertisement>>,
    #[serde(rename = "serviceClusterIPs")]
    service_cluster_ips: Option<Vec<CidrEntry>>,
    #[serde(rename = "serviceExternalIPs")]
    service_external_ips: Option<Vec<CidrEntry>>,
    #[serde(rename = "serviceLoadBalancerIPs")]
    service_load_balancer_ips: Option<Vec<CidrEntry>>,
    node_mesh_password: Option<CalicoPassword>,
    node_mesh_max_restart_time: Option<GoDuration>,
    bind_mode: Option<String>,
    ignored_interfaces: Option<Vec<String>>,
    #[serde(rename = "localWorkloadPeeringIPV4")]
    local_workload_peering_ipv4: Option<String>,
    #[serde(rename = "localWorkloadPeeringIPV6")]
    local_workload_peering_ipv6: Option<String>,
}

impl CalicoSpec for CalicoBGPConfigurationSpec {
    type Target = BGPConfigurationSpec;

    fn convert(
        self,
        _name: &str,
        notes: &mut Notes,
    ) -> Result<BGPConfigurationSpec, ValidationError> {
        self.refuse_unsupported()?;
        if let Some(interfaces) = self.ignored_interfaces.filter(|i| !i.is_empty()) {
            notes.add(format!(
                "spec.ignoredInterfaces {interfaces:?} dropped: tabby advertises IPAM blocks \
                 and service ranges, never interface addresses"
            ));
        }
        if let Some(level) = non_empty(self.log_severity_screen) {
            notes.add(format!(
                "spec.logSeverityScreen {level:?} dropped: set the log level of tabby's \
                 components with RUST_LOG"
            ));
        }
        let node_mesh_password = self
            .node_mesh_password
            .map(|p| p.convert("spec.nodeMeshPassword", notes))
            .transpose()?;
        Ok(BGPConfigurationSpec {
            as_number: self.as_number,
            node_to_node_mesh_enabled: self.node_to_node_mesh_enabled,
            listen_port: self.listen_port,
            communities: self.communities.unwrap_or_default(),
            prefix_advertisements: self.prefix_advertisements.unwrap_or_default(),
            service_cluster_ips: self.service_cluster_ips.unwrap_or_default(),
            service_external_ips: self.service_external_ips.unwrap_or_default(),
            service_load_balancer_ips: self.service_load_balancer_ips.unwrap_or_default(),
            node_mesh_password,
            node_mesh_max_restart_time: self.node_mesh_max_restart_time,
        })
    }
}

impl CalicoBGPConfigurationSpec {
    fn refuse_unsupported(&self) -> Result<(), ValidationError> {
        match non_empty(self.bind_mode.clone()).as_deref() {
            None | Some("None") => {}
            Some(mode) => {
                return Err(refuse(
                    "spec.bindMode",
                    mode,
                    "tabby's agent listens for BGP on all of the node's addresses; remove \
                     it and filter port 179 with the host firewall if needed",
                ));
            }
        }
        let peering = [
            (
                "spec.localWorkloadPeeringIPV4",
                &self.local_workload_peering_ipv4,
            ),
            (
                "spec.localWorkloadPeeringIPV6",
                &self.local_workload_peering_ipv6,
            ),
        ];
        for (path, address) in peering {
            if let Some(address) = non_empty(address.clone()) {
                return Err(refuse(
                    path,
                    address,
                    "tabby does not peer with BGP speakers running in local pods; remove it",
                ));
            }
        }
        Ok(())
    }
}
