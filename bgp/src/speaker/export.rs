//! Bringing one peer's Adj-RIB-Out up to date from its [`Outbox`]: a batch of
//! changed slots is looked up in the RIB, each best path exported once per
//! distinct (attributes, source, next hop, filter term), routes sharing the result
//! packed into as few UPDATEs as the session allows, and the chunk queued for the
//! session only while its queue has room.

use hashbrown::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::BytesMut;
use ipnet::IpNet;

use crate::codec::{Afi, Attributes, NextHop, Nlri};
use crate::rib::filter::Decision;
use crate::rib::{Candidate, PathRef, Rib, SlotId, Source, export};
use crate::session::Outgoing;

use super::config::{PeerConfig, Policy};
use super::hooks::{Hooks, Verdict};
use super::peer::Up;

/// Slots looked at per chunk: about 100 KB of /32 announcements.
const BATCH: usize = 16 * 1024;

/// What one path becomes towards the peer; `None`: not sent.
type Exported = Option<(Arc<Attributes>, IpAddr)>;

/// Where the first path of `slot` comes from, and the filter term it matched:
/// equal keys export equally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    /// The address of the path's shared attributes, which the RIB holds.
    attributes: usize,
    source: u32,
    next_hop: u32,
    decision: Decision,
    ipv4: bool,
}

/// A path with the attributes an export filter gave it.
struct Rewritten<'a> {
    path: PathRef<'a>,
    attributes: &'a Attributes,
}

impl Candidate for Rewritten<'_> {
    fn source(&self) -> &Source {
        self.path.source()
    }

    fn attributes(&self) -> &Attributes {
        self.attributes
    }

    fn next_hop(&self) -> IpAddr {
        self.path.next_hop()
    }

    fn path_id(&self) -> Option<u32> {
        self.path.path_id()
    }

    fn stale(&self) -> bool {
        self.path.stale()
    }
}

/// Routes sent together: the same exported attributes, next hop and family.
type GroupKey = (usize, IpAddr, Afi);

/// What decides how a path is exported to a peer, apart from the peer's own
/// address (split horizon is checked first): peers of one class share the
/// export computation of each distinct path within a round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExportClass {
    rules: crate::rib::Speaker,
    internal: bool,
    rr_client: bool,
    remote_as: u32,
    local: IpAddr,
    next_hop: crate::rib::NextHopMode,
    extended_next_hop: bool,
    policy: Option<Policy>,
    filter: Option<crate::rib::Filter>,
}

impl ExportClass {
    pub fn of(config: &PeerConfig, up: &Up) -> Self {
        Self {
            rules: up.rules.clone(),
            internal: up.source.internal,
            rr_client: up.source.rr_client,
            remote_as: up.source.remote_as,
            local: up.local,
            next_hop: config.next_hop,
            extended_next_hop: up.negotiated.context.extended_next_hop,
            policy: config.export,
            filter: config.export_filter.clone(),
        }
    }
}

/// Scratch kept across calls to avoid allocating per chunk; the memo lives for
/// one round of flushes (while the RIB does not change).
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    slots: Vec<SlotId>,
    memo: HashMap<(u32, Key), Exported>,
    groups: HashMap<GroupKey, (Arc<Attributes>, Vec<Nlri>)>,
    withdraw: Vec<Nlri>,
}

impl Scratch {
    /// Forgets the memo: the RIB may change before the next round.
    pub fn end_round(&mut self) {
        self.memo.clear();
    }
}

/// Queues chunks of UPDATEs for `up` until its outbox is clean or its session's
/// queue is full. Returns true when the outbox is clean.
pub(crate) fn flush(
    rib: &Rib,
    config: &PeerConfig,
    up: &mut Up,
    hooks: &Hooks,
    scratch: &mut Scratch,
) -> bool {
    while !up.outbox.is_clean() {
        if !room(up) {
            return false;
        }
        let (bytes, updates) = chunk(rib, config, up, hooks, scratch);
        if bytes.is_empty() {
            continue;
        }
        let outgoing = Outgoing {
            epoch: up.epoch,
            bytes: bytes.freeze(),
            updates,
        };
        if up.updates.try_send(outgoing).is_err() {
            // The session is gone; its Down event is on the way.
            return false;
        }
    }
    true
}

/// True when the session's queue takes another chunk now; otherwise asks the
/// driver to say when it does.
pub(crate) fn room(up: &Up) -> bool {
    if up.updates.capacity() > 0 {
        return true;
    }
    up.stats.blocked.store(true, Ordering::Relaxed);
    // The driver may have taken a chunk before it could see the flag.
    up.updates.capacity() > 0
}

/// Encodes the next batch of the outbox: withdrawals first, then changed slots.
fn chunk(
    rib: &Rib,
    config: &PeerConfig,
    up: &mut Up,
    hooks: &Hooks,
    scratch: &mut Scratch,
) -> (BytesMut, u64) {
    scratch.groups.clear();
    scratch.withdraw.clear();
    let gone = up.outbox.withdrawals.len().min(BATCH);
    scratch
        .withdraw
        .extend(up.outbox.withdrawals.drain(..gone).map(Nlri::new));
    let mut slots = std::mem::take(&mut scratch.slots);
    up.outbox.take(BATCH, &mut slots);
    for &slot in &slots {
        let Some(prefix) = rib.prefix_at(slot) else {
            continue;
        };
        let wanted = rib
            .best_at(slot)
            .next()
            .and_then(|best| exported(config, up, hooks, scratch, prefix, best));
        match wanted {
            Some((attributes, next_hop)) => {
                up.outbox.set_advertised(slot, true);
                let nlri = Nlri::new(prefix);
                let key = (Arc::as_ptr(&attributes) as usize, next_hop, nlri.afi());
                scratch
                    .groups
                    .entry(key)
                    .or_insert_with(|| (attributes, Vec::new()))
                    .1
                    .push(nlri);
            }
            None => {
                if up.outbox.set_advertised(slot, false) {
                    scratch.withdraw.push(Nlri::new(prefix));
                }
            }
        }
    }
    scratch.slots = slots;
    let mut out = BytesMut::new();
    let mut updates = 0;
    match up.packer.withdraw(&scratch.withdraw, &mut out) {
        Ok(n) => updates += n,
        Err(error) => tracing::error!(peer = %config.address, %error, "cannot encode withdrawals"),
    }
    for (&(_, next_hop, _), (attributes, nlri)) in &scratch.groups {
        let next_hop = match next_hop {
            IpAddr::V4(v4) => NextHop::V4(v4),
            IpAddr::V6(global) => NextHop::V6 {
                global,
                link_local: None,
            },
        };
        match up.packer.announce(attributes, next_hop, nlri, &mut out) {
            Ok(n) => updates += n,
            Err(error) => {
                tracing::error!(peer = %config.address, %error, "cannot encode an announcement")
            }
        }
    }
    (out, updates as u64)
}

/// What `best` becomes towards the peer, computed once per key and chunk.
fn exported(
    config: &PeerConfig,
    up: &Up,
    hooks: &Hooks,
    scratch: &mut Scratch,
    prefix: IpNet,
    best: PathRef<'_>,
) -> Exported {
    // Never back to where it came from (RFC 4271 9.1.3; RFC 4456 8 for clients).
    if best.source().peer.is_some() && best.source().peer == up.source.peer {
        return None;
    }
    let decision = match &config.export_filter {
        Some(filter) => filter.decide(&prefix, best.attributes()),
        None => match PeerConfig::effective(config.export, up.source.internal) {
            Policy::Accept => Decision::Accept { term: None },
            Policy::Reject => Decision::Reject,
        },
    };
    if decision == Decision::Reject {
        return None;
    }
    let key = Key {
        attributes: Arc::as_ptr(best.attributes_arc()) as usize,
        source: best.source_id(),
        next_hop: best.next_hop_id(),
        decision,
        ipv4: prefix.addr().is_ipv4(),
    };
    let family = prefix.addr().is_ipv4();
    let result = match scratch.memo.get(&(up.class, key)) {
        Some(result) => result.clone(),
        None => {
            let result = export_path(config, up, best, decision, family);
            scratch.memo.insert((up.class, key), result.clone());
            result
        }
    };
    let (attributes, next_hop) = result?;
    let Some(hook) = &hooks.export else {
        return Some((attributes, next_hop));
    };
    match hook.export(&up.source, &prefix, &attributes) {
        Verdict::Accept => Some((attributes, next_hop)),
        Verdict::Reject => None,
        Verdict::Replace(replaced) => Some((Arc::new(replaced), next_hop)),
    }
}

fn export_path(
    config: &PeerConfig,
    up: &Up,
    best: PathRef<'_>,
    decision: Decision,
    ipv4: bool,
) -> Exported {
    let rewritten = match (decision, &config.export_filter) {
        (Decision::Accept { term: Some(term) }, Some(filter)) => {
            filter.rewrite(term, best.attributes(), up.rules.local_as)
        }
        _ => None,
    };
    let (attributes, next_hop) = match &rewritten {
        Some(attributes) => export(
            &up.rules,
            &Rewritten {
                path: best,
                attributes,
            },
            &up.source,
            up.local,
            config.next_hop,
        ),
        None => export(&up.rules, &best, &up.source, up.local, config.next_hop),
    }?;
    let next_hop = match (ipv4, next_hop) {
        (true, IpAddr::V6(_)) if !up.negotiated.context.extended_next_hop => return None,
        // An IPv6 route over an IPv4 session: the IPv4-mapped address (as FRR).
        (false, IpAddr::V4(v4)) => IpAddr::V6(v4.to_ipv6_mapped()),
        (_, next_hop) => next_hop,
    };
    Some((Arc::new(attributes), next_hop))
}
