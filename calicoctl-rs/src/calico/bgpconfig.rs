//! Calico's BGPConfiguration. The mesh, AS, port, bind mode, communities,
//! advertisements and service ranges carry over. Noted: the log level (tabby-agent's
//! `--log` is a flag, the note gives its value), ignored interfaces (tabby never
//! advertises interface addresses), who programs cluster routes (tabby's agent, always)
//! and route priorities (tabby has no live migration). Refused: peering with local
//! workloads, and load-balancer addresses advertised one by one.

use api::resources::{
    AsNumber, BGPConfigurationSpec, BindMode, CidrEntry, GoDuration, NamedCommunity,
    PrefixAdvertisement, ValidationError,
};
use serde::Deserialize;

use super::bgppeer::CalicoPassword;
use super::{CalicoSpec, Conversion, non_empty};

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
    service_load_balancer_aggregation: Option<String>,
    node_mesh_password: Option<CalicoPassword>,
    node_mesh_max_restart_time: Option<GoDuration>,
    bind_mode: Option<String>,
    ignored_interfaces: Option<Vec<String>>,
    #[serde(rename = "localWorkloadPeeringIPV4")]
    local_workload_peering_ipv4: Option<String>,
    #[serde(rename = "localWorkloadPeeringIPV6")]
    local_workload_peering_ipv6: Option<String>,
    program_cluster_routes: Option<String>,
    ipv4_normal_route_priority: Option<u32>,
    ipv6_normal_route_priority: Option<u32>,
}

impl CalicoSpec for CalicoBGPConfigurationSpec {
    type Target = BGPConfigurationSpec;

    fn convert(
        self,
        name: &str,
        conversion: &mut Conversion,
    ) -> Result<BGPConfigurationSpec, ValidationError> {
        self.note_what_tabby_does_instead(conversion);
        if let Some(level) = non_empty(self.log_severity_screen) {
            conversion.note(log_level_note(name, &level)?);
        }
        let bind_mode = bind_mode(self.bind_mode)?;
        let service_load_balancer_ips = self.service_load_balancer_ips.unwrap_or_default();
        refuse_unsupported(
            [
                self.local_workload_peering_ipv4,
                self.local_workload_peering_ipv6,
            ],
            self.service_load_balancer_aggregation,
            conversion,
        )?;
        let service_cluster_ips = self.service_cluster_ips.unwrap_or_default();
        let service_external_ips = self.service_external_ips.unwrap_or_default();
        let node_mesh_password = self
            .node_mesh_password
            .map(|p| p.convert("spec.nodeMeshPassword", conversion))
            .transpose()?;
        Ok(BGPConfigurationSpec {
            as_number: self.as_number,
            node_to_node_mesh_enabled: self.node_to_node_mesh_enabled,
            listen_port: self.listen_port,
            communities: self.communities.unwrap_or_default(),
            prefix_advertisements: self.prefix_advertisements.unwrap_or_default(),
            service_cluster_ips,
            service_external_ips,
            service_load_balancer_ips,
            node_mesh_password,
            node_mesh_max_restart_time: self.node_mesh_max_restart_time,
            bind_mode,
            // Calico OSS has no BFD.
            bfd: None,
        })
    }
}

impl CalicoBGPConfigurationSpec {
    fn note_what_tabby_does_instead(&self, conversion: &mut Conversion) {
        if let Some(interfaces) = self.ignored_interfaces.as_ref().filter(|i| !i.is_empty()) {
            conversion.note(format!(
                "spec.ignoredInterfaces {interfaces:?} dropped: tabby advertises IPAM blocks \
                 and service ranges, never interface addresses"
            ));
        }
        if let Some(mode) = non_empty(self.program_cluster_routes.clone()) {
            conversion.note(format!(
                "spec.programClusterRoutes {mode:?} dropped: tabby's agent programs every \
                 route to other nodes' blocks itself, whatever the encapsulation"
            ));
        }
        let priorities = [
            ("ipv4NormalRoutePriority", self.ipv4_normal_route_priority),
            ("ipv6NormalRoutePriority", self.ipv6_normal_route_priority),
        ];
        for (field, priority) in priorities {
            if let Some(priority) = priority {
                conversion.note(format!(
                    "spec.{field} {priority} dropped: tabby's routes carry the kernel's \
                     default priority and tabby has no live migration that would raise it"
                ));
            }
        }
    }
}

fn bind_mode(mode: Option<String>) -> Result<Option<BindMode>, ValidationError> {
    match non_empty(mode).as_deref() {
        None => Ok(None),
        Some("None") => Ok(Some(BindMode::None)),
        Some("NodeIP") => Ok(Some(BindMode::NodeIp)),
        Some(other) => Err(ValidationError::new(
            "spec.bindMode",
            other,
            "is not one of None, NodeIP",
        )),
    }
}

fn refuse_unsupported(
    peering: [Option<String>; 2],
    aggregation: Option<String>,
    conversion: &mut Conversion,
) -> Result<(), ValidationError> {
    let fields = [
        "spec.localWorkloadPeeringIPV4",
        "spec.localWorkloadPeeringIPV6",
    ];
    for (path, address) in fields.into_iter().zip(peering) {
        if let Some(address) = non_empty(address) {
            conversion.refuse(
                path,
                address,
                "tabby does not peer with BGP speakers running in local pods; remove it",
            );
        }
    }
    match non_empty(aggregation).as_deref() {
        None | Some("Enabled") => Ok(()),
        Some("Disabled") => {
            conversion.refuse(
                "spec.serviceLoadBalancerAggregation",
                "Disabled",
                "tabby advertises serviceLoadBalancerIPs as whole ranges, not each \
                 Service's address; remove it (or list the addresses as /32 ranges)",
            );
            Ok(())
        }
        Some(other) => Err(ValidationError::new(
            "spec.serviceLoadBalancerAggregation",
            other,
            "is not one of Enabled, Disabled",
        )),
    }
}

/// What to give tabby-agent for Calico's BGP log level: it is a flag of each agent
/// (`--log`, `TABBY_LOG`, a tracing filter), not a datastore setting.
fn log_level_note(name: &str, level: &str) -> Result<String, ValidationError> {
    let filter = match level.to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warning" => "warn",
        "error" | "fatal" => "error",
        _ => {
            return Err(ValidationError::new(
                "spec.logSeverityScreen",
                level,
                "is not one of Trace, Debug, Info, Warning, Error, Fatal",
            ));
        }
    };
    let nodes = match name.strip_prefix("node.") {
        Some(node) => format!("on node {node}"),
        None => "on every node".to_owned(),
    };
    Ok(format!(
        "spec.logSeverityScreen {level:?} dropped: BGP logs at that level come from \
         tabby-agent's --log=info,bgp={filter} (TABBY_LOG) {nodes}, a flag \
         rather than a datastore setting"
    ))
}
