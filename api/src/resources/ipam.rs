//! The IPAM kinds: blocks (who owns which addresses), block affinities (which node
//! claimed which block), handles (what a pod holds), the IPAM configuration and
//! reserved ranges.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::meta::is_dns_subdomain;
use super::{Cidr, Object, Spec, ValidationError};

pub type IPAMBlock = Object<IPAMBlockSpec>;
pub type BlockAffinity = Object<BlockAffinitySpec>;
pub type IPAMHandle = Object<IPAMHandleSpec>;
pub type IPAMConfig = Object<IPAMConfigSpec>;
pub type IPReservation = Object<IPReservationSpec>;

/// The largest block tabby tracks address by address (a /20 in IPv4).
const MAX_BLOCK_ADDRESSES: usize = 4096;

/// Calico's object name for a CIDR: `10.0.0.0/26` → `10-0-0-0-26`.
pub fn cidr_name(cidr: &Cidr) -> String {
    cidr.to_string().replace(['.', ':', '/'], "-")
}

/// The CIDR a block's name spells (the reverse of [`cidr_name`]): for a block
/// whose content cannot be read, its name still says which addresses it covers.
pub fn cidr_of_name(name: &str) -> Option<Cidr> {
    let (address, length) = name.rsplit_once('-')?;
    let dotted = address.replace('-', ".");
    let ip: std::net::IpAddr = match dotted.parse::<std::net::Ipv4Addr>() {
        Ok(v4) => v4.into(),
        Err(_) => address.replace('-', ":").parse().ok()?,
    };
    let cidr = ipnet::IpNet::new(ip, length.parse().ok()?).ok()?;
    (cidr_name(&Cidr(cidr)) == name).then_some(Cidr(cidr))
}

/// One block of a pool: an allocation table for every address in `cidr`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IPAMBlockSpec {
    pub cidr: Cidr,
    /// `host:<node>` while a node owns the block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<String>,
    /// Per address (by ordinal): the index of its entry in `attributes`, or free.
    #[serde(default)]
    pub allocations: Vec<Option<usize>>,
    /// Free ordinals in the order they are handed out.
    #[serde(default)]
    pub unallocated: Vec<usize>,
    #[serde(default)]
    pub attributes: Vec<AllocationAttribute>,
    /// Set while the block is being released, so no new allocation lands in it.
    #[serde(default)]
    pub deleted: bool,
    /// The sequence number the next allocation gets; it only grows.
    #[serde(default)]
    pub sequence_number: u64,
    /// Per allocated ordinal (as a string, like Calico): the sequence number it was
    /// allocated with, so a stale release (of an address since freed and reused)
    /// can be told apart and refused.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sequence_number_for_allocation: BTreeMap<String, u64>,
}

/// Who holds an allocation: the handle, plus free-form details (pod, namespace, node).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AllocationAttribute {
    #[serde(rename = "handleID", default, skip_serializing_if = "Option::is_none")]
    pub handle_id: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secondary: BTreeMap<String, String>,
}

impl IPAMBlockSpec {
    /// The number of addresses in the block, when it is small enough to track.
    fn size(&self) -> Option<usize> {
        let host_bits = self.cidr.max_prefix_len() - self.cidr.0.prefix_len();
        1usize
            .checked_shl(u32::from(host_bits))
            .filter(|n| *n <= MAX_BLOCK_ADDRESSES)
    }
}

impl Spec for IPAMBlockSpec {
    const KIND: &'static str = "IPAMBlock";
    const PLURAL: &'static str = "ipamblocks";

    /// A block written without a table has every address free.
    fn apply_defaults(&mut self, _name: &str) {
        if let (Some(size), true) = (self.size(), self.allocations.is_empty())
            && self.unallocated.is_empty()
        {
            self.allocations = vec![None; size];
            self.unallocated = (0..size).collect();
        }
    }

    fn validate(&self, name: &str) -> Result<(), ValidationError> {
        self.cidr.require_masked("spec.cidr")?;
        let expected = cidr_name(&self.cidr);
        if name != expected {
            return Err(ValidationError::new(
                "metadata.name",
                name,
                format!("does not match spec.cidr (expected {expected:?})"),
            ));
        }
        let Some(size) = self.size() else {
            return Err(ValidationError::new(
                "spec.cidr",
                self.cidr.to_string(),
                format!("is larger than a block may be ({MAX_BLOCK_ADDRESSES} addresses)"),
            ));
        };
        if let Some(affinity) = &self.affinity
            && affinity.strip_prefix("host:").is_none_or(str::is_empty)
        {
            return Err(ValidationError::new(
                "spec.affinity",
                affinity,
                "is not of the form host:<node>",
            ));
        }
        if self.allocations.len() != size {
            return Err(ValidationError::new(
                "spec.allocations",
                self.allocations.len(),
                format!("entries for a block of {size} addresses"),
            ));
        }
        for (ordinal, index) in self.allocations.iter().enumerate() {
            if let Some(index) = index.filter(|i| *i >= self.attributes.len()) {
                return Err(ValidationError::new(
                    format!("spec.allocations[{ordinal}]"),
                    index,
                    "refers to a missing attributes entry",
                ));
            }
        }
        let mut seen = vec![false; size];
        for (i, ordinal) in self.unallocated.iter().enumerate() {
            let path = format!("spec.unallocated[{i}]");
            match self.allocations.get(*ordinal) {
                None => return Err(ValidationError::new(path, ordinal, "is outside the block")),
                Some(Some(_)) => {
                    return Err(ValidationError::new(path, ordinal, "is allocated"));
                }
                Some(None) if seen[*ordinal] => {
                    return Err(ValidationError::new(path, ordinal, "is listed twice"));
                }
                Some(None) => seen[*ordinal] = true,
            }
        }
        for (ordinal, sequence) in &self.sequence_number_for_allocation {
            let path = format!("spec.sequenceNumberForAllocation[{ordinal:?}]");
            let allocated = ordinal
                .parse::<usize>()
                .ok()
                .and_then(|o| self.allocations.get(o).copied().flatten());
            if allocated.is_none() {
                return Err(ValidationError::new(
                    path,
                    ordinal,
                    "is not an allocated ordinal",
                ));
            }
            if *sequence >= self.sequence_number {
                return Err(ValidationError::new(
                    path,
                    sequence,
                    format!(
                        "is not below spec.sequenceNumber ({})",
                        self.sequence_number
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A node's claim on a block, named `<node>-<block name>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlockAffinitySpec {
    pub node: String,
    pub cidr: Cidr,
    #[serde(default)]
    pub state: AffinityState,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AffinityState {
    /// Claimed, the block not yet written.
    #[default]
    Pending,
    Confirmed,
    /// Being released.
    PendingDeletion,
}

impl Spec for BlockAffinitySpec {
    const KIND: &'static str = "BlockAffinity";
    const PLURAL: &'static str = "blockaffinities";

    fn validate(&self, name: &str) -> Result<(), ValidationError> {
        if !is_dns_subdomain(&self.node) {
            return Err(ValidationError::new(
                "spec.node",
                &self.node,
                "is not a node name",
            ));
        }
        self.cidr.require_masked("spec.cidr")?;
        let expected = format!("{}-{}", self.node, cidr_name(&self.cidr));
        if name != expected {
            return Err(ValidationError::new(
                "metadata.name",
                name,
                format!("does not match spec.node and spec.cidr (expected {expected:?})"),
            ));
        }
        Ok(())
    }
}

/// What one holder (a pod's container, a tunnel) has allocated, per block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IPAMHandleSpec {
    #[serde(rename = "handleID")]
    pub handle_id: String,
    /// Block CIDR → number of addresses held in it.
    #[serde(default)]
    pub block: BTreeMap<String, u32>,
    #[serde(default)]
    pub deleted: bool,
}

impl Spec for IPAMHandleSpec {
    const KIND: &'static str = "IPAMHandle";
    const PLURAL: &'static str = "ipamhandles";

    fn validate(&self, name: &str) -> Result<(), ValidationError> {
        if self.handle_id != name {
            return Err(ValidationError::new(
                "spec.handleID",
                &self.handle_id,
                format!("does not match metadata.name {name:?}"),
            ));
        }
        for (cidr, count) in &self.block {
            let path = format!("spec.block[{cidr:?}]");
            let parsed: Cidr = cidr
                .parse()
                .map_err(|_| ValidationError::new(&path, cidr, "is not a CIDR"))?;
            parsed.require_masked(&path)?;
            if *count == 0 {
                return Err(ValidationError::new(path, count, "is not a positive count"));
            }
        }
        Ok(())
    }
}

/// Cluster-wide IPAM settings; the one object is named `default`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IPAMConfigSpec {
    /// Never borrow addresses from another node's block.
    #[serde(default)]
    pub strict_affinity: bool,
    /// Claim new blocks when a node's are full.
    #[serde(default = "yes")]
    pub auto_allocate_blocks: bool,
    /// Blocks one node may hold; 0 means no limit.
    #[serde(default)]
    pub max_blocks_per_host: u32,
}

fn yes() -> bool {
    true
}

impl Default for IPAMConfigSpec {
    fn default() -> Self {
        Self {
            strict_affinity: false,
            auto_allocate_blocks: true,
            max_blocks_per_host: 0,
        }
    }
}

impl Spec for IPAMConfigSpec {
    const KIND: &'static str = "IPAMConfig";
    const PLURAL: &'static str = "ipamconfigs";

    fn validate(&self, name: &str) -> Result<(), ValidationError> {
        if name != "default" {
            return Err(ValidationError::new(
                "metadata.name",
                name,
                "must be \"default\" (there is one IPAM configuration)",
            ));
        }
        Ok(())
    }
}

/// Addresses IPAM never hands out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IPReservationSpec {
    #[serde(rename = "reservedCIDRs")]
    pub reserved_cidrs: Vec<Cidr>,
}

impl Spec for IPReservationSpec {
    const KIND: &'static str = "IPReservation";
    const PLURAL: &'static str = "ipreservations";

    fn validate(&self, _name: &str) -> Result<(), ValidationError> {
        if self.reserved_cidrs.is_empty() {
            return Err(ValidationError::new(
                "spec.reservedCIDRs",
                &self.reserved_cidrs,
                "must list at least one CIDR",
            ));
        }
        for (i, cidr) in self.reserved_cidrs.iter().enumerate() {
            cidr.require_masked(&format!("spec.reservedCIDRs[{i}]"))?;
        }
        Ok(())
    }
}
