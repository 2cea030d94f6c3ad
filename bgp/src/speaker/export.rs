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
use super::peer::Established;

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

    fn eligible(&self) -> bool {
        self.path.eligible()
    }
}

/// Routes sent together: the same exported attributes, next hop and family.
type GroupKey = (usize, IpAddr, Afi);

/// The routes of one group, in this chunk.
#[derive(Debug)]
struct Group {
    attributes: Arc<Attributes>,
    next_hop: IpAddr,
    nlri: Vec<Nlri>,
}

/// What decides how a path is exported to a peer, apart from the peer's own
/// address (split horizon is checked first): peers of one class share the
/// export computation of each distinct path within a round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExportClass {
    router: crate::rib::LocalRouter,
    internal: bool,
    rr_client: bool,
    remote_as: u32,
    local: IpAddr,
    other_family_address: Option<IpAddr>,
    next_hop: crate::rib::NextHopMode,
    extended_next_hop: bool,
    policy: Option<Policy>,
    filter: Option<crate::rib::Filter>,
}

impl ExportClass {
    pub fn of(config: &PeerConfig, session: &Established) -> Self {
        Self {
            router: session.router.clone(),
            internal: session.source.internal,
            rr_client: session.source.rr_client,
            remote_as: session.source.remote_as,
            local: session.local,
            other_family_address: config.other_family_address,
            next_hop: config.next_hop,
            extended_next_hop: session.negotiated.context.extended_next_hop,
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
    /// This chunk's UPDATE groups, and where each is.
    groups: Vec<Group>,
    group_at: HashMap<GroupKey, usize>,
    /// The last memo key and its group: consecutive prefixes mostly share both.
    last: Option<((u32, Key), usize)>,
    withdraw: Vec<Nlri>,
}

impl Scratch {
    /// Forgets the memo: the RIB may change before the next round.
    pub fn end_round(&mut self) {
        self.memo.clear();
    }
}

/// Queues chunks of UPDATEs for `session` until its outbox is clean or its session's
/// queue is full. Returns true when the outbox is clean.
pub(crate) fn flush(
    rib: &Rib,
    config: &PeerConfig,
    session: &mut Established,
    hooks: &Hooks,
    scratch: &mut Scratch,
) -> bool {
    while !session.outbox.is_clean() {
        if !room(session) {
            return false;
        }
        let (bytes, updates) = chunk(rib, config, session, hooks, scratch);
        if bytes.is_empty() {
            continue;
        }
        let outgoing = Outgoing {
            epoch: session.epoch,
            bytes: bytes.freeze(),
            updates,
        };
        if session.updates.try_send(outgoing).is_err() {
            // The session is gone; its Down event is on the way.
            return false;
        }
    }
    true
}

/// True when the session's queue takes another chunk now; otherwise asks the
/// driver to say when it does.
pub(crate) fn room(session: &Established) -> bool {
    if session.updates.capacity() > 0 {
        return true;
    }
    session.stats.blocked.store(true, Ordering::Relaxed);
    // The driver may have taken a chunk before it could see the flag.
    session.updates.capacity() > 0
}

/// Encodes the next batch of the outbox: withdrawals first, then changed slots.
fn chunk(
    rib: &Rib,
    config: &PeerConfig,
    session: &mut Established,
    hooks: &Hooks,
    scratch: &mut Scratch,
) -> (BytesMut, u64) {
    scratch.groups.clear();
    scratch.group_at.clear();
    scratch.last = None;
    scratch.withdraw.clear();
    let gone = session.outbox.withdrawals.len().min(BATCH);
    scratch
        .withdraw
        .extend(session.outbox.withdrawals.drain(..gone));
    let mut slots = std::mem::take(&mut scratch.slots);
    session.outbox.take(BATCH, &mut slots);
    for &slot in &slots {
        let Some(prefix) = rib.prefix_at(slot) else {
            continue;
        };
        if session
            .packer
            .context()
            .sends_path_ids(Nlri::new(prefix).afi())
        {
            every_path(rib, config, session, hooks, scratch, slot, prefix);
            continue;
        }
        let wanted = rib
            .best_at(slot)
            .next()
            .and_then(|best| exported(config, session, hooks, scratch, prefix, best));
        match wanted {
            Some(group) => {
                session.outbox.set_advertised(slot, true);
                scratch.groups[group].nlri.push(Nlri::new(prefix));
            }
            None => {
                if session.outbox.set_advertised(slot, false) {
                    scratch.withdraw.push(Nlri::new(prefix));
                }
            }
        }
    }
    scratch.slots = slots;
    let mut out = BytesMut::new();
    let mut updates = 0;
    match session.packer.withdraw(&scratch.withdraw, &mut out) {
        Ok(n) => updates += n,
        Err(error) => tracing::error!(peer = %config.address, %error, "cannot encode withdrawals"),
    }
    for Group {
        attributes,
        next_hop,
        nlri,
    } in &scratch.groups
    {
        let next_hop = match *next_hop {
            IpAddr::V4(v4) => NextHop::V4(v4),
            IpAddr::V6(global) => NextHop::V6 {
                global,
                link_local: None,
            },
        };
        match session
            .packer
            .announce(attributes, next_hop, nlri, &mut out)
        {
            Ok(n) => updates += n,
            Err(error) => {
                tracing::error!(peer = %config.address, %error, "cannot encode an announcement")
            }
        }
    }
    (out, updates as u64)
}

/// The index of the group for these attributes, next hop and family, made
/// (cloning the attributes' `Arc` once per group) when new.
fn group_of(
    groups: &mut Vec<Group>,
    group_at: &mut HashMap<GroupKey, usize>,
    attributes: &Arc<Attributes>,
    next_hop: IpAddr,
    ipv4: bool,
) -> usize {
    let afi = if ipv4 { Afi::Ipv4 } else { Afi::Ipv6 };
    let key = (Arc::as_ptr(attributes) as usize, next_hop, afi);
    *group_at.entry(key).or_insert_with(|| {
        groups.push(Group {
            attributes: Arc::clone(attributes),
            next_hop,
            nlri: Vec::new(),
        });
        groups.len() - 1
    })
}

/// ADD-PATH send: every path of `slot` that passes export, each with its own
/// path id; ids sent before and gone now are withdrawn.
fn every_path(
    rib: &Rib,
    config: &PeerConfig,
    session: &mut Established,
    hooks: &Hooks,
    scratch: &mut Scratch,
    slot: SlotId,
    prefix: IpNet,
) {
    let mut now: Vec<u32> = Vec::new();
    for path in rib.paths_at(slot).filter(|p| p.eligible()) {
        let Some(group) = exported(config, session, hooks, scratch, prefix, path) else {
            continue;
        };
        let id = local_path_id(path.source_id(), path.path_id());
        // Two paths on one id (see `local_path_id`): the better one is sent.
        if !now.contains(&id) {
            now.push(id);
            scratch.groups[group]
                .nlri
                .push(Nlri::with_path_id(prefix, id));
        }
    }
    let before = session.outbox.path_ids.remove(&slot).unwrap_or_default();
    scratch.withdraw.extend(
        before
            .into_iter()
            .filter(|id| !now.contains(id))
            .map(|id| Nlri::with_path_id(prefix, id)),
    );
    session.outbox.set_advertised(slot, !now.is_empty());
    if !now.is_empty() {
        session.outbox.path_ids.insert(slot, now);
    }
}

/// The path id a path is sent with: its source in the high 16 bits, the id it was
/// received with in the low ones. Distinct for fewer than 65,536 sources sending
/// ids below 65,536 (as BIRD, FRR and GoBGP number them).
fn local_path_id(source: u32, received: Option<u32>) -> u32 {
    (source << 16) | (received.unwrap_or(0) & 0xffff)
}

/// The group `best` goes out in towards the peer, or `None` when it is not
/// sent; the export is computed once per key and round, for the peer's class.
fn exported(
    config: &PeerConfig,
    session: &Established,
    hooks: &Hooks,
    scratch: &mut Scratch,
    prefix: IpNet,
    best: PathRef<'_>,
) -> Option<usize> {
    // Never back to where it came from (RFC 4271 9.1.3; RFC 4456 8 for clients).
    if best.source().peer.is_some() && best.source().peer == session.source.peer {
        return None;
    }
    if !config.export_learned && best.source().peer.is_some() {
        return None;
    }
    let decision = match &config.export_filter {
        Some(filter) => filter.decide(&prefix, best.attributes()),
        None => match PeerConfig::effective(config.export, session.source.internal) {
            Policy::Accept => Decision::Accept { term: None },
            Policy::Reject => Decision::Reject,
        },
    };
    if decision == Decision::Reject {
        return None;
    }
    let ipv4 = prefix.addr().is_ipv4();
    let key = (
        session.class,
        Key {
            attributes: Arc::as_ptr(best.attributes_arc()) as usize,
            source: best.source_id(),
            next_hop: best.next_hop_id(),
            decision,
            ipv4,
        },
    );
    if hooks.export.is_none()
        && let Some((last, group)) = scratch.last
        && last == key
    {
        return Some(group);
    }
    let (attributes, next_hop) = scratch
        .memo
        .entry(key)
        .or_insert_with(|| export_path(config, session, best, decision, ipv4))
        .as_ref()?;
    let (groups, group_at) = (&mut scratch.groups, &mut scratch.group_at);
    let Some(hook) = &hooks.export else {
        let group = group_of(groups, group_at, attributes, *next_hop, ipv4);
        scratch.last = Some((key, group));
        return Some(group);
    };
    match hook.export(&session.source, &prefix, attributes) {
        Verdict::Accept => Some(group_of(groups, group_at, attributes, *next_hop, ipv4)),
        Verdict::Reject => None,
        Verdict::Replace(replaced) => {
            let replaced = Arc::new(replaced);
            Some(group_of(groups, group_at, &replaced, *next_hop, ipv4))
        }
    }
}

fn export_path(
    config: &PeerConfig,
    session: &Established,
    best: PathRef<'_>,
    decision: Decision,
    ipv4: bool,
) -> Exported {
    let rewritten = match (decision, &config.export_filter) {
        (Decision::Accept { term: Some(term) }, Some(filter)) => {
            filter.rewrite(term, best.attributes(), session.router.local_as)
        }
        _ => None,
    };
    // This speaker's own address of the routes' family, where it has one.
    let own = match config.other_family_address {
        Some(other) if other.is_ipv4() == ipv4 && session.local.is_ipv4() != ipv4 => other,
        _ => session.local,
    };
    let (attributes, next_hop) = match &rewritten {
        Some(attributes) => export(
            &session.router,
            &Rewritten {
                path: best,
                attributes,
            },
            &session.source,
            own,
            config.next_hop,
        ),
        None => export(
            &session.router,
            &best,
            &session.source,
            own,
            config.next_hop,
        ),
    }?;
    let next_hop = match (ipv4, next_hop) {
        (true, IpAddr::V6(_)) if !session.negotiated.context.extended_next_hop => return None,
        // An IPv6 route over an IPv4 session: the IPv4-mapped address (as FRR).
        (false, IpAddr::V4(v4)) => IpAddr::V6(v4.to_ipv6_mapped()),
        (_, next_hop) => next_hop,
    };
    Some((Arc::new(attributes), next_hop))
}
