//! `IPPool`: a range pods (and tunnel addresses) are given addresses from, carved into
//! blocks of `blockSize` that nodes claim.

use serde::{Deserialize, Serialize};

use super::{Cidr, Object, Spec, ValidationError};
use crate::selector::Selector;

pub type IPPool = Object<IPPoolSpec>;

/// Calico's defaults: 64 addresses per IPv4 block, 64 per IPv6 block.
pub const DEFAULT_BLOCK_SIZE_V4: u8 = 26;
pub const DEFAULT_BLOCK_SIZE_V6: u8 = 122;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IPPoolSpec {
    /// The pool's network; immutable.
    pub cidr: Cidr,
    /// Prefix length of the blocks; immutable. Defaults to 26 (IPv4) or 122 (IPv6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size: Option<u8>,
    #[serde(default, rename = "ipipMode")]
    pub ipip_mode: EncapsulationMode,
    #[serde(default, rename = "vxlanMode")]
    pub vxlan_mode: EncapsulationMode,
    #[serde(default)]
    pub nat_outgoing: bool,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default, rename = "disableBGPExport")]
    pub disable_bgp_export: bool,
    /// Nodes that may take blocks from this pool.
    #[serde(default = "Selector::all")]
    pub node_selector: Selector,
    #[serde(default = "default_allowed_uses")]
    pub allowed_uses: Vec<AllowedUse>,
}

/// When traffic to another node's pods is encapsulated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum EncapsulationMode {
    Always,
    /// Only towards nodes in another subnet.
    CrossSubnet,
    #[default]
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AllowedUse {
    Workload,
    Tunnel,
}

fn default_allowed_uses() -> Vec<AllowedUse> {
    vec![AllowedUse::Workload, AllowedUse::Tunnel]
}

impl IPPoolSpec {
    /// A pool with Calico's defaults for everything but the CIDR.
    pub fn new(cidr: Cidr) -> Self {
        let mut spec = Self {
            cidr,
            block_size: None,
            ipip_mode: EncapsulationMode::Never,
            vxlan_mode: EncapsulationMode::Never,
            nat_outgoing: false,
            disabled: false,
            disable_bgp_export: false,
            node_selector: Selector::all(),
            allowed_uses: default_allowed_uses(),
        };
        spec.apply_defaults("");
        spec
    }

    /// The block prefix length, defaulted by family when unset.
    pub fn block_size(&self) -> u8 {
        self.block_size.unwrap_or(if self.cidr.is_ipv4() {
            DEFAULT_BLOCK_SIZE_V4
        } else {
            DEFAULT_BLOCK_SIZE_V6
        })
    }
}

impl Spec for IPPoolSpec {
    const KIND: &'static str = "IPPool";
    const PLURAL: &'static str = "ippools";
    const IMMUTABLE: &'static [&'static str] = &["cidr", "blockSize"];
    const SCHEMA_RULES: &'static [(&'static str, &'static str)] = &[(
        "!self.cidr.contains(':') || !has(self.vxlanMode) || self.vxlanMode == 'Never'",
        "vxlanMode is only possible for IPv4 pools (tabby has no VXLAN over IPv6 yet)",
    )];
    /// Two pools over the same addresses (with different block sizes) would carve
    /// blocks over each other's.
    const DISJOINT: bool = true;

    fn overlap(&self, other: &Self, other_name: &str) -> Option<ValidationError> {
        let (mine, theirs) = (self.cidr.0.trunc(), other.cidr.0.trunc());
        let overlapping = mine.contains(&theirs.network()) || theirs.contains(&mine.network());
        overlapping.then(|| {
            ValidationError::new(
                "spec.cidr",
                self.cidr.to_string(),
                format!(
                    "overlaps IPPool {other_name:?} ({}); pools may not overlap",
                    other.cidr
                ),
            )
        })
    }

    fn apply_defaults(&mut self, _name: &str) {
        self.block_size = Some(self.block_size());
    }

    fn validate(&self, _name: &str) -> Result<(), ValidationError> {
        self.cidr.require_masked("spec.cidr")?;
        let block_size = self.block_size();
        // Calico's bounds: blocks of at most 4096 and at least 1 address.
        let smallest = if self.cidr.is_ipv4() { 20 } else { 116 };
        if !(smallest..=self.cidr.max_prefix_len()).contains(&block_size) {
            return Err(ValidationError::new(
                "spec.blockSize",
                block_size,
                format!(
                    "is out of range {smallest}..={} for this family",
                    self.cidr.max_prefix_len()
                ),
            ));
        }
        if block_size < self.cidr.0.prefix_len() {
            return Err(ValidationError::new(
                "spec.blockSize",
                block_size,
                format!(
                    "is larger than the pool's own /{}",
                    self.cidr.0.prefix_len()
                ),
            ));
        }
        if self.ipip_mode != EncapsulationMode::Never && !self.cidr.is_ipv4() {
            return Err(ValidationError::new(
                "spec.ipipMode",
                self.ipip_mode,
                "is only possible for IPv4 pools",
            ));
        }
        // The agent's VXLAN device and VTEPs are IPv4 (Calico's vxlanModeV6 has no
        // equivalent yet): an IPv6 pool's routes would never be programmed.
        if self.vxlan_mode != EncapsulationMode::Never && !self.cidr.is_ipv4() {
            return Err(ValidationError::new(
                "spec.vxlanMode",
                self.vxlan_mode,
                "is only possible for IPv4 pools (tabby has no VXLAN over IPv6 yet): use \
                 Never, IPv6 pod routes go over BGP",
            ));
        }
        if self.ipip_mode != EncapsulationMode::Never && self.vxlan_mode != EncapsulationMode::Never
        {
            return Err(ValidationError::new(
                "spec.vxlanMode",
                self.vxlan_mode,
                "cannot be combined with ipipMode other than Never",
            ));
        }
        if self.allowed_uses.is_empty() {
            return Err(ValidationError::new(
                "spec.allowedUses",
                &self.allowed_uses,
                "must name at least one use",
            ));
        }
        for (i, used) in self.allowed_uses.iter().enumerate() {
            if self.allowed_uses[..i].contains(used) {
                return Err(ValidationError::new(
                    format!("spec.allowedUses[{i}]"),
                    used,
                    "is listed twice",
                ));
            }
        }
        Ok(())
    }
}
