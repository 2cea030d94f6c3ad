//! Calico's IPReservation and IPAMConfiguration (stored as the CRD kind IPAMConfig).

use api::resources::{IPAMConfigSpec, IPReservationSpec, ValidationError};
use serde::Deserialize;

use super::{CalicoSpec, Conversion, prefix};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct CalicoIPReservationSpec {
    #[serde(default, rename = "reservedCIDRs")]
    reserved_cidrs: Vec<String>,
}

impl CalicoSpec for CalicoIPReservationSpec {
    type Target = IPReservationSpec;

    fn convert(
        self,
        _name: &str,
        conversion: &mut Conversion,
    ) -> Result<IPReservationSpec, ValidationError> {
        let mut reserved_cidrs = Vec::new();
        for (i, text) in self.reserved_cidrs.iter().enumerate() {
            let path = format!("spec.reservedCIDRs[{i}]");
            // Calico takes a bare address for a single one; tabby wants the prefix.
            let cidr = prefix(&path, text, "", conversion)?;
            reserved_cidrs.push(cidr);
        }
        Ok(IPReservationSpec { reserved_cidrs })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct CalicoIPAMConfigSpec {
    strict_affinity: Option<bool>,
    auto_allocate_blocks: Option<bool>,
    max_blocks_per_host: Option<u32>,
}

impl CalicoSpec for CalicoIPAMConfigSpec {
    type Target = IPAMConfigSpec;

    fn convert(
        self,
        _name: &str,
        _conversion: &mut Conversion,
    ) -> Result<IPAMConfigSpec, ValidationError> {
        let defaults = IPAMConfigSpec::default();
        Ok(IPAMConfigSpec {
            strict_affinity: self.strict_affinity.unwrap_or(defaults.strict_affinity),
            auto_allocate_blocks: self
                .auto_allocate_blocks
                .unwrap_or(defaults.auto_allocate_blocks),
            max_blocks_per_host: self
                .max_blocks_per_host
                .unwrap_or(defaults.max_blocks_per_host),
        })
    }
}
