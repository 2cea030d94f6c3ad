//! The IPAM garbage collector behind `tabby-ipam-controller`. Each pass reads
//! everything, lists what looks reclaimable, and reclaims what has looked so for
//! the whole grace period, after checking once more right before:
//!
//! - addresses whose attachment is gone (the pod, or its sandbox: a later
//!   incarnation of the same name; see [`pod_address_gone`]), whose node is gone,
//!   or tunnel addresses their node no longer records. Without the cluster's own
//!   pod list (etcd), pods are judged only on nodes that register endpoints; released only as the allocation that was seen (handle and sequence
//!   number), so an address freed and handed out again meanwhile is never touched;
//! - blocks and affinities of deleted nodes (blocks still holding addresses lose
//!   their affinity and keep the addresses until those are reclaimed);
//! - affinities left pending by a claim that lost or was cut short (and, as a
//!   repair, affinities of blocks a node does own that a cut-short claim or release
//!   left unconfirmed);
//! - empty blocks a node does not need (it has another in the pool, or the pool no
//!   longer serves it), and empty blocks of no node;
//! - handles that hold no address;
//! - on Kubernetes, tabby `Node`s whose Kubernetes Node is deleted (as Calico's
//!   kube-controllers do): the mesh and every peer selecting it drop the node.
//!   Without the cluster's own node list (etcd), tabby's `Node` is that list.
//!
//! Ages are the controller's own observations (monotonic time): a restarted
//! controller waits the full grace period again.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::datastore::{Backend, Datastore, Error as DsError, Workload};
use api::resources::{AffinityState, Cidr, IPAMBlock, IPAMHandle, Resource, cidr_name};
use serde::{Deserialize, Serialize};

use crate::cas::{self, Edit, read};
use crate::check::Snapshot;
use crate::claim::{
    BlockRelease, affinity_name, delete_affinity, release_block, set_affinity_state,
};
use crate::error::{IpamError, Result};
use crate::handles::addresses_of;
use crate::inventory::{Owner, owner_alive, pod_address_gone};
use crate::pools::{Family, PoolQuery, Purpose, pool_holding};
use crate::release::{Expect, release_ip};
use crate::table::AllocationTable;
use crate::tunnel::recorded_tunnel_addresses;

/// What may be reclaimed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "target", rename_all = "camelCase")]
pub enum Target {
    #[serde(rename_all = "camelCase")]
    Address {
        ip: IpAddr,
        block: Cidr,
        handle: Option<String>,
        sequence: Option<u64>,
        owner: Owner,
    },
    /// A block (and the affinity) of a node that no longer exists.
    #[serde(rename_all = "camelCase")]
    NodeBlock { node: String, block: Cidr },
    #[serde(rename_all = "camelCase")]
    PendingAffinity { node: String, block: Cidr },
    /// A block a live node owns whose affinity is missing or not confirmed (a claim
    /// or release cut short): repaired, not reclaimed.
    #[serde(rename_all = "camelCase")]
    UnconfirmedAffinity { node: String, block: Cidr },
    /// An empty block; `node` is the one it is affine to, if any.
    #[serde(rename_all = "camelCase")]
    EmptyBlock { node: Option<String>, block: Cidr },
    #[serde(rename_all = "camelCase")]
    Handle { handle: String },
    /// A tabby `Node` whose Kubernetes Node is gone.
    #[serde(rename_all = "camelCase")]
    Node { node: String },
}

impl Target {
    /// The metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Address {
                owner: Owner::Pod { .. },
                ..
            } => "pod_address",
            Self::Address {
                owner: Owner::Tunnel { .. },
                ..
            } => "tunnel_address",
            Self::Address { .. } => "node_address",
            Self::NodeBlock { .. } => "node_block",
            Self::PendingAffinity { .. } => "pending_affinity",
            Self::UnconfirmedAffinity { .. } => "unconfirmed_affinity",
            Self::EmptyBlock { .. } => "empty_block",
            Self::Handle { .. } => "handle",
            Self::Node { .. } => "node",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    #[serde(flatten)]
    pub target: Target,
    pub reason: String,
    /// How long it has looked reclaimable.
    pub age_seconds: u64,
}

/// What one pass found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Everything that looks reclaimable now, reclaimed this pass or not.
    pub candidates: Vec<Candidate>,
    pub reclaimed: Vec<Target>,
    /// Candidates the check right before reclaiming found alive (or changed).
    pub spared: Vec<Target>,
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
    /// Each pool's size and use, as the pass found them.
    #[serde(default)]
    pub usage: Vec<crate::usage::PoolUsage>,
}

/// The collector: its grace period and what it has seen since when.
#[derive(Debug)]
pub struct Collector {
    store: Arc<dyn Backend>,
    grace: Duration,
    first_seen: HashMap<Target, Instant>,
}

impl Collector {
    pub fn new(store: Arc<dyn Backend>, grace: Duration) -> Self {
        Self {
            store,
            grace,
            first_seen: HashMap::new(),
        }
    }

    /// One pass at time `now`.
    pub async fn run_once(&mut self, now: Instant) -> Result<Report> {
        let store = &*self.store;
        let snapshot = Snapshot::read(store).await?;
        let (nodes, workloads) = futures::try_join!(store.nodes(), store.workloads())?;
        let mut report = Report {
            usage: crate::usage::of(&snapshot),
            ..Report::default()
        };
        let found = find(
            &snapshot,
            &nodes.into_iter().collect(),
            &workloads,
            &mut report,
            store,
        );
        self.first_seen
            .retain(|target, _| found.contains_key(target));
        for (target, reason) in found {
            let since = *self.first_seen.entry(target.clone()).or_insert(now);
            let age = now.saturating_duration_since(since);
            if age >= self.grace {
                match reclaim(store, &target).await {
                    Ok(true) => report.reclaimed.push(target.clone()),
                    Ok(false) => report.spared.push(target.clone()),
                    Err(e) => report.errors.push(format!("{}: {e}", describe(&target))),
                }
            }
            report.candidates.push(Candidate {
                target,
                reason,
                age_seconds: age.as_secs(),
            });
        }
        for target in &report.reclaimed {
            self.first_seen.remove(target);
        }
        Ok(report)
    }
}

/// Everything that looks reclaimable in the snapshot, with why.
fn find(
    snapshot: &Snapshot,
    nodes: &BTreeSet<String>,
    workloads: &[Workload],
    report: &mut Report,
    store: &dyn Backend,
) -> BTreeMap<Target, String> {
    let mut found = BTreeMap::new();
    let pods_recorded = store.inventory().is_some();
    addresses(
        snapshot,
        nodes,
        workloads,
        pods_recorded,
        report,
        &mut found,
    );
    affinities(snapshot, nodes, &mut found);
    let kept = owned_blocks(snapshot, nodes, &mut found);
    surplus_blocks(snapshot, kept, &mut found);
    handles(snapshot, &mut found);
    if pods_recorded {
        for node in snapshot.nodes.iter().map(|n| &n.metadata.name) {
            if !nodes.contains(node) {
                let reason = "its Kubernetes Node is deleted".to_owned();
                found.insert(Target::Node { node: node.clone() }, reason);
            }
        }
    }
    found
}

/// Addresses whose attachment, node or tunnel is gone.
fn addresses(
    snapshot: &Snapshot,
    nodes: &BTreeSet<String>,
    workloads: &[Workload],
    pods_recorded: bool,
    report: &mut Report,
    found: &mut BTreeMap<Target, String>,
) {
    let pods: HashMap<(&str, &str), &Workload> = workloads
        .iter()
        .map(|w| ((w.namespace.as_str(), w.pod.as_str()), w))
        .collect();
    // Without the cluster's own pod list, a pod exists through the endpoint its
    // node's CNI plugin registers. Pods are judged only on nodes whose plugin
    // registers endpoints at all: elsewhere every pod would look gone.
    let registering: BTreeSet<&str> = workloads.iter().filter_map(|w| w.node.as_deref()).collect();
    let mut unjudged: BTreeMap<String, usize> = BTreeMap::new();
    for block in &snapshot.blocks {
        for allocation in block.spec.allocations() {
            let owner = Owner::of(&allocation);
            let reason = match &owner {
                Owner::Pod {
                    namespace,
                    pod,
                    node,
                    ..
                } => {
                    let node = node.as_deref();
                    if !pods_recorded && !node.is_some_and(|n| registering.contains(n)) {
                        *unjudged
                            .entry(node.unwrap_or("(none named)").to_owned())
                            .or_default() += 1;
                        continue;
                    }
                    let pod = pods.get(&(namespace.as_str(), pod.as_str())).copied();
                    match pod_address_gone(&owner, allocation.ip, pod) {
                        Some(why) => why,
                        None => continue,
                    }
                }
                Owner::Tunnel {
                    node,
                    tunnel,
                    family,
                } => {
                    if !nodes.contains(node) {
                        format!("node {node} does not exist")
                    } else if !recorded_on(snapshot, node, *tunnel, *family, allocation.ip) {
                        format!("node {node} does not record it as its tunnel address")
                    } else {
                        continue;
                    }
                }
                Owner::Node { node } if !nodes.contains(node) => {
                    format!("node {node} does not exist")
                }
                Owner::Node { .. } | Owner::Unknown => continue,
            };
            found.insert(
                Target::Address {
                    ip: allocation.ip,
                    block: block.spec.cidr,
                    handle: allocation.handle.map(str::to_owned),
                    sequence: allocation.sequence,
                    owner,
                },
                reason,
            );
        }
    }
    for (node, count) in unjudged {
        report.warnings.push(format!(
            "{count} pod addresses on node {node} not judged: no WorkloadEndpoint is \
             registered there, so its pods cannot be told from gone ones (tabby-cni \
             registers them on ADD)"
        ));
    }
}

/// Affinities of deleted nodes, and pending ones whose claim lost or never wrote
/// its block.
fn affinities(snapshot: &Snapshot, nodes: &BTreeSet<String>, found: &mut BTreeMap<Target, String>) {
    let blocks: HashMap<String, &IPAMBlock> = snapshot
        .blocks
        .iter()
        .map(|b| (b.metadata.name.clone(), b))
        .collect();
    for affinity in &snapshot.affinities {
        let (node, block) = (&affinity.spec.node, affinity.spec.cidr);
        if !nodes.contains(node) {
            found.insert(
                Target::NodeBlock {
                    node: node.clone(),
                    block,
                },
                format!("node {node} does not exist"),
            );
            continue;
        }
        let owner = blocks
            .get(&cidr_name(&block))
            .and_then(|b| b.spec.affine_node());
        if affinity.spec.state == AffinityState::Pending && owner != Some(node.as_str()) {
            let why = match owner {
                Some(other) => format!("the block is node {other}'s"),
                None => "the block was never written".to_owned(),
            };
            found.insert(
                Target::PendingAffinity {
                    node: node.clone(),
                    block,
                },
                why,
            );
        }
    }
}

/// A live node's blocks in one pool (`None`: in no pool).
type PoolBlocks<'s> = BTreeMap<(String, Option<String>), Vec<&'s IPAMBlock>>;

/// Blocks of deleted nodes, blocks a live node owns without a confirmed affinity
/// (repaired), and empty blocks of no node. Returns the live nodes' blocks by pool.
fn owned_blocks<'s>(
    snapshot: &'s Snapshot,
    nodes: &BTreeSet<String>,
    found: &mut BTreeMap<Target, String>,
) -> PoolBlocks<'s> {
    let mut per_pool = PoolBlocks::new();
    for block in &snapshot.blocks {
        let cidr = block.spec.cidr;
        match block.spec.affine_node() {
            Some(node) if !nodes.contains(node) => {
                found.insert(
                    Target::NodeBlock {
                        node: node.to_owned(),
                        block: cidr,
                    },
                    format!("node {node} does not exist"),
                );
            }
            Some(node) => {
                let state = snapshot
                    .affinities
                    .iter()
                    .find(|a| a.spec.cidr == cidr && a.spec.node == node)
                    .map(|a| a.spec.state);
                if state != Some(AffinityState::Confirmed) {
                    let why = match state {
                        None => "the node's affinity for it is missing".to_owned(),
                        Some(state) => format!("the node's affinity for it is {state:?}"),
                    };
                    found.insert(
                        Target::UnconfirmedAffinity {
                            node: node.to_owned(),
                            block: cidr,
                        },
                        why,
                    );
                }
                let pool = pool_holding(&snapshot.pools, &cidr.0);
                per_pool
                    .entry((node.to_owned(), pool.map(|p| p.metadata.name.clone())))
                    .or_default()
                    .push(block)
            }
            None if block.spec.is_empty() => {
                found.insert(
                    Target::EmptyBlock {
                        node: None,
                        block: cidr,
                    },
                    "empty and affine to no node".to_owned(),
                );
            }
            None => {}
        }
    }
    per_pool
}

/// Empty blocks a node does not need: it has another in the pool, or the pool no
/// longer serves it. A pool that still serves the node keeps one block for its
/// next pod.
fn surplus_blocks(
    snapshot: &Snapshot,
    per_pool: PoolBlocks<'_>,
    found: &mut BTreeMap<Target, String>,
) {
    for ((node, pool_name), blocks) in per_pool {
        let labels = snapshot
            .nodes
            .iter()
            .find(|n| n.metadata.name == node)
            .map(|n| n.metadata.labels.clone())
            .unwrap_or_default();
        let pool =
            pool_name.and_then(|name| snapshot.pools.iter().find(|p| p.metadata.name == name));
        let serves = pool.is_some_and(|pool| {
            let query = PoolQuery {
                family: Family::of_net(&pool.spec.cidr.0),
                purpose: Purpose::Workload,
                node_labels: &labels,
                requested: &[],
            };
            query.check(pool).is_ok()
        });
        let empty: Vec<&&IPAMBlock> = blocks.iter().filter(|b| b.spec.is_empty()).collect();
        let keep = usize::from(serves && empty.len() == blocks.len());
        for block in empty.into_iter().skip(keep) {
            let why = if serves {
                format!("empty, and node {node} has another block in its pool")
            } else {
                "empty, and its pool no longer serves the node".to_owned()
            };
            found.insert(
                Target::EmptyBlock {
                    node: Some(node.clone()),
                    block: block.spec.cidr,
                },
                why,
            );
        }
    }
}

fn handles(snapshot: &Snapshot, found: &mut BTreeMap<Target, String>) {
    let held: BTreeSet<&str> = snapshot
        .blocks
        .iter()
        .flat_map(|b| b.spec.allocations())
        .filter_map(|a| a.handle)
        .collect();
    for handle in &snapshot.handles {
        let id = handle.spec.handle_id.as_str();
        if !held.contains(id) {
            found.insert(
                Target::Handle {
                    handle: id.to_owned(),
                },
                "holds no address".to_owned(),
            );
        }
    }
}

fn recorded_on(
    snapshot: &Snapshot,
    node: &str,
    tunnel: crate::pools::Tunnel,
    family: Family,
    ip: IpAddr,
) -> bool {
    snapshot
        .nodes
        .iter()
        .find(|n| n.metadata.name == node)
        .is_some_and(|n| recorded_tunnel_addresses(&n.spec).contains(&(tunnel, family, ip)))
}

/// Checks once more and reclaims; `false` when the check found it alive.
async fn reclaim(store: &dyn Backend, target: &Target) -> Result<bool> {
    match target {
        Target::Address {
            ip,
            handle,
            sequence,
            owner,
            ..
        } => {
            let alive = match owner {
                Owner::Tunnel {
                    node,
                    tunnel,
                    family,
                } => {
                    let recorded = read::<api::resources::Node>(store, node)
                        .await?
                        .is_some_and(|n| {
                            recorded_tunnel_addresses(&n.spec).contains(&(*tunnel, *family, *ip))
                        });
                    recorded && store.node_exists(node).await?
                }
                other => owner_alive(store, other, *ip).await?,
            };
            if alive {
                return Ok(false);
            }
            let expect = Expect {
                handle: handle.clone(),
                sequence: *sequence,
            };
            match release_ip(store, *ip, &expect).await {
                Ok(_) => Ok(true),
                // Released or handed to someone else meanwhile: not ours to free.
                Err(IpamError::NotAllocated { .. }) => Ok(false),
                Err(e) => Err(e),
            }
        }
        Target::Node { node } => {
            let Some(stored) = read::<api::resources::Node>(store, node).await? else {
                return Ok(false);
            };
            if store.node_exists(node).await? {
                return Ok(false);
            }
            // At the revision checked: an agent re-registering meanwhile wins.
            match store
                .delete::<api::resources::Node>(node, stored.revision())
                .await
            {
                Ok(_) => Ok(true),
                Err(DsError::Conflict { .. } | DsError::NotFound { .. }) => Ok(false),
                Err(e) => Err(e.into()),
            }
        }
        Target::NodeBlock { node, block } => {
            if store.node_exists(node).await? {
                return Ok(false);
            }
            let outcome = release_block(store, node, *block, true).await?;
            Ok(outcome != BlockRelease::NotEmpty)
        }
        Target::PendingAffinity { node, block } => {
            let name = affinity_name(node, block);
            let Some(affinity) = read::<api::resources::BlockAffinity>(store, &name).await? else {
                return Ok(false);
            };
            let owner = read::<IPAMBlock>(store, &cidr_name(block)).await?;
            let ours = owner.is_some_and(|b| b.spec.affine_node() == Some(node.as_str()));
            if affinity.spec.state != AffinityState::Pending || ours {
                return Ok(false);
            }
            delete_affinity(store, &name, affinity.revision()).await
        }
        Target::UnconfirmedAffinity { node, block } => {
            let owned = read::<IPAMBlock>(store, &cidr_name(block))
                .await?
                .is_some_and(|b| b.spec.affine_node() == Some(node.as_str()));
            if !owned || !store.node_exists(node).await? {
                return Ok(false);
            }
            set_affinity_state(store, node, *block, AffinityState::Confirmed).await?;
            Ok(true)
        }
        Target::EmptyBlock {
            node: Some(node),
            block,
        } => Ok(release_block(store, node, *block, false).await? == BlockRelease::Deleted),
        Target::EmptyBlock { node: None, block } => {
            let edited = cas::edit_block(store, &cidr_name(block), None, |spec| {
                if spec.is_empty() && spec.affinity.is_none() {
                    Edit::Delete(true)
                } else {
                    Edit::Keep(false)
                }
            })
            .await?;
            Ok(edited.value.unwrap_or(false))
        }
        Target::Handle { handle } => {
            let Some(stored) = read::<IPAMHandle>(store, handle).await? else {
                return Ok(false);
            };
            if !addresses_of(store, handle, "").await?.is_empty() {
                return Ok(false);
            }
            match store.delete::<IPAMHandle>(handle, stored.revision()).await {
                Ok(_) => Ok(true),
                Err(DsError::Conflict { .. } | DsError::NotFound { .. }) => Ok(false),
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// A target in a log line.
pub fn describe(target: &Target) -> String {
    match target {
        Target::Address { ip, handle, .. } => {
            format!(
                "address {ip} (handle {})",
                handle.as_deref().unwrap_or("none")
            )
        }
        Target::NodeBlock { node, block } => format!("block {block} of deleted node {node}"),
        Target::PendingAffinity { node, block } => {
            format!("pending affinity of {node} for {block}")
        }
        Target::UnconfirmedAffinity { node, block } => {
            format!("unconfirmed affinity of {node} for its block {block}")
        }
        Target::EmptyBlock { node, block } => format!(
            "empty block {block}{}",
            node.as_deref()
                .map(|n| format!(" of {n}"))
                .unwrap_or_default()
        ),
        Target::Handle { handle } => format!("handle {handle}"),
        Target::Node { node } => format!("node {node}, deleted in Kubernetes"),
    }
}
