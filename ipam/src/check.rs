//! The consistency checker (`calicoctl-rs ipam check`): reads blocks, affinities,
//! handles, pools and nodes and reports what contradicts itself.
//!
//! The lists are read one after another, so on a busy cluster an allocation in
//! flight (handle written, block not yet) shows up as a problem that is gone on the
//! next run; a problem that persists is real.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use api::datastore::Backend;
use api::resources::{
    AffinityState, BlockAffinity, Cidr, IPAMBlock, IPAMHandle, IPPool, Node, cidr_name,
};
use serde::{Deserialize, Serialize};

use crate::cas::list_all;
use crate::error::Result;
use crate::handles::tunnel_handle_id;
use crate::inventory::{Owner, owner_alive};
use crate::pools::pool_holding;
use crate::table::AllocationTable;
use crate::tunnel::recorded_tunnel_addresses;

/// Everything IPAM stores, read at once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub pools: Vec<IPPool>,
    pub blocks: Vec<IPAMBlock>,
    pub affinities: Vec<BlockAffinity>,
    pub handles: Vec<IPAMHandle>,
    pub nodes: Vec<Node>,
}

impl Snapshot {
    pub async fn read(store: &dyn Backend) -> Result<Self> {
        let (pools, blocks, affinities, handles, nodes) = futures::try_join!(
            list_all::<IPPool>(store),
            list_all::<IPAMBlock>(store),
            list_all::<BlockAffinity>(store),
            list_all::<IPAMHandle>(store),
            list_all::<Node>(store),
        )?;
        Ok(Self {
            pools,
            blocks,
            affinities,
            handles,
            nodes,
        })
    }
}

/// One inconsistency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "camelCase")]
pub enum Problem {
    /// One address allocated in more than one place (overlapping blocks).
    #[serde(rename_all = "camelCase")]
    DoubleAllocation { ip: IpAddr, holders: Vec<String> },
    /// More than one node believes it owns a block.
    #[serde(rename_all = "camelCase")]
    DoubleOwnership { block: Cidr, nodes: Vec<String> },
    /// A block affine to a node that has no confirmed affinity for it.
    #[serde(rename_all = "camelCase")]
    BlockWithoutAffinity {
        block: Cidr,
        node: String,
        affinity: Option<AffinityState>,
    },
    /// An affinity that is not (or no longer) backed by its block.
    #[serde(rename_all = "camelCase")]
    StaleAffinity {
        block: Cidr,
        node: String,
        state: AffinityState,
        why: String,
    },
    /// An allocation naming a handle that does not exist.
    #[serde(rename_all = "camelCase")]
    AddressWithoutHandle {
        ip: IpAddr,
        block: Cidr,
        handle: Option<String>,
    },
    /// A handle whose count for a block is not what the block holds for it.
    #[serde(rename_all = "camelCase")]
    HandleCountMismatch {
        handle: String,
        block: String,
        counted: u32,
        held: u32,
    },
    /// A handle that holds no address at all.
    #[serde(rename_all = "camelCase")]
    HandleWithoutAddresses { handle: String },
    /// An allocation whose owner is gone.
    #[serde(rename_all = "camelCase")]
    Leak {
        ip: IpAddr,
        handle: Option<String>,
        owner: Owner,
    },
    /// A node records a tunnel address its tunnel handle does not hold.
    #[serde(rename_all = "camelCase")]
    TunnelAddressNotAllocated { node: String, ip: IpAddr },
    /// A block in no pool (its pool was deleted).
    #[serde(rename_all = "camelCase")]
    BlockOutsidePools { block: Cidr, allocations: usize },
}

/// The checker's findings, serialisable for `-o json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub blocks: usize,
    pub allocations: usize,
    pub handles: usize,
    pub affinities: usize,
    pub problems: Vec<Problem>,
}

impl Report {
    pub fn is_consistent(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Reads the datastore and checks it; with `leaks`, every allocation's owner is
/// asked after too (a read per allocation).
pub async fn check(store: &dyn Backend, with_leaks: bool) -> Result<Report> {
    let snapshot = Snapshot::read(store).await?;
    let mut report = check_snapshot(&snapshot);
    if with_leaks {
        report.problems.extend(leaks(store, &snapshot).await?);
    }
    Ok(report)
}

/// Everything that can be told from the stored objects alone.
pub fn check_snapshot(snapshot: &Snapshot) -> Report {
    let mut problems = Vec::new();
    ownership(snapshot, &mut problems);
    handles(snapshot, &mut problems);
    addresses(snapshot, &mut problems);
    Report {
        blocks: snapshot.blocks.len(),
        allocations: snapshot
            .blocks
            .iter()
            .map(|b| b.spec.allocations().len())
            .sum(),
        handles: snapshot.handles.len(),
        affinities: snapshot.affinities.len(),
        problems,
    }
}

fn ownership(snapshot: &Snapshot, problems: &mut Vec<Problem>) {
    let blocks: BTreeMap<String, &IPAMBlock> = snapshot
        .blocks
        .iter()
        .map(|b| (b.metadata.name.clone(), b))
        .collect();
    let mut confirmed: BTreeMap<Cidr, BTreeSet<String>> = BTreeMap::new();
    for affinity in &snapshot.affinities {
        let spec = &affinity.spec;
        let block = blocks.get(&cidr_name(&spec.cidr));
        let owner = block.and_then(|b| b.spec.affine_node());
        if spec.state == AffinityState::Confirmed {
            confirmed
                .entry(spec.cidr)
                .or_default()
                .insert(spec.node.clone());
        }
        let why = match (block, owner) {
            (None, _) => "no such block".to_owned(),
            (Some(_), Some(owner)) if owner == spec.node => continue,
            // A confirmed affinity for another node's block is a second owner,
            // reported with the block below.
            (Some(_), Some(_)) if spec.state == AffinityState::Confirmed => continue,
            (Some(_), Some(owner)) => format!("the block is node {owner}'s"),
            (Some(_), None) => "the block has no affinity".to_owned(),
        };
        problems.push(Problem::StaleAffinity {
            block: spec.cidr,
            node: spec.node.clone(),
            state: spec.state,
            why,
        });
    }
    for block in &snapshot.blocks {
        let cidr = block.spec.cidr;
        let mut nodes = confirmed.remove(&cidr).unwrap_or_default();
        if let Some(owner) = block.spec.affine_node() {
            let affinity = snapshot
                .affinities
                .iter()
                .find(|a| a.spec.cidr == cidr && a.spec.node == owner)
                .map(|a| a.spec.state);
            if affinity != Some(AffinityState::Confirmed) {
                problems.push(Problem::BlockWithoutAffinity {
                    block: cidr,
                    node: owner.to_owned(),
                    affinity,
                });
            }
            nodes.insert(owner.to_owned());
        }
        if nodes.len() > 1 {
            problems.push(Problem::DoubleOwnership {
                block: cidr,
                nodes: nodes.into_iter().collect(),
            });
        }
        if pool_holding(&snapshot.pools, &cidr.0).is_none() {
            problems.push(Problem::BlockOutsidePools {
                block: cidr,
                allocations: block.spec.allocations().len(),
            });
        }
    }
}

fn handles(snapshot: &Snapshot, problems: &mut Vec<Problem>) {
    // handle → block CIDR → addresses held there
    let mut held: BTreeMap<&str, BTreeMap<String, u32>> = BTreeMap::new();
    for block in &snapshot.blocks {
        for allocation in block.spec.allocations() {
            if let Some(handle) = allocation.handle {
                *held
                    .entry(handle)
                    .or_default()
                    .entry(block.spec.cidr.to_string())
                    .or_default() += 1;
            }
        }
    }
    let known: BTreeSet<&str> = snapshot
        .handles
        .iter()
        .map(|h| h.spec.handle_id.as_str())
        .collect();
    for handle in &snapshot.handles {
        let id = handle.spec.handle_id.as_str();
        let actual = held.get(id).cloned().unwrap_or_default();
        if actual.is_empty() {
            problems.push(Problem::HandleWithoutAddresses {
                handle: id.to_owned(),
            });
            continue;
        }
        let blocks: BTreeSet<&String> = handle.spec.block.keys().chain(actual.keys()).collect();
        for block in blocks {
            let counted = handle.spec.block.get(block).copied().unwrap_or(0);
            let there = actual.get(block).copied().unwrap_or(0);
            if counted != there {
                problems.push(Problem::HandleCountMismatch {
                    handle: id.to_owned(),
                    block: block.clone(),
                    counted,
                    held: there,
                });
            }
        }
    }
    for block in &snapshot.blocks {
        for allocation in block.spec.allocations() {
            if allocation.handle.is_none_or(|h| !known.contains(h)) {
                problems.push(Problem::AddressWithoutHandle {
                    ip: allocation.ip,
                    block: block.spec.cidr,
                    handle: allocation.handle.map(str::to_owned),
                });
            }
        }
    }
}

fn addresses(snapshot: &Snapshot, problems: &mut Vec<Problem>) {
    let mut holders: BTreeMap<IpAddr, Vec<String>> = BTreeMap::new();
    for block in &snapshot.blocks {
        for allocation in block.spec.allocations() {
            holders.entry(allocation.ip).or_default().push(format!(
                "block {} handle {}",
                block.spec.cidr,
                allocation.handle.unwrap_or("(none)")
            ));
        }
    }
    for (ip, holders) in holders {
        if holders.len() > 1 {
            problems.push(Problem::DoubleAllocation { ip, holders });
        }
    }
    for node in &snapshot.nodes {
        for (tunnel, family, ip) in recorded_tunnel_addresses(&node.spec) {
            let handle = tunnel_handle_id(tunnel, family, &node.metadata.name);
            let held = snapshot.blocks.iter().any(|b| {
                b.spec
                    .allocations()
                    .iter()
                    .any(|a| a.ip == ip && a.handle == Some(handle.as_str()))
            });
            if !held {
                problems.push(Problem::TunnelAddressNotAllocated {
                    node: node.metadata.name.clone(),
                    ip,
                });
            }
        }
    }
}

/// Allocations whose owner is gone, and tunnel addresses their node no longer
/// records.
pub async fn leaks(store: &dyn Backend, snapshot: &Snapshot) -> Result<Vec<Problem>> {
    let mut found = Vec::new();
    for block in &snapshot.blocks {
        for allocation in block.spec.allocations() {
            let owner = Owner::of(&allocation);
            let recorded = match &owner {
                Owner::Tunnel {
                    node,
                    tunnel,
                    family,
                } => snapshot
                    .nodes
                    .iter()
                    .find(|n| n.metadata.name == *node)
                    .is_some_and(|n| {
                        recorded_tunnel_addresses(&n.spec).contains(&(
                            *tunnel,
                            *family,
                            allocation.ip,
                        ))
                    }),
                _ => true,
            };
            if !recorded || !owner_alive(store, &owner, allocation.ip).await? {
                found.push(Problem::Leak {
                    ip: allocation.ip,
                    handle: allocation.handle.map(str::to_owned),
                    owner,
                });
            }
        }
    }
    Ok(found)
}
