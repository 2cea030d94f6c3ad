//! Auto-assignment: N IPv4 and M IPv6 addresses for a handle, from the node's own
//! blocks first, then from a newly claimed block, then (unless strictAffinity)
//! borrowed from another node's block.
//!
//! The common case, a free address in a block the node owns, is one round of
//! concurrent requests:
//!
//! ```text
//!   one write_all: CAS the cached block with the address   ─┐
//!                  taken + create the handle with its counts ├─ at once
//!   re-read pools, reservations, IPAMConfig, node labels    ┘  (only on a warm cache)
//! ```
//!
//! On etcd (and memory) the block and the handle are one transaction
//! ([`together`]); on Kubernetes, which has none, two requests sent at once. The
//! block write is the only one that decides ownership of an address: the CAS
//! fails if the cached copy is stale, and the block is then read and the edit
//! redone. Where the two are separate requests, a crash in between leaves a
//! handle without the address (harmless) or an address without its handle (a
//! leak the controller reclaims), never an address handed out twice. Settings
//! re-read alongside are checked before the call returns; an address they rule
//! out (pool disabled, reserved meanwhile) is freed
//! again and replaced. A cold allocator reads settings and the node's blocks
//! first: two round trips.

use std::collections::BTreeMap;
use std::sync::Arc;

use api::datastore::{Backend, Error as DsError};
use api::resources::{
    AffinityState, AllocationAttribute, BlockAffinity, IPAMBlock, IPAMHandle, IPAMHandleSpec,
};
use futures::future::join_all;
use rand::Rng;
use rand::seq::SliceRandom;
use tracing::Instrument;

use crate::cas::{self, Edit, Edited, add_to_handle, edit_handle, list_all};
use crate::claim::claim_free_block;
use crate::error::{IpamError, Result};
use crate::handles::{Assignment, addresses_of, check_handle_id};
use crate::pools::{Family, PoolQuery, Purpose, Reserved, pool_holding};
use crate::state::{NodeState, Settings, node_blocks};
use crate::table::AllocationTable;
use crate::watch::SettingsWatch;

mod take;
mod together;
use take::{Take, plan_owned, take_of};

/// Rounds of planning and writing before giving up; each round either makes
/// progress or refreshes a stale view.
const ROUNDS: usize = 16;
/// Waits for other nodes' claims under way when nothing is free or borrowable, and
/// each wait's length in milliseconds (random, so waiters do not move in step):
/// about two seconds in all, after which a claim still pending is a crash's
/// leftover and the pools are reported full.
const CLAIM_WAITS: usize = 40;
const CLAIM_PAUSE: std::ops::Range<u64> = 20..80;

/// What to do when the request's handle already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExistingHandle {
    /// Add the new addresses to it (Calico's AutoAssign).
    Extend,
    /// A retried request: when the handle holds addresses, return those and
    /// allocate nothing (a CNI ADD the runtime repeats).
    Reuse,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignRequest {
    pub handle: String,
    pub num_v4: usize,
    pub num_v6: usize,
    /// Calico's secondary attributes: namespace, pod, node, ...
    pub attrs: BTreeMap<String, String>,
    /// Pools to use, by name or CIDR; empty means every usable pool.
    pub pools_v4: Vec<String>,
    pub pools_v6: Vec<String>,
    pub purpose: Purpose,
    pub existing_handle: ExistingHandle,
}

impl AssignRequest {
    pub fn new(handle: impl Into<String>, num_v4: usize, num_v6: usize) -> Self {
        Self {
            handle: handle.into(),
            num_v4,
            num_v6,
            attrs: BTreeMap::new(),
            pools_v4: Vec::new(),
            pools_v6: Vec::new(),
            purpose: Purpose::Workload,
            existing_handle: ExistingHandle::Extend,
        }
    }

    fn wanted(&self, family: Family) -> usize {
        match family {
            Family::V4 => self.num_v4,
            Family::V6 => self.num_v6,
        }
    }

    fn query<'a>(&'a self, family: Family, settings: &'a Settings) -> PoolQuery<'a> {
        PoolQuery {
            family,
            purpose: self.purpose,
            node_labels: &settings.node_labels,
            requested: match family {
                Family::V4 => &self.pools_v4,
                Family::V6 => &self.pools_v6,
            },
        }
    }

    fn holder(&self) -> AllocationAttribute {
        AllocationAttribute {
            handle_id: Some(self.handle.clone()),
            secondary: self.attrs.clone(),
        }
    }
}

/// The outcome of an auto-assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assigned {
    pub addresses: Vec<Assignment>,
    /// The handle already held these (see [`ExistingHandle::Reuse`]).
    pub reused: bool,
}

/// One node's allocator. Calls on one allocator are serialised (one node's blocks
/// are one contended resource); separate allocators, even for one node, are safe
/// together and only contend through compare-and-swap.
#[derive(Debug)]
pub struct Allocator {
    store: Arc<dyn Backend>,
    node: String,
    state: tokio::sync::Mutex<NodeState>,
    /// Settings followed by watches (long-lived allocators), instead of re-read.
    watch: Option<SettingsWatch>,
}

/// Where the request's handle stands during a call.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HandleWrite {
    Unwritten,
    /// Created by this call with these counts.
    Created(BTreeMap<String, u32>),
    /// It existed before this call.
    Existed,
}

/// The progress of one call.
#[derive(Debug)]
struct Progress {
    got: Vec<Assignment>,
    handle: HandleWrite,
    /// Settings were read during this call.
    fresh: bool,
}

impl Allocator {
    pub fn new(store: Arc<dyn Backend>, node: impl Into<String>) -> Self {
        Self::with_state(store, NodeState::new(node))
    }

    /// An allocator starting from a saved view (which may be stale).
    pub fn with_state(store: Arc<dyn Backend>, state: NodeState) -> Self {
        Self {
            store,
            node: state.node.clone(),
            state: tokio::sync::Mutex::new(state),
            watch: None,
        }
    }

    /// A long-lived allocator: settings are followed by watches, so a warm
    /// assignment is its block write and its handle write, nothing else.
    pub fn watching(store: Arc<dyn Backend>, node: impl Into<String>) -> Self {
        let node = node.into();
        let watch = SettingsWatch::start(store.clone(), &node);
        Self {
            watch: Some(watch),
            ..Self::new(store, node)
        }
    }

    pub fn store(&self) -> &Arc<dyn Backend> {
        &self.store
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// The watches following the settings, for a [`Allocator::watching`] one.
    pub fn settings_watch(&self) -> Option<&SettingsWatch> {
        self.watch.as_ref()
    }

    /// The current view, to save for the next process.
    pub async fn state(&self) -> NodeState {
        self.state.lock().await.clone()
    }

    pub(crate) fn lock(&self) -> impl Future<Output = tokio::sync::MutexGuard<'_, NodeState>> {
        self.state.lock()
    }

    /// Assigns `num_v4` IPv4 and `num_v6` IPv6 addresses to the request's handle.
    /// All or nothing: on an error, what this call took is given back.
    pub async fn auto_assign(&self, request: &AssignRequest) -> Result<Assigned> {
        check_handle_id(&request.handle)?;
        let mut state = self.state.lock().await;
        let mut progress = Progress {
            got: Vec::new(),
            handle: HandleWrite::Unwritten,
            fresh: false,
        };
        match self.assign_rounds(&mut state, request, &mut progress).await {
            Ok(Some(existing)) => {
                self.give_back(&mut state, &progress.got).await?;
                Ok(Assigned {
                    addresses: existing,
                    reused: true,
                })
            }
            Ok(None) => Ok(Assigned {
                addresses: progress.got,
                reused: false,
            }),
            Err(error) => {
                // Blocks planned but not written left the cache: list them again.
                state.listed = false;
                let undone = async {
                    self.give_back(&mut state, &progress.got).await?;
                    if let HandleWrite::Created(counts) = &progress.handle {
                        add_to_handle(&*self.store, &request.handle, &negated(counts)).await?;
                    }
                    Result::<()>::Ok(())
                };
                if let Err(undo) = undone.await {
                    tracing::warn!(%undo, handle = %request.handle, "giving back a failed assignment; the controller reclaims what is left");
                }
                Err(error)
            }
        }
    }

    /// Returns `Some(addresses)` when an existing handle is reused.
    async fn assign_rounds(
        &self,
        state: &mut NodeState,
        request: &AssignRequest,
        progress: &mut Progress,
    ) -> Result<Option<Vec<Assignment>>> {
        for _ in 0..ROUNDS {
            if let Some(watched) = self.watch.as_ref().and_then(SettingsWatch::current) {
                state.settings = Some(watched);
                progress.fresh = true;
            }
            if state.settings.is_none() || !state.listed {
                self.refresh(state).await?;
                progress.fresh = true;
            }
            let short = shortfall(request, &progress.got);
            if short.is_empty() && progress.fresh {
                self.settle_handle(request, progress).await?;
                return Ok(None);
            }
            let mut plan = Vec::new();
            for &(family, count) in &short {
                let takes = plan_owned(state, request, family, count);
                let planned: usize = takes.iter().map(|t| t.count).sum();
                plan.extend(takes);
                if planned < count && progress.fresh {
                    plan.extend(self.grow(state, request, family, count - planned).await?);
                }
            }
            if plan.iter().map(|t| t.count).sum::<usize>() < short.iter().map(|s| s.1).sum()
                && !progress.fresh
            {
                // The cached view may be what is short: read everything again.
                self.refresh(state).await?;
                progress.fresh = true;
                continue;
            }
            let write = self.write_round(state, request, progress, plan);
            if let Some(existing) = write
                .instrument(tracing::debug_span!(target: "stage", "ipam.write"))
                .await?
            {
                return Ok(Some(existing));
            }
        }
        Err(IpamError::Contention {
            what: format!("assigning addresses to {}", request.handle),
            attempts: ROUNDS,
        })
    }

    /// Writes the planned blocks, and alongside them the handle (first round) and a
    /// re-read of the settings (when the view was cached).
    async fn write_round(
        &self,
        state: &mut NodeState,
        request: &AssignRequest,
        progress: &mut Progress,
        plan: Vec<Take>,
    ) -> Result<Option<Vec<Assignment>>> {
        let store = &*self.store;
        let node = state.node.clone();
        let planned = counts(
            plan.iter()
                .map(|t| (t.block.spec.cidr.to_string(), t.count)),
        );
        let holder = request.holder();
        let cached = (!progress.fresh).then(|| state.settings.clone());
        let verify = async {
            match cached {
                Some(Some(cached)) => Some(cached.reread(store, &node).await),
                Some(None) => Some(Settings::read(store, &node).await),
                None => None,
            }
        };
        let handle =
            (progress.handle == HandleWrite::Unwritten && !planned.is_empty()).then(|| {
                let spec = IPAMHandleSpec {
                    handle_id: request.handle.clone(),
                    block: planned.clone(),
                    deleted: false,
                };
                IPAMHandle::new(&request.handle, spec)
            });
        let written = together::write(store, &node, plan, &holder, handle);
        let (written, verified) = futures::join!(written, verify);
        let written = written?;

        let mut failure = None;
        for (name, borrowed, edited) in written.takes {
            match edited {
                Ok(Edited { block, value }) => {
                    if !borrowed {
                        state.record(&name, block);
                    }
                    progress.got.extend(value.unwrap_or_default());
                }
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        match written.handle {
            Some(Ok(())) => progress.handle = HandleWrite::Created(planned),
            Some(Err(DsError::AlreadyExists { .. })) => progress.handle = HandleWrite::Existed,
            Some(Err(e)) => failure = failure.or(Some(e.into())),
            None => {}
        }
        if let Some(settings) = verified {
            match settings {
                Ok(settings) => {
                    state.settings = Some(settings);
                    progress.fresh = true;
                    self.drop_ruled_out(state, request, progress).await?;
                }
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        if let Some(error) = failure {
            return Err(error);
        }
        if progress.handle == HandleWrite::Existed
            && request.existing_handle == ExistingHandle::Reuse
        {
            let mut existing = addresses_of(store, &request.handle, &node).await?;
            existing.retain(|a| !progress.got.contains(a));
            if !existing.is_empty() {
                return Ok(Some(existing));
            }
        }
        Ok(None)
    }

    /// Frees addresses taken on a cached view that fresh settings rule out.
    async fn drop_ruled_out(
        &self,
        state: &mut NodeState,
        request: &AssignRequest,
        progress: &mut Progress,
    ) -> Result<()> {
        let settings = state.settings.clone().expect("just read");
        let (keep, ruled_out): (Vec<Assignment>, Vec<Assignment>) =
            progress.got.drain(..).partition(|a| {
                let query = request.query(Family::of(a.ip), &settings);
                let pool = pool_holding(&settings.pools, &a.block.0);
                let reserved = Reserved::for_block(a.block.0, pool, &settings.reservations);
                pool.is_some_and(|p| query.check(p).is_ok())
                    && !crate::blocks::ordinal_of(a.block.0, a.ip)
                        .is_some_and(|o| reserved.contains(o))
            });
        progress.got = keep;
        if !ruled_out.is_empty() {
            tracing::info!(
                ?ruled_out,
                "settings changed under a cached view; replacing addresses"
            );
            self.give_back(state, &ruled_out).await?;
        }
        Ok(())
    }

    /// Claims a block for `count` more addresses of `family`, or borrows them.
    async fn grow(
        &self,
        state: &mut NodeState,
        request: &AssignRequest,
        family: Family,
        count: usize,
    ) -> Result<Vec<Take>> {
        let settings = state.settings.clone().expect("fresh before growing");
        let node = state.node.clone();
        let query = request.query(family, &settings);
        let usable = query.usable(&settings.pools);
        if usable.is_empty() {
            return Err(IpamError::NoPool {
                family,
                node,
                purpose: request.purpose.to_string(),
                why: query.explain(&settings.pools),
            });
        }
        let config = &settings.config;
        let owned = state
            .blocks
            .values()
            .filter(|b| Family::of_net(&b.spec.cidr.0) == family)
            .count();
        let mut waits = 0;
        loop {
            let no_block = if !config.auto_allocate_blocks {
                format!(
                    "node {node}'s {family} blocks are full and IPAMConfig autoAllocateBlocks is false"
                )
            } else if config.max_blocks_per_host > 0 && owned >= config.max_blocks_per_host as usize
            {
                format!(
                    "node {node} holds {owned} {family} blocks, the IPAMConfig maxBlocksPerHost, all full"
                )
            } else {
                let claim = claim_free_block(&*self.store, &node, &usable, &state.blocks);
                match claim
                    .instrument(tracing::debug_span!(target: "stage", "ipam.claim"))
                    .await?
                {
                    Some(block) => {
                        let name = block.metadata.name.clone();
                        state.record(&name, Some(block.clone()));
                        return Ok(vec![take_of(name, block, count, &settings, false)]);
                    }
                    None => format!("{} no free block for node {node}", pools_phrase(&usable)),
                }
            };
            if config.strict_affinity {
                return Err(IpamError::Exhausted(format!(
                    "{no_block} and strictAffinity forbids borrowing"
                )));
            }
            let borrowed = self.borrowable(&node, &usable, &settings, count).await?;
            if !borrowed.is_empty() {
                return Ok(borrowed);
            }
            // Another node's claim under way holds a block whose IPAMBlock is not
            // written yet: neither free nor borrowable, but not full either. Nodes
            // starting together meet this; the claim ends in moments.
            if waits < CLAIM_WAITS && self.claim_in_flight(&node, &usable).await? {
                let pause = rand::rng().random_range(CLAIM_PAUSE);
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                waits += 1;
                continue;
            }
            return Err(IpamError::Exhausted(format!(
                "{no_block} and no other node's block in them has a free address: \
                 add a pool or free addresses"
            )));
        }
    }

    /// Whether another node has a pending affinity (a claim under way, or left by
    /// a crash) for a block of `pools` that is not written yet.
    async fn claim_in_flight(&self, node: &str, pools: &[&api::resources::IPPool]) -> Result<bool> {
        let (affinities, blocks) = futures::try_join!(
            list_all::<BlockAffinity>(&*self.store),
            list_all::<IPAMBlock>(&*self.store)
        )?;
        Ok(affinities.iter().any(|a| {
            a.spec.node != node
                && a.spec.state == AffinityState::Pending
                && pools.iter().any(|p| p.spec.cidr.0.contains(&a.spec.cidr.0))
                && !blocks.iter().any(|b| b.spec.cidr == a.spec.cidr)
        }))
    }

    /// Other nodes' blocks (and blocks of no node) in `usable` pools with free
    /// addresses, in random order so borrowers spread out.
    async fn borrowable(
        &self,
        node: &str,
        usable: &[&api::resources::IPPool],
        settings: &Settings,
        mut count: usize,
    ) -> Result<Vec<Take>> {
        let mut blocks = list_all::<IPAMBlock>(&*self.store).await?;
        blocks.shuffle(&mut rand::rng());
        let mut takes = Vec::new();
        for block in blocks {
            if count == 0 {
                break;
            }
            let in_usable = usable
                .iter()
                .any(|p| p.spec.cidr.0.contains(&block.spec.cidr.0));
            if block.spec.affine_node() == Some(node) || !in_usable {
                continue;
            }
            let take = take_of(block.metadata.name.clone(), block, count, settings, true);
            if take.count > 0 {
                count -= take.count;
                takes.push(take);
            }
        }
        Ok(takes)
    }

    /// Re-reads settings and the node's blocks.
    pub(crate) async fn refresh(&self, state: &mut NodeState) -> Result<()> {
        let store = &*self.store;
        let reads = async {
            futures::try_join!(
                Settings::read(store, &state.node),
                node_blocks(store, &state.node)
            )
        };
        let (settings, blocks) = reads
            .instrument(tracing::debug_span!(target: "stage", "ipam.refresh"))
            .await?;
        state.settings = Some(settings);
        state.blocks = blocks;
        state.listed = true;
        Ok(())
    }

    /// Brings the handle's counts in line with what this call assigned.
    async fn settle_handle(&self, request: &AssignRequest, progress: &Progress) -> Result<()> {
        let got = counts(progress.got.iter().map(|a| (a.block.to_string(), 1)));
        let id = &request.handle;
        match &progress.handle {
            HandleWrite::Created(written) if *written == got => Ok(()),
            HandleWrite::Created(written) => {
                let mut delta = negated(written);
                for (block, n) in &got {
                    *delta.entry(block.clone()).or_default() += i64::from(*n);
                }
                add_to_handle(&*self.store, id, &delta).await
            }
            HandleWrite::Existed if request.existing_handle == ExistingHandle::Reuse => {
                // It held nothing (checked): its counts are stale, ours are the truth.
                edit_handle(&*self.store, id, |current| {
                    let mut spec = current.cloned()?;
                    spec.block = got.clone();
                    Some(spec)
                })
                .await
            }
            HandleWrite::Existed => {
                let delta = got
                    .iter()
                    .map(|(b, n)| (b.clone(), i64::from(*n)))
                    .collect();
                add_to_handle(&*self.store, id, &delta).await
            }
            HandleWrite::Unwritten => Ok(()),
        }
    }

    /// Frees addresses this call took (matched by sequence number, so nothing
    /// reallocated since is touched).
    async fn give_back(&self, state: &mut NodeState, addresses: &[Assignment]) -> Result<()> {
        let mut by_block: BTreeMap<String, Vec<&Assignment>> = BTreeMap::new();
        for a in addresses {
            by_block
                .entry(api::resources::cidr_name(&a.block))
                .or_default()
                .push(a);
        }
        let store = &*self.store;
        let edits = join_all(by_block.iter().map(|(name, ours)| {
            let cached = state.blocks.get(name).cloned();
            cas::edit_block(store, name, cached, move |spec| {
                let freed = spec.release_where(&|a| {
                    ours.iter()
                        .any(|o| o.ip == a.ip && o.sequence == a.sequence)
                });
                release_edit(spec, freed)
            })
        }))
        .await;
        for (name, edited) in by_block.keys().zip(edits) {
            state.record(name, edited?.block);
        }
        Ok(())
    }
}

/// The write that follows freeing `freed` from a block: none, the table, or (an
/// emptied block of no node) the block's deletion, as Calico does.
pub(crate) fn release_edit<T>(spec: &api::resources::IPAMBlockSpec, freed: Vec<T>) -> Edit<Vec<T>> {
    if freed.is_empty() {
        Edit::Keep(freed)
    } else if spec.is_empty() && spec.affinity.is_none() {
        Edit::Delete(freed)
    } else {
        Edit::Write(freed)
    }
}

/// Per family, how many addresses are still to be found.
fn shortfall(request: &AssignRequest, got: &[Assignment]) -> Vec<(Family, usize)> {
    [Family::V4, Family::V6]
        .into_iter()
        .filter_map(|family| {
            let have = got.iter().filter(|a| Family::of(a.ip) == family).count();
            let short = request.wanted(family).saturating_sub(have);
            (short > 0).then_some((family, short))
        })
        .collect()
}

/// "pool 10.0.0.0/24 has" or "pools 10.0.0.0/24, 10.1.0.0/24 have".
fn pools_phrase(pools: &[&api::resources::IPPool]) -> String {
    let cidrs: Vec<String> = pools.iter().map(|p| p.spec.cidr.to_string()).collect();
    match cidrs.as_slice() {
        [one] => format!("pool {one} has"),
        many => format!("pools {} have", many.join(", ")),
    }
}

fn counts(entries: impl Iterator<Item = (String, usize)>) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for (block, n) in entries.filter(|(_, n)| *n > 0) {
        *counts.entry(block).or_insert(0) += n as u32;
    }
    counts
}

fn negated(counts: &BTreeMap<String, u32>) -> BTreeMap<String, i64> {
    counts
        .iter()
        .map(|(b, n)| (b.clone(), -i64::from(*n)))
        .collect()
}
