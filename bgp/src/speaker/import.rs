//! Taking one UPDATE into the RIB: the routes it announces and withdraws, whatever
//! field or attribute they came in; the checks every speaker makes (RFC 7606
//! treat-as-withdraw, next hop, loops, RFC 8212); the peer's import filter and the
//! owner's hook. The attributes are interned once per UPDATE, and once per filter
//! term that changes them.

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use crate::codec::{Attributes, NextHop, Update};
use crate::rib::check_import;
use crate::rib::filter::Decision;

use super::config::{PeerConfig, Policy};
use super::core::Core;
use super::hooks::Verdict;

/// One announced route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Announced {
    pub prefix: IpNet,
    pub path_id: Option<u32>,
    pub next_hop: IpAddr,
}

/// The routes of one UPDATE, read in place.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Routes<'a> {
    update: &'a Update,
    /// False when RFC 7606 says the announcements are withdrawals.
    usable: bool,
}

impl<'a> Routes<'a> {
    pub fn of(update: &'a Update) -> Self {
        Self {
            update,
            usable: !update.treat_as_withdraw(),
        }
    }

    /// The announcements with their next hops; none when treat-as-withdraw.
    pub fn announced(self) -> impl Iterator<Item = Announced> + 'a {
        let update = self.update;
        let plain = update
            .next_hop
            .filter(|_| self.usable)
            .into_iter()
            .flat_map(move |next_hop| {
                update.nlri.iter().map(move |n| Announced {
                    prefix: n.prefix,
                    path_id: n.path_id,
                    next_hop: IpAddr::V4(next_hop),
                })
            });
        let mp = update
            .mp_reach
            .iter()
            .filter(move |_| self.usable)
            .flat_map(|reach| {
                let next_hop = match reach.next_hop {
                    NextHop::V4(address) => IpAddr::V4(address),
                    NextHop::V6 { global, .. } => IpAddr::V6(global),
                };
                reach.nlri.iter().map(move |n| Announced {
                    prefix: n.prefix,
                    path_id: n.path_id,
                    next_hop,
                })
            });
        plain.chain(mp)
    }

    /// The withdrawals (prefix and path id): the explicit ones, and every
    /// announcement when treat-as-withdraw, and the NLRI field's routes when
    /// NEXT_HOP is missing or malformed (RFC 7606 3 d, 7.3).
    pub fn withdrawn(self) -> impl Iterator<Item = (IpNet, Option<u32>)> + 'a {
        let update = self.update;
        let explicit = update
            .withdrawn
            .iter()
            .chain(update.mp_unreach.iter().flat_map(|u| &u.nlri));
        let plain_unusable = !self.usable || update.next_hop.is_none();
        let plain = update.nlri.iter().filter(move |_| plain_unusable);
        let mp = update
            .mp_reach
            .iter()
            .filter(move |_| !self.usable)
            .flat_map(|r| &r.nlri);
        explicit
            .chain(plain)
            .chain(mp)
            .map(|n| (n.prefix, n.path_id))
    }
}

/// A next hop no route may use (RFC 4271 6.3): unspecified, multicast, or this
/// speaker's own address on the session.
fn unusable(next_hop: IpAddr, own: IpAddr) -> bool {
    next_hop.is_unspecified() || next_hop.is_multicast() || next_hop == own
}

impl Core {
    /// Applies one UPDATE from `address` to the RIB.
    pub(super) fn receive(&mut self, address: IpAddr, mut update: Update) {
        let Some(peer) = self.peers.get_mut(&address) else {
            return;
        };
        let Some(session) = peer.session.as_mut() else {
            return;
        };
        let source = peer.source;
        if let Some(afi) = update.end_of_rib_family() {
            if !session.end_of_rib_seen.contains(&afi) {
                session.end_of_rib_seen.push(afi);
            }
            if session.table_complete() && peer.stale_until.take().is_some() {
                self.rib.sweep_stale(source);
            }
            return;
        }
        // The codec already dropped LOCAL_PREF and the reflection attributes of an
        // external peer (RFC 7606 7.5, 7.9, 7.10).
        let attributes = std::mem::take(&mut update.attributes);
        let routes = Routes::of(&update);
        for (prefix, path_id) in routes.withdrawn() {
            self.rib.withdraw(prefix, source, path_id);
        }
        let count = routes.announced().count();
        peer.announcements += count as u64;
        if count == 0 {
            return;
        }
        let config = &peer.config;
        let refused = match check_import(&session.router, &attributes, config.allowas_in) {
            Err(reason) => Some(reason.to_string()),
            Ok(())
                if config.import_filter.is_none()
                    && PeerConfig::effective(config.import, session.source.internal)
                        == Policy::Reject =>
            {
                Some("no import policy for an eBGP peer (RFC 8212)".to_owned())
            }
            Ok(()) => None,
        };
        if let Some(reason) = refused {
            tracing::debug!(peer = %address, %reason, routes = count, "routes refused");
            for route in routes.announced() {
                self.rib.withdraw(route.prefix, source, route.path_id);
            }
            return;
        }
        let attributes = self.interner.intern(attributes);
        // The attributes each filter term gives them, made once per UPDATE.
        let mut rewritten: Vec<(usize, Arc<Attributes>)> = Vec::new();
        for route in routes.announced() {
            let decision = match &config.import_filter {
                Some(filter) => filter.decide(&route.prefix, &attributes),
                None => Decision::Accept { term: None },
            };
            let at = match decision {
                Decision::Reject => {
                    self.rib.withdraw(route.prefix, source, route.path_id);
                    continue;
                }
                Decision::Accept { term: None } => None,
                Decision::Accept { term: Some(term) } => {
                    Some(match rewritten.iter().position(|(t, _)| *t == term) {
                        Some(at) => at,
                        None => {
                            let filter = config.import_filter.as_ref().expect("decided by it");
                            let set =
                                match filter.rewrite(term, &attributes, session.router.local_as) {
                                    Some(changed) => self.interner.intern(changed),
                                    None => Arc::clone(&attributes),
                                };
                            rewritten.push((term, set));
                            rewritten.len() - 1
                        }
                    })
                }
            };
            // Borrowed, not cloned: most routes share the UPDATE's set.
            let set = at.map_or(&attributes, |at| &rewritten[at].1);
            let replaced;
            let set = match &self.hooks.import {
                None => set,
                Some(hook) => match hook.import(&session.source, &route.prefix, set) {
                    Verdict::Accept => set,
                    Verdict::Reject => {
                        self.rib.withdraw(route.prefix, source, route.path_id);
                        continue;
                    }
                    Verdict::Replace(changed) => {
                        replaced = self.interner.intern(changed);
                        &replaced
                    }
                },
            };
            if unusable(route.next_hop, session.local) {
                self.rib.withdraw(route.prefix, source, route.path_id);
            } else {
                self.rib
                    .announce(route.prefix, source, set, route.next_hop, route.path_id);
            }
        }
    }
}
