//! What one node's allocator knows between calls: the cluster's IPAM settings as
//! last read, and the node's own blocks with their revisions. A warm allocator
//! writes straight to a cached block (the compare-and-swap catches a stale copy);
//! settings are re-read alongside that write and checked before an allocation is
//! kept. The CNI plugin saves this between its processes (`cni::state_file`).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use api::datastore::Backend;
use api::resources::{
    BlockAffinity, IPAMBlock, IPAMConfig, IPAMConfigSpec, IPPool, IPReservation, Node, cidr_name,
};
use futures::future::try_join_all;
use serde::{Deserialize, Serialize};

use crate::cas::{list_all, read};
use crate::error::{IpamError, Result};
use crate::table::AllocationTable;

/// The one IPAMConfig object's name.
pub const IPAM_CONFIG: &str = "default";

/// How long a warm allocator trusts the IPAMConfig and the node's labels it read.
/// The config only steers claiming and borrowing, which always read it afresh;
/// labels steer pool nodeSelectors, which see a label change this late at most.
/// Pools and reservations are read with every assignment (or watched).
pub const NODE_SETTINGS_TTL: Duration = Duration::from_secs(30);

/// Cluster-wide inputs to every allocation decision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    pub pools: Vec<IPPool>,
    pub reservations: Vec<IPReservation>,
    pub config: IPAMConfigSpec,
    /// The node's labels, which pools' nodeSelectors match.
    pub node_labels: BTreeMap<String, String>,
    /// When `config` and `node_labels` were read (Unix seconds).
    #[serde(default)]
    pub node_read_at: u64,
}

impl Settings {
    /// Reads the settings for `node` (four reads, at once).
    pub async fn read(store: &dyn Backend, node: &str) -> Result<Self> {
        let (pools, reservations, config, node) = futures::try_join!(
            list_all::<IPPool>(store),
            list_all::<IPReservation>(store),
            read::<IPAMConfig>(store, IPAM_CONFIG),
            read::<Node>(store, node),
        )?;
        Ok(Self {
            pools,
            reservations,
            config: config.map(|c| c.spec).unwrap_or_default(),
            node_labels: node.map(|n| n.metadata.labels).unwrap_or_default(),
            node_read_at: now(),
        })
    }

    /// What a warm assignment checks its cached view against: pools and
    /// reservations (two reads, at once), and everything once the config and labels
    /// are older than [`NODE_SETTINGS_TTL`].
    pub async fn reread(&self, store: &dyn Backend, node: &str) -> Result<Self> {
        if now().saturating_sub(self.node_read_at) >= NODE_SETTINGS_TTL.as_secs() {
            return Self::read(store, node).await;
        }
        let (pools, reservations) =
            futures::try_join!(list_all::<IPPool>(store), list_all::<IPReservation>(store))?;
        Ok(Self {
            pools,
            reservations,
            ..self.clone()
        })
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One node's cached view.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeState {
    pub node: String,
    /// `None` until read once.
    pub settings: Option<Settings>,
    /// The node's blocks by name, as last read or written; complete once `listed`.
    pub blocks: BTreeMap<String, IPAMBlock>,
    pub listed: bool,
}

impl NodeState {
    pub fn new(node: impl Into<String>) -> Self {
        Self {
            node: node.into(),
            ..Self::default()
        }
    }

    /// Records a block as stored now (`None`: gone), keeping only the node's own.
    pub fn record(&mut self, name: &str, block: Option<IPAMBlock>) {
        match block.filter(|b| b.spec.affine_node() == Some(self.node.as_str())) {
            Some(block) => {
                self.blocks.insert(name.to_owned(), block);
            }
            None => {
                self.blocks.remove(name);
            }
        }
    }
}

/// A block, or `None` when it is missing or cannot be read (reported; the node goes
/// on with its other blocks, and no claim lands over it).
async fn readable_block(store: &dyn Backend, name: &str) -> Result<Option<IPAMBlock>> {
    match read::<IPAMBlock>(store, name).await {
        Err(IpamError::Datastore(e)) => match api::datastore::skip(e) {
            Ok(_) => Ok(None),
            Err(e) => Err(e.into()),
        },
        other => other,
    }
}

/// The blocks `node` owns: those its affinities name whose block says so. Pending
/// affinities count only when the block was written (a claim cut short after it).
pub async fn node_blocks(store: &dyn Backend, node: &str) -> Result<BTreeMap<String, IPAMBlock>> {
    let affinities = list_all::<BlockAffinity>(store).await?;
    let names: Vec<String> = affinities
        .iter()
        .filter(|a| a.spec.node == node)
        .map(|a| cidr_name(&a.spec.cidr))
        .collect();
    let blocks = try_join_all(names.iter().map(|name| readable_block(store, name))).await?;
    Ok(names
        .into_iter()
        .zip(blocks)
        .filter_map(|(name, block)| Some((name, block?)))
        .filter(|(_, block)| block.spec.affine_node() == Some(node))
        .collect())
}
