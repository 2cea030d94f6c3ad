//! How much of each pool is used: its size, and per node the blocks carved from
//! it and the addresses allocated in them, from one [`Snapshot`] (the
//! controller's metrics; `calicoctl-rs ipam show` counts the same way).

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::check::Snapshot;
use crate::table::AllocationTable;

/// One pool's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolUsage {
    /// The pool's name.
    pub pool: String,
    /// Addresses in its CIDR.
    pub size: u128,
    /// By the node the blocks are affine to (`""`: none).
    pub nodes: BTreeMap<String, NodeUsage>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeUsage {
    pub blocks: u64,
    pub allocations: u64,
}

impl PoolUsage {
    /// Addresses allocated in the pool, every node's.
    pub fn allocations(&self) -> u64 {
        self.nodes.values().map(|n| n.allocations).sum()
    }

    /// Allocated over size, 0 to 1.
    pub fn utilization(&self) -> f64 {
        if self.size == 0 {
            return 0.0;
        }
        self.allocations() as f64 / self.size as f64
    }
}

/// Addresses in a prefix: 2^(host bits), exactly, up to IPv6's /0.
pub fn addresses_in(cidr: &IpNet) -> u128 {
    let host_bits = u32::from(cidr.max_prefix_len() - cidr.prefix_len());
    1u128.checked_shl(host_bits).unwrap_or(u128::MAX)
}

/// Every pool of `snapshot` with its figures; a block counts for the pool whose
/// CIDR holds it.
pub fn of(snapshot: &Snapshot) -> Vec<PoolUsage> {
    snapshot
        .pools
        .iter()
        .map(|pool| {
            let cidr = pool.spec.cidr.0;
            let mut nodes: BTreeMap<String, NodeUsage> = BTreeMap::new();
            for block in snapshot
                .blocks
                .iter()
                .filter(|b| cidr.contains(&b.spec.cidr.0))
            {
                let node = block.spec.affine_node().unwrap_or_default();
                let usage = nodes.entry(node.to_owned()).or_default();
                usage.blocks += 1;
                usage.allocations += block.spec.allocations.iter().flatten().count() as u64;
            }
            PoolUsage {
                pool: pool.metadata.name.clone(),
                size: addresses_in(&cidr),
                nodes,
            }
        })
        .collect()
}
