//! One block's allocation table, edited in memory; callers CAS-write the result.
//!
//! The table is Calico's: `allocations[ordinal]` points into `attributes` (who holds
//! the address), `unallocated` lists free ordinals in hand-out order, and every
//! allocation is stamped with the block's next sequence number. A freed ordinal goes
//! to the back of `unallocated`, so an address is reused as late as possible, and its
//! sequence number is forgotten, so a release naming the old number is refused.

use std::collections::BTreeMap;
use std::net::IpAddr;

use api::resources::{AllocationAttribute, IPAMBlockSpec};

use crate::blocks::{address_at, ordinal_of};

/// Secondary attribute keys, as Calico writes them.
pub mod attr {
    pub const NAMESPACE: &str = "namespace";
    pub const POD: &str = "pod";
    pub const NODE: &str = "node";
    pub const CONTAINER_ID: &str = "containerID";
    pub const INTERFACE: &str = "interface";
    /// What a tunnel address is for (`ipipTunnelAddress`, `vxlanTunnelAddress`, ...).
    pub const TYPE: &str = "type";
}

/// One allocated address of a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation<'a> {
    pub ordinal: usize,
    pub ip: IpAddr,
    pub handle: Option<&'a str>,
    pub secondary: &'a BTreeMap<String, String>,
    /// Absent only in blocks written by something that does not stamp them.
    pub sequence: Option<u64>,
}

/// An address freed from a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Released {
    pub ordinal: usize,
    pub ip: IpAddr,
    pub handle: Option<String>,
    pub sequence: Option<u64>,
}

/// Why one ordinal cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Occupied {
    /// Held, by this handle (if any).
    By(Option<String>),
    Outside,
}

/// `host:<node>`, the block's affinity for `node`.
pub fn host_affinity(node: &str) -> String {
    format!("host:{node}")
}

/// Edits of and questions about a block's allocation table.
pub trait AllocationTable {
    /// Takes up to `n` free ordinals, in hand-out order, skipping those `reserved`;
    /// each is stamped with a sequence number. Returns `(ordinal, sequence)` pairs.
    fn take_free(
        &mut self,
        n: usize,
        holder: &AllocationAttribute,
        reserved: &dyn Fn(usize) -> bool,
    ) -> Vec<(usize, u64)>;

    /// Takes one given ordinal; returns its sequence number.
    fn take_ordinal(
        &mut self,
        ordinal: usize,
        holder: &AllocationAttribute,
    ) -> Result<u64, Occupied>;

    /// Frees every allocation `release` selects.
    fn release_where(&mut self, release: &dyn Fn(&Allocation<'_>) -> bool) -> Vec<Released>;

    fn allocations(&self) -> Vec<Allocation<'_>>;
    fn allocation(&self, ordinal: usize) -> Option<Allocation<'_>>;

    /// Free ordinals not `reserved`.
    fn free_count(&self, reserved: &dyn Fn(usize) -> bool) -> usize;
    fn is_empty(&self) -> bool;

    /// The node named by `host:<node>`, if the block is affine to one.
    fn affine_node(&self) -> Option<&str>;
}

impl AllocationTable for IPAMBlockSpec {
    fn take_free(
        &mut self,
        n: usize,
        holder: &AllocationAttribute,
        reserved: &dyn Fn(usize) -> bool,
    ) -> Vec<(usize, u64)> {
        let chosen: Vec<usize> = self
            .unallocated
            .iter()
            .copied()
            .filter(|&o| !reserved(o))
            .take(n)
            .collect();
        if chosen.is_empty() {
            return Vec::new();
        }
        self.unallocated.retain(|o| !chosen.contains(o));
        let index = self.attributes.len();
        self.attributes.push(holder.clone());
        chosen
            .into_iter()
            .map(|ordinal| (ordinal, stamp(self, ordinal, index)))
            .collect()
    }

    fn take_ordinal(
        &mut self,
        ordinal: usize,
        holder: &AllocationAttribute,
    ) -> Result<u64, Occupied> {
        match self.allocations.get(ordinal) {
            None => return Err(Occupied::Outside),
            Some(Some(index)) => {
                let handle = self
                    .attributes
                    .get(*index)
                    .and_then(|a| a.handle_id.clone());
                return Err(Occupied::By(handle));
            }
            Some(None) => {}
        }
        self.unallocated.retain(|o| *o != ordinal);
        let index = self.attributes.len();
        self.attributes.push(holder.clone());
        Ok(stamp(self, ordinal, index))
    }

    fn release_where(&mut self, release: &dyn Fn(&Allocation<'_>) -> bool) -> Vec<Released> {
        let freed: Vec<Released> = self
            .allocations()
            .into_iter()
            .filter(|a| release(a))
            .map(|a| Released {
                ordinal: a.ordinal,
                ip: a.ip,
                handle: a.handle.map(str::to_owned),
                sequence: a.sequence,
            })
            .collect();
        for released in &freed {
            self.allocations[released.ordinal] = None;
            self.unallocated.push(released.ordinal);
            self.sequence_number_for_allocation
                .remove(&released.ordinal.to_string());
        }
        if !freed.is_empty() {
            compact_attributes(self);
        }
        freed
    }

    fn allocations(&self) -> Vec<Allocation<'_>> {
        (0..self.allocations.len())
            .filter_map(|ordinal| self.allocation(ordinal))
            .collect()
    }

    fn allocation(&self, ordinal: usize) -> Option<Allocation<'_>> {
        let index = (*self.allocations.get(ordinal)?)?;
        let attribute = self.attributes.get(index)?;
        Some(Allocation {
            ordinal,
            ip: address_at(self.cidr.0, ordinal)?,
            handle: attribute.handle_id.as_deref(),
            secondary: &attribute.secondary,
            sequence: self
                .sequence_number_for_allocation
                .get(&ordinal.to_string())
                .copied(),
        })
    }

    fn free_count(&self, reserved: &dyn Fn(usize) -> bool) -> usize {
        self.unallocated.iter().filter(|&&o| !reserved(o)).count()
    }

    fn is_empty(&self) -> bool {
        self.allocations.iter().all(Option::is_none)
    }

    fn affine_node(&self) -> Option<&str> {
        self.affinity.as_deref()?.strip_prefix("host:")
    }
}

/// The ordinal of `ip` in the block, if it holds it.
pub fn ordinal_in(spec: &IPAMBlockSpec, ip: IpAddr) -> Option<usize> {
    ordinal_of(spec.cidr.0, ip)
}

/// Points `ordinal` at `attributes[index]` and gives it the next sequence number.
fn stamp(spec: &mut IPAMBlockSpec, ordinal: usize, index: usize) -> u64 {
    let sequence = spec.sequence_number;
    spec.sequence_number += 1;
    spec.allocations[ordinal] = Some(index);
    spec.sequence_number_for_allocation
        .insert(ordinal.to_string(), sequence);
    sequence
}

/// Drops attribute entries no allocation points at, renumbering the rest.
fn compact_attributes(spec: &mut IPAMBlockSpec) {
    let mut renumbered = vec![None; spec.attributes.len()];
    let mut kept = Vec::new();
    for slot in spec.allocations.iter_mut().flatten() {
        let new = *renumbered[*slot].get_or_insert_with(|| {
            kept.push(spec.attributes[*slot].clone());
            kept.len() - 1
        });
        *slot = new;
    }
    spec.attributes = kept;
}

#[cfg(test)]
mod tests {
    use api::resources::{Cidr, IPAMBlock, Resource, cidr_name};

    use super::*;

    fn block(cidr: &str) -> IPAMBlockSpec {
        let cidr: Cidr = cidr.parse().unwrap();
        let mut block = IPAMBlock::new(
            cidr_name(&cidr),
            IPAMBlockSpec {
                cidr,
                affinity: Some(host_affinity("n1")),
                allocations: Vec::new(),
                unallocated: Vec::new(),
                attributes: Vec::new(),
                deleted: false,
                sequence_number: 0,
                sequence_number_for_allocation: BTreeMap::new(),
            },
        );
        block.apply_defaults();
        block.spec
    }

    fn holder(handle: &str) -> AllocationAttribute {
        AllocationAttribute {
            handle_id: Some(handle.into()),
            secondary: BTreeMap::new(),
        }
    }

    fn valid(spec: &IPAMBlockSpec) {
        IPAMBlock::new(cidr_name(&spec.cidr), spec.clone())
            .validate()
            .unwrap();
    }

    #[test]
    fn ipam_taking_skips_reserved_ordinals_and_stamps_increasing_sequences() {
        let mut spec = block("10.0.0.0/29");
        let taken = spec.take_free(3, &holder("a"), &|o| o == 0 || o == 2);
        assert_eq!(taken, [(1, 0), (3, 1), (4, 2)]);
        assert_eq!(spec.attributes.len(), 1, "one entry for one holder");
        assert_eq!(spec.free_count(&|o| o == 0 || o == 2), 3);
        valid(&spec);
    }

    #[test]
    fn ipam_a_freed_address_is_reused_last_and_with_a_new_sequence_number() {
        let mut spec = block("10.0.0.0/30");
        spec.take_free(2, &holder("a"), &|_| false);
        let freed = spec.release_where(&|a| a.ordinal == 0);
        assert_eq!(freed[0].sequence, Some(0));
        assert_eq!(spec.unallocated, [2, 3, 0]);
        assert_eq!(
            spec.take_free(3, &holder("b"), &|_| false),
            [(2, 2), (3, 3), (0, 4)]
        );
        valid(&spec);
    }

    #[test]
    fn ipam_releasing_compacts_the_attributes_and_keeps_other_holders() {
        let mut spec = block("10.0.0.0/29");
        spec.take_free(2, &holder("a"), &|_| false);
        spec.take_free(2, &holder("b"), &|_| false);
        spec.take_ordinal(7, &holder("c")).unwrap();
        let freed = spec.release_where(&|a| a.handle == Some("b"));
        assert_eq!(freed.iter().map(|r| r.ordinal).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(spec.attributes, [holder("a"), holder("c")]);
        let holders: Vec<_> = spec.allocations().iter().map(|a| a.handle).collect();
        assert_eq!(holders, [Some("a"), Some("a"), Some("c")]);
        assert!(!spec.is_empty());
        valid(&spec);
    }

    #[test]
    fn ipam_an_occupied_ordinal_names_its_holder() {
        let mut spec = block("fd00::/126");
        spec.take_ordinal(1, &holder("a")).unwrap();
        assert_eq!(
            spec.take_ordinal(1, &holder("b")),
            Err(Occupied::By(Some("a".into())))
        );
        assert_eq!(spec.take_ordinal(4, &holder("b")), Err(Occupied::Outside));
        let allocation = spec.allocation(1).unwrap();
        assert_eq!(allocation.ip.to_string(), "fd00::1");
        assert_eq!(spec.affine_node(), Some("n1"));
    }
}
