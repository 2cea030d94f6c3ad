//! The Loc-RIB: every path to every prefix (the Adj-RIBs-In after import policy),
//! best first, in numbered slots. What changed is journalled by slot number, so
//! that the consumers (each peer's Adj-RIB-Out, the owner's best-path stream) can
//! follow the table with a bit per prefix instead of a copy of it.
//!
//! A slot costs 48 bytes: the prefix, and one path inline (numbers for its
//! attribute set, source and next hop); a prefix with several paths
//! keeps them in a vector. The index from prefix to slot holds slot numbers and
//! hashes (8 bytes).
//!
//! Over 700 lines on purpose: the slots, the index, the paths and the journal keep
//! their invariants together (a slot is indexed exactly while it has paths; every
//! change of a slot's best paths is journalled), and splitting them across files
//! would hide that. The tests are in `table/tests.rs`.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Arc;

use hashbrown::HashTable;
use ipnet::IpNet;

use super::decision::{compare, equal_cost};
use super::numbered::{Address, AttributeSets, NextHops, Shared};
use super::path::{Candidate, Path, Source};
use crate::codec::Attributes;

/// A prefix's place in the table; reused once the prefix has no paths.
pub type SlotId = u32;
/// Where paths come from: a peer, or this speaker ([`LOCAL`]).
pub type SourceId = u32;
/// The source of the routes this speaker originates.
pub const LOCAL: SourceId = 0;

/// A change of the best paths to one prefix, for the FIB and for export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The best path and the paths equal to it (ECMP), best first.
    Best {
        prefix: IpNet,
        paths: Vec<Path>,
    },
    Withdrawn {
        prefix: IpNet,
    },
}

/// What the journal records; see [`Rib::drain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Touched {
    /// The best (ECMP) set of the prefix in this slot changed.
    Best(SlotId),
    /// Only paths outside the best set changed (for peers sent every path).
    Paths(SlotId),
    /// The prefix lost its last path and its slot was freed; the slot may already
    /// hold another prefix when this is read.
    Gone(SlotId, IpNet),
}

const HAS_PATH_ID: u8 = 1;
const STALE: u8 = 2;
/// Refused by the owner's hook: kept, never selected (see [`Path::eligible`]).
const INELIGIBLE: u8 = 4;
/// Held since its peer began a route refresh (RFC 7313 BoRR) and not announced
/// again since: removed when the refresh ends. No bearing on selection, so the
/// refresh moves no traffic.
const REFRESHING: u8 = 8;

/// A path as the table stores it: 20 bytes of numbers.
#[derive(Debug, Clone)]
struct Stored {
    /// In the table's attribute sets.
    attributes: u32,
    source: SourceId,
    next_hop: u32,
    path_id: u32,
    flags: u8,
}

impl Stored {
    fn path_id(&self) -> Option<u32> {
        (self.flags & HAS_PATH_ID != 0).then_some(self.path_id)
    }

    fn stale(&self) -> bool {
        self.flags & STALE != 0
    }

    fn eligible(&self) -> bool {
        self.flags & INELIGIBLE == 0
    }

    /// The flags that matter to selection and to the peers told of the path.
    fn visible_flags(&self) -> u8 {
        self.flags & !REFRESHING
    }

    fn key(&self) -> (SourceId, Option<u32>) {
        (self.source, self.path_id())
    }

    /// Equal as a forwarding choice: same source, id, next hop, attributes, staleness.
    fn same(&self, other: &Stored) -> bool {
        self.key() == other.key()
            && self.next_hop == other.next_hop
            && self.visible_flags() == other.visible_flags()
            && self.attributes == other.attributes
    }
}

/// The paths of one prefix, best first, the first one inline.
#[derive(Debug, Clone)]
// Boxed to keep a slot at 48 bytes: few prefixes have several paths.
#[allow(clippy::box_collection)]
enum Paths {
    /// Only while the slot is free.
    Empty,
    One(Stored),
    Many(Box<Vec<Stored>>),
}

impl Paths {
    fn as_slice(&self) -> &[Stored] {
        match self {
            Paths::Empty => &[],
            Paths::One(one) => std::slice::from_ref(one),
            Paths::Many(many) => many,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [Stored] {
        match self {
            Paths::Empty => &mut [],
            Paths::One(one) => std::slice::from_mut(one),
            Paths::Many(many) => many,
        }
    }

    /// Edits the paths as a vector, and folds them back inline when one is left.
    fn edit<R>(&mut self, edit: impl FnOnce(&mut Vec<Stored>) -> R) -> R {
        let mut paths = match std::mem::replace(self, Paths::Empty) {
            Paths::Empty => Vec::new(),
            Paths::One(one) => vec![one],
            Paths::Many(many) => *many,
        };
        let result = edit(&mut paths);
        *self = match paths.len() {
            0 => Paths::Empty,
            1 => Paths::One(paths.pop().expect("one path")),
            _ => Paths::Many(Box::new(paths)),
        };
        result
    }
}

#[derive(Debug)]
struct Slot {
    prefix: IpNet,
    /// Empty only while free.
    paths: Paths,
}

#[derive(Debug)]
struct SourceEntry {
    info: Arc<Source>,
    /// How many paths the table holds from this source.
    paths: usize,
}

#[derive(Debug)]
pub struct Rib {
    index: HashTable<Entry>,
    /// Per table, so that prefixes a peer picks cannot collide on purpose.
    seed: u64,
    slots: Vec<Slot>,
    free: Vec<SlotId>,
    sources: Vec<Option<SourceEntry>>,
    free_sources: Vec<SourceId>,
    next_hops: NextHops,
    sets: AttributeSets,
    journal: Vec<Touched>,
}

/// A path in the table, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct PathRef<'a> {
    stored: &'a Stored,
    source: &'a Arc<Source>,
    attributes: &'a Arc<Attributes>,
    next_hop: IpAddr,
}

impl<'a> PathRef<'a> {
    pub fn attributes_arc(&self) -> &'a Arc<Attributes> {
        self.attributes
    }

    pub fn source_arc(&self) -> &'a Arc<Source> {
        self.source
    }

    pub fn source_id(&self) -> SourceId {
        self.stored.source
    }

    /// A number for the next hop, equal for equal next hops (for grouping).
    pub fn next_hop_id(&self) -> u32 {
        self.stored.next_hop
    }

    pub fn to_path(&self) -> Path {
        Path {
            source: Arc::clone(self.source),
            attributes: Arc::clone(self.attributes),
            next_hop: self.next_hop,
            path_id: self.stored.path_id(),
            stale: self.stored.stale(),
            eligible: self.stored.eligible(),
        }
    }
}

impl Candidate for PathRef<'_> {
    fn source(&self) -> &Source {
        self.source
    }

    fn attributes(&self) -> &Attributes {
        self.attributes
    }

    fn next_hop(&self) -> IpAddr {
        self.next_hop
    }

    fn path_id(&self) -> Option<u32> {
        self.stored.path_id()
    }

    fn stale(&self) -> bool {
        self.stored.stale()
    }

    fn eligible(&self) -> bool {
        self.stored.eligible()
    }
}

/// The sources and next hops paths refer to, for the decision process.
#[derive(Clone, Copy)]
struct Context<'a> {
    sources: &'a [Option<SourceEntry>],
    next_hops: &'a NextHops,
    sets: &'a AttributeSets,
}

impl<'a> Context<'a> {
    fn view(self, stored: &'a Stored) -> PathRef<'a> {
        let source = &self.sources[stored.source as usize]
            .as_ref()
            .expect("paths refer to live sources")
            .info;
        PathRef {
            stored,
            source,
            attributes: &self.sets.get(stored.attributes).0,
            next_hop: *self.next_hops.get(stored.next_hop),
        }
    }

    fn compare(self, a: &'a Stored, b: &'a Stored) -> std::cmp::Ordering {
        compare(&self.view(a), &self.view(b))
    }

    /// How many paths, from the first, form the best (ECMP) set: none when even
    /// the first is ineligible.
    fn ecmp_len(self, paths: &'a [Stored]) -> usize {
        let Some(best) = paths.first().filter(|p| p.eligible()) else {
            return 0;
        };
        let best = self.view(best);
        paths
            .iter()
            .take_while(|p| equal_cost(&best, &self.view(p)))
            .count()
    }
}

impl Rib {
    /// A table whose [`LOCAL`] source is `local` (this speaker).
    pub fn new(local: Arc<Source>) -> Self {
        Self {
            index: HashTable::new(),
            seed: std::collections::hash_map::RandomState::new().hash_one(0u8),
            slots: Vec::new(),
            free: Vec::new(),
            sources: vec![Some(SourceEntry {
                info: local,
                paths: 0,
            })],
            free_sources: Vec::new(),
            next_hops: NextHops::default(),
            sets: AttributeSets::default(),
            journal: Vec::new(),
        }
    }

    /// Registers a source of paths (a peer).
    pub fn add_source(&mut self, info: Arc<Source>) -> SourceId {
        let entry = Some(SourceEntry { info, paths: 0 });
        match self.free_sources.pop() {
            Some(id) => {
                self.sources[id as usize] = entry;
                id
            }
            None => {
                self.sources.push(entry);
                SourceId::try_from(self.sources.len() - 1).expect("fewer than 2^32 sources")
            }
        }
    }

    /// Replaces what is known of a source (its session came up again), keeping its
    /// paths.
    pub fn set_source(&mut self, id: SourceId, info: Arc<Source>) {
        if let Some(entry) = self.sources.get_mut(id as usize).and_then(Option::as_mut) {
            entry.info = info;
        }
    }

    pub fn source(&self, id: SourceId) -> Option<&Arc<Source>> {
        self.sources.get(id as usize)?.as_ref().map(|e| &e.info)
    }

    /// Removes the source and every path from it.
    pub fn remove_source(&mut self, id: SourceId) {
        if id == LOCAL {
            return;
        }
        self.remove_source_paths(id);
        self.sources[id as usize] = None;
        self.free_sources.push(id);
    }

    /// Removes every path from `id` (its session went down without graceful
    /// restart); the source stays registered.
    pub fn remove_source_paths(&mut self, id: SourceId) {
        if self.path_count(id) > 0 {
            self.retain_paths(id, |_, _| false);
        }
    }

    /// How many paths the table holds from `source`.
    pub fn path_count(&self, source: SourceId) -> usize {
        self.sources
            .get(source as usize)
            .and_then(Option::as_ref)
            .map_or(0, |e| e.paths)
    }

    /// Prefixes with at least one path.
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One more than the highest slot number in use: the size consumers' bitmaps need.
    pub fn slot_bound(&self) -> usize {
        self.slots.len()
    }

    /// Adds or replaces the path from `source` with `path_id`; an ineligible one
    /// is kept but never selected.
    pub fn announce(
        &mut self,
        prefix: IpNet,
        source: SourceId,
        attributes: &Arc<Attributes>,
        next_hop: IpAddr,
        path_id: Option<u32>,
        eligible: bool,
    ) {
        let next_hop = self.next_hops.acquire(&next_hop);
        let attributes = self.sets.acquire_by(&Address(Arc::as_ptr(attributes)), || {
            Shared(Arc::clone(attributes))
        });
        let stored = Stored {
            attributes,
            source,
            next_hop,
            path_id: path_id.unwrap_or(0),
            flags: if path_id.is_some() { HAS_PATH_ID } else { 0 }
                | if eligible { 0 } else { INELIGIBLE },
        };
        let hash = self.hash(&prefix);
        let found = self.lookup(hash, &prefix);
        let Some(slot) = found else {
            let slot = self.allocate(hash, prefix, stored);
            self.count(source, 1);
            self.journal.push(Touched::Best(slot));
            return;
        };
        // The common case, a source replacing its only path, without a vector.
        if let Paths::One(existing) = &mut self.slots[slot as usize].paths
            && existing.key() == stored.key()
        {
            let changed = !existing.same(&stored);
            let old = std::mem::replace(existing, stored);
            self.next_hops.release(old.next_hop);
            self.sets.release(old.attributes);
            if changed {
                self.journal.push(Touched::Best(slot));
            }
            return;
        }
        let context = Context {
            sources: &self.sources,
            next_hops: &self.next_hops,
            sets: &self.sets,
        };
        let paths = &mut self.slots[slot as usize].paths;
        let (replaced, changed) = paths.edit(|paths| {
            let before = snapshot(context, paths);
            let key = stored.key();
            let replaced = paths
                .iter()
                .position(|p| p.key() == key)
                .map(|at| paths.remove(at));
            let at = paths
                .binary_search_by(|p| context.compare(p, &stored))
                .unwrap_or_else(|at| at);
            paths.insert(at, stored);
            let changed = best_changed(context, &before, paths);
            (replaced, changed)
        });
        match replaced {
            Some(old) => {
                self.next_hops.release(old.next_hop);
                self.sets.release(old.attributes);
            }
            None => self.count(source, 1),
        }
        self.journal.push(if changed {
            Touched::Best(slot)
        } else {
            Touched::Paths(slot)
        });
    }

    /// Removes the path of `source` with `path_id`, if there is one.
    pub fn withdraw(&mut self, prefix: IpNet, source: SourceId, path_id: Option<u32>) {
        let Some(slot) = self.find(&prefix) else {
            return;
        };
        if let Paths::One(only) = &self.slots[slot as usize].paths {
            if only.key() == (source, path_id) {
                let (next_hop, set, source) = (only.next_hop, only.attributes, only.source);
                self.next_hops.release(next_hop);
                self.sets.release(set);
                self.count(source, -1);
                self.release(slot);
                self.journal.push(Touched::Gone(slot, prefix));
            }
            return;
        }
        {
            self.edit_slot(slot, |_, paths| {
                paths
                    .iter()
                    .position(|p| p.key() == (source, path_id))
                    .map(|at| paths.remove(at))
                    .into_iter()
                    .collect()
            });
        }
    }

    /// Marks every path of `source` stale: kept for forwarding, but losing to any
    /// fresh path, until it is announced again or [`Rib::sweep_stale`] runs.
    pub fn mark_stale(&mut self, source: SourceId) {
        for slot in 0..self.slots.len() {
            let slot = slot as SlotId;
            if !self.holds(slot, source) {
                continue;
            }
            self.edit_slot(slot, |context, paths| {
                for path in paths.iter_mut().filter(|p| p.source == source) {
                    path.flags |= STALE;
                }
                paths.sort_by(|a, b| context.compare(a, b));
                Vec::new()
            });
            // For peers sent every path, when the best set stayed as it was.
            self.journal.push(Touched::Paths(slot as SlotId));
        }
    }

    /// Removes `source`'s paths still stale (End-of-RIB arrived or the restart time
    /// ran out).
    pub fn sweep_stale(&mut self, source: SourceId) {
        if self.path_count(source) > 0 {
            self.retain_paths(source, |_, p| !p.stale());
        }
    }

    /// `source` begins a route refresh of one family (RFC 7313 BoRR): each of
    /// its paths there is marked, until announced again. Selection is untouched.
    pub fn begin_refresh(&mut self, source: SourceId, ipv4: bool) {
        for entry in &mut self.slots {
            if entry.prefix.addr().is_ipv4() != ipv4 {
                continue;
            }
            for path in entry.paths.as_mut_slice() {
                if path.source == source {
                    path.flags |= REFRESHING;
                }
            }
        }
    }

    /// `source` ended its route refresh of one family (RFC 7313 EoRR): its paths
    /// there not announced again since the beginning are removed.
    pub fn end_refresh(&mut self, source: SourceId, ipv4: bool) {
        if self.path_count(source) > 0 {
            self.retain_paths(source, |prefix, p| {
                prefix.addr().is_ipv4() != ipv4 || p.flags & REFRESHING == 0
            });
        }
    }

    /// Asks `judge` again, for every learned path, whether it may be selected,
    /// and reorders the prefixes whose answer changed (the owner's view behind
    /// its import hook changed).
    pub fn revalidate(&mut self, mut judge: impl FnMut(IpNet, PathRef<'_>) -> bool) {
        let mut verdicts = Vec::new();
        for slot in 0..self.slots.len() {
            let context = self.context();
            let entry = &self.slots[slot];
            verdicts.clear();
            verdicts.extend(
                entry
                    .paths
                    .as_slice()
                    .iter()
                    .map(|p| p.source == LOCAL || judge(entry.prefix, context.view(p))),
            );
            let paths = entry.paths.as_slice();
            if paths.iter().zip(&verdicts).all(|(p, v)| p.eligible() == *v) {
                continue;
            }
            self.edit_slot(slot as SlotId, |context, paths| {
                for (path, eligible) in paths.iter_mut().zip(&verdicts) {
                    path.flags =
                        (path.flags & !INELIGIBLE) | if *eligible { 0 } else { INELIGIBLE };
                }
                paths.sort_by(|a, b| context.compare(a, b));
                Vec::new()
            });
        }
    }

    /// The changes since the last call, in order.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Touched> {
        self.journal.drain(..)
    }

    /// The prefix in `slot`, if it is in use.
    pub fn prefix_at(&self, slot: SlotId) -> Option<IpNet> {
        let slot = self.slots.get(slot as usize)?;
        (!slot.paths.as_slice().is_empty()).then_some(slot.prefix)
    }

    /// The best path in `slot` and those equal to it, best first.
    pub fn best_at(&self, slot: SlotId) -> impl Iterator<Item = PathRef<'_>> {
        let context = self.context();
        let paths = self
            .slots
            .get(slot as usize)
            .map_or(&[][..], |s| s.paths.as_slice());
        paths[..context.ecmp_len(paths)]
            .iter()
            .map(move |p| context.view(p))
    }

    /// Every path in `slot`, best first.
    pub fn paths_at(&self, slot: SlotId) -> impl Iterator<Item = PathRef<'_>> {
        let context = self.context();
        self.slots
            .get(slot as usize)
            .map_or(&[][..], |s| s.paths.as_slice())
            .iter()
            .map(move |p| context.view(p))
    }

    pub fn slot_of(&self, prefix: &IpNet) -> Option<SlotId> {
        self.find(prefix)
    }

    /// The best path to `prefix` and those equal to it.
    pub fn best(&self, prefix: &IpNet) -> Option<Vec<Path>> {
        let slot = self.find(prefix)?;
        Some(self.best_at(slot).map(|p| p.to_path()).collect())
    }

    /// Every path to `prefix`, best first.
    pub fn paths(&self, prefix: &IpNet) -> Vec<Path> {
        self.find(prefix).map_or_else(Vec::new, |slot| {
            self.paths_at(slot).map(|p| p.to_path()).collect()
        })
    }

    /// Every prefix with at least one path, with its slot.
    pub fn prefixes(&self) -> impl Iterator<Item = (SlotId, IpNet)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.paths.as_slice().is_empty())
            .map(|(i, s)| (i as SlotId, s.prefix))
    }

    fn context(&self) -> Context<'_> {
        Context {
            sources: &self.sources,
            next_hops: &self.next_hops,
            sets: &self.sets,
        }
    }

    fn holds(&self, slot: SlotId, source: SourceId) -> bool {
        self.slots[slot as usize]
            .paths
            .as_slice()
            .iter()
            .any(|p| p.source == source)
    }

    /// Keeps only the paths of `source` for which `keep` holds, in every slot.
    fn retain_paths(&mut self, source: SourceId, keep: impl Fn(IpNet, &Stored) -> bool) {
        for slot in 0..self.slots.len() {
            let slot = slot as SlotId;
            if !self.holds(slot, source) {
                continue;
            }
            let prefix = self.slots[slot as usize].prefix;
            self.edit_slot(slot, |_, paths| {
                let mut removed = Vec::new();
                let mut i = 0;
                while i < paths.len() {
                    if paths[i].source == source && !keep(prefix, &paths[i]) {
                        removed.push(paths.remove(i));
                    } else {
                        i += 1;
                    }
                }
                removed
            });
        }
    }

    /// Applies `edit` (which returns the paths it removed) to a slot in use,
    /// journals a change of its best set, and frees it when it is left empty.
    fn edit_slot(
        &mut self,
        slot: SlotId,
        edit: impl FnOnce(Context<'_>, &mut Vec<Stored>) -> Vec<Stored>,
    ) {
        let context = Context {
            sources: &self.sources,
            next_hops: &self.next_hops,
            sets: &self.sets,
        };
        let entry = &mut self.slots[slot as usize];
        let (removed, changed, empty) = entry.paths.edit(|paths| {
            let before = snapshot(context, paths);
            let removed = edit(context, paths);
            let changed = best_changed(context, &before, paths);
            (removed, changed, paths.is_empty())
        });
        for path in &removed {
            self.next_hops.release(path.next_hop);
            self.sets.release(path.attributes);
            self.count(path.source, -1);
        }
        if empty {
            let prefix = self.slots[slot as usize].prefix;
            self.release(slot);
            self.journal.push(Touched::Gone(slot, prefix));
        } else if changed {
            self.journal.push(Touched::Best(slot));
        } else if !removed.is_empty() {
            self.journal.push(Touched::Paths(slot));
        }
    }

    fn count(&mut self, source: SourceId, delta: isize) {
        if let Some(entry) = self
            .sources
            .get_mut(source as usize)
            .and_then(Option::as_mut)
        {
            entry.paths = entry.paths.saturating_add_signed(delta);
        }
    }

    fn hash(&self, prefix: &IpNet) -> u32 {
        prefix_hash(self.seed, prefix)
    }

    fn find(&self, prefix: &IpNet) -> Option<SlotId> {
        self.lookup(self.hash(prefix), prefix)
    }

    fn lookup(&self, hash: u32, prefix: &IpNet) -> Option<SlotId> {
        let slots = &self.slots;
        self.index
            .find(spread(hash), |e| {
                e.hash == hash && slots[e.slot as usize].prefix == *prefix
            })
            .map(|e| e.slot)
    }

    fn allocate(&mut self, hash: u32, prefix: IpNet, path: Stored) -> SlotId {
        let slot = Slot {
            prefix,
            paths: Paths::One(path),
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = slot;
                id
            }
            None => {
                self.slots.push(slot);
                SlotId::try_from(self.slots.len() - 1).expect("fewer than 2^32 prefixes")
            }
        };
        let entry = Entry { slot: id, hash };
        self.index
            .insert_unique(spread(hash), entry, |e| spread(e.hash));
        id
    }

    fn release(&mut self, slot: SlotId) {
        let prefix = self.slots[slot as usize].prefix;
        let hash = self.hash(&prefix);
        if let Ok(entry) = self.index.find_entry(spread(hash), |e| e.slot == slot) {
            entry.remove();
        }
        self.slots[slot as usize].paths = Paths::Empty;
        self.free.push(slot);
    }
}

/// An index entry: the slot and its prefix's hash, so that growing the index
/// never reads the slots (it did, and a million-route load spent a sixth of its
/// time there).
#[derive(Debug, Clone, Copy)]
struct Entry {
    slot: SlotId,
    hash: u32,
}

/// The 64-bit hash the index wants, from the 32 bits kept per entry.
fn spread(hash: u32) -> u64 {
    u64::from(hash).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// A prefix's hash: its address and length folded into two words and mixed
/// (the derived `Hash` of `IpNet` feeds the hasher field by field, which showed in
/// profiles of table loads).
fn prefix_hash(seed: u64, prefix: &IpNet) -> u32 {
    let (high, low) = match prefix {
        IpNet::V4(v4) => (
            0,
            (u64::from(u32::from(v4.addr())) << 8) | u64::from(v4.prefix_len()),
        ),
        IpNet::V6(v6) => {
            let bits = u128::from(v6.addr());
            (
                (bits >> 64) as u64 ^ u64::from(v6.prefix_len()) << 56 | 1,
                bits as u64,
            )
        }
    };
    let fold = |x: u64, y: u64| {
        let product = u128::from(x) * u128::from(y);
        (product as u64) ^ ((product >> 64) as u64)
    };
    let first = fold(low ^ seed, 0x2d35_8dcc_aa6c_78a5);
    let full = fold(first ^ high, 0x8bb8_4b93_962e_acc9 ^ seed.rotate_left(32));
    (full ^ (full >> 32)) as u32
}

/// The best set before an edit, as the identity of each path (the attribute
/// set numbers stay valid: the edit keeps or returns every path it removes).
type Snapshot = Vec<(SourceId, Option<u32>, u32, u8, u32)>;

fn snapshot(context: Context<'_>, paths: &[Stored]) -> Snapshot {
    paths[..context.ecmp_len(paths)]
        .iter()
        .map(|p| {
            (
                p.source,
                p.path_id(),
                p.next_hop,
                p.visible_flags(),
                p.attributes,
            )
        })
        .collect()
}

fn best_changed(context: Context<'_>, before: &Snapshot, paths: &[Stored]) -> bool {
    let after = &paths[..context.ecmp_len(paths)];
    before.len() != after.len()
        || before.iter().zip(after).any(|(b, p)| {
            *b != (
                p.source,
                p.path_id(),
                p.next_hop,
                p.visible_flags(),
                p.attributes,
            )
        })
}

#[cfg(test)]
mod tests;
