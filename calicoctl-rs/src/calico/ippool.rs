//! Calico's IPPool. Same fields as tabby's, plus the API v1 leftovers (`ipip`,
//! `nat-outgoing`) that old manifests still carry. Refused, because pods would get
//! addresses Calico would not have given them: manual assignment, the
//! `LoadBalancer` use, a namespace selector and an AWS subnet, which tabby does not
//! have.

use api::resources::{AllowedUse, Cidr, EncapsulationMode, IPPoolSpec, ValidationError};
use api::selector::Selector;
use serde::Deserialize;

use super::{CalicoSpec, Conversion, non_empty, selector};
use crate::output::enum_name;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct CalicoIPPoolSpec {
    cidr: Option<Cidr>,
    block_size: Option<u8>,
    #[serde(rename = "ipipMode")]
    ipip_mode: Option<EncapsulationMode>,
    #[serde(rename = "vxlanMode")]
    vxlan_mode: Option<EncapsulationMode>,
    nat_outgoing: Option<bool>,
    disabled: Option<bool>,
    #[serde(rename = "disableBGPExport")]
    disable_bgp_export: Option<bool>,
    node_selector: Option<String>,
    allowed_uses: Option<Vec<String>>,
    assignment_mode: Option<String>,
    namespace_selector: Option<String>,
    #[serde(rename = "awsSubnetID")]
    aws_subnet_id: Option<String>,
    /// API v1: `{enabled, mode: always | cross-subnet}`.
    ipip: Option<LegacyIpip>,
    #[serde(rename = "nat-outgoing")]
    legacy_nat_outgoing: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyIpip {
    #[serde(default)]
    enabled: bool,
    mode: Option<String>,
}

impl CalicoSpec for CalicoIPPoolSpec {
    type Target = IPPoolSpec;

    fn convert(
        self,
        _name: &str,
        conversion: &mut Conversion,
    ) -> Result<IPPoolSpec, ValidationError> {
        let Some(cidr) = self.cidr else {
            return Err(ValidationError::new("spec.cidr", "", "is required"));
        };
        let mut spec = IPPoolSpec::new(cidr);
        spec.block_size = self.block_size;
        spec.ipip_mode = ipip_mode(self.ipip_mode, self.ipip, conversion)?;
        spec.vxlan_mode = self.vxlan_mode.unwrap_or(EncapsulationMode::Never);
        spec.nat_outgoing = match (self.nat_outgoing, self.legacy_nat_outgoing) {
            (Some(new), Some(old)) if new != old => {
                return Err(ValidationError::new(
                    "spec.nat-outgoing",
                    old,
                    format!("contradicts spec.natOutgoing: {new}; remove nat-outgoing"),
                ));
            }
            (Some(value), _) => value,
            (None, Some(old)) => {
                conversion.note("spec.nat-outgoing (API v1) converted to natOutgoing");
                old
            }
            (None, None) => false,
        };
        spec.disabled = self.disabled.unwrap_or(false);
        spec.disable_bgp_export = self.disable_bgp_export.unwrap_or(false);
        spec.node_selector = selector("spec.nodeSelector", self.node_selector, conversion)
            .unwrap_or_else(Selector::all);
        if let Some(uses) = self.allowed_uses.filter(|u| !u.is_empty()) {
            spec.allowed_uses = allowed_uses(&uses, conversion)?;
        }
        match self.assignment_mode.as_deref() {
            None | Some("" | "Automatic") => {}
            Some(mode) => conversion.refuse(
                "spec.assignmentMode",
                mode,
                "tabby assigns from every enabled pool whose nodeSelector matches and has \
                 no pools reserved for explicit requests; remove it, or set disabled: true \
                 to keep new pods out of the pool",
            ),
        }
        // Calico's all() selects every namespace, as tabby's pools do.
        if let Some(namespaces) = non_empty(self.namespace_selector).filter(|s| s != "all()") {
            conversion.refuse(
                "spec.namespaceSelector",
                namespaces,
                "tabby's pools serve pods of every namespace; remove it, or give the \
                 namespace's pods their own nodes and a nodeSelector",
            );
        }
        if let Some(subnet) = non_empty(self.aws_subnet_id) {
            conversion.refuse(
                "spec.awsSubnetID",
                subnet,
                "tabby does not attach AWS network interfaces for pod addresses; remove it \
                 and route the pool over BGP or an encapsulation",
            );
        }
        Ok(spec)
    }
}

fn ipip_mode(
    mode: Option<EncapsulationMode>,
    legacy: Option<LegacyIpip>,
    conversion: &mut Conversion,
) -> Result<EncapsulationMode, ValidationError> {
    let Some(legacy) = legacy else {
        return Ok(mode.unwrap_or(EncapsulationMode::Never));
    };
    let converted = match (legacy.enabled, legacy.mode.as_deref()) {
        (false, _) => EncapsulationMode::Never,
        (true, None | Some("" | "always")) => EncapsulationMode::Always,
        (true, Some("cross-subnet")) => EncapsulationMode::CrossSubnet,
        (true, Some(other)) => {
            return Err(ValidationError::new(
                "spec.ipip.mode",
                other,
                "is not one of \"always\", \"cross-subnet\"",
            ));
        }
    };
    match mode {
        Some(mode) if mode != converted => Err(ValidationError::new(
            "spec.ipip",
            enum_name(&converted),
            format!(
                "contradicts spec.ipipMode: {}; remove ipip (the API v1 form)",
                enum_name(&mode)
            ),
        )),
        _ => {
            conversion.note(format!(
                "spec.ipip (API v1) converted to ipipMode: {}",
                enum_name(&converted)
            ));
            Ok(converted)
        }
    }
}

fn allowed_uses(
    uses: &[String],
    conversion: &mut Conversion,
) -> Result<Vec<AllowedUse>, ValidationError> {
    let mut converted = Vec::new();
    for (i, used) in uses.iter().enumerate() {
        let path = format!("spec.allowedUses[{i}]");
        match used.as_str() {
            "Workload" => converted.push(AllowedUse::Workload),
            "Tunnel" => converted.push(AllowedUse::Tunnel),
            "LoadBalancer" => conversion.refuse(
                &path,
                used,
                "tabby does not assign Service LoadBalancer addresses from IP pools; \
                 remove it and keep that range in your load balancer's IPAM",
            ),
            _ => {
                return Err(ValidationError::new(
                    path,
                    used,
                    "is not one of Workload, Tunnel, LoadBalancer",
                ));
            }
        }
    }
    Ok(converted)
}
