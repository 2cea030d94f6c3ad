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
use super::hooks::Verdict;
use super::state::State;

/// One announced route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Announced {
    pub prefix: IpNet,
    pub path_id: Option<u32>,
    pub next_hop: IpAddr,
}

/// (announced, withdrawn as prefix and path id)
pub(crate) fn routes(update: &Update) -> (Vec<Announced>, Vec<(IpNet, Option<u32>)>) {
    let mut withdrawn: Vec<(IpNet, Option<u32>)> = update
        .withdrawn
        .iter()
        .chain(update.mp_unreach.iter().flat_map(|u| &u.nlri))
        .map(|n| (n.prefix, n.path_id))
        .collect();
    let mut announced = Vec::new();
    match update.next_hop {
        Some(next_hop) => announced.extend(update.nlri.iter().map(|n| Announced {
            prefix: n.prefix,
            path_id: n.path_id,
            next_hop: IpAddr::V4(next_hop),
        })),
        // NEXT_HOP missing or malformed: no usable route (RFC 7606 3 d, 7.3).
        None => withdrawn.extend(update.nlri.iter().map(|n| (n.prefix, n.path_id))),
    }
    if let Some(reach) = &update.mp_reach {
        let next_hop = match reach.next_hop {
            NextHop::V4(address) => IpAddr::V4(address),
            NextHop::V6 { global, .. } => IpAddr::V6(global),
        };
        announced.extend(reach.nlri.iter().map(|n| Announced {
            prefix: n.prefix,
            path_id: n.path_id,
            next_hop,
        }));
    }
    if update.treat_as_withdraw() {
        // RFC 7606: the UPDATE's announcements count as withdrawals.
        withdrawn.extend(announced.drain(..).map(|a| (a.prefix, a.path_id)));
    }
    (announced, withdrawn)
}

/// A next hop no route may use (RFC 4271 6.3): unspecified, multicast, or this
/// speaker's own address on the session.
fn unusable(next_hop: IpAddr, own: IpAddr) -> bool {
    next_hop.is_unspecified() || next_hop.is_multicast() || next_hop == own
}

impl State {
    /// Applies one UPDATE from `address` to the RIB.
    pub(super) fn receive(&mut self, address: IpAddr, update: Update) {
        let Some(peer) = self.peers.get_mut(&address) else {
            return;
        };
        let Some(up) = peer.up.as_mut() else {
            return;
        };
        let source = peer.source;
        if let Some(afi) = update.end_of_rib_family() {
            if !up.end_of_rib_seen.contains(&afi) {
                up.end_of_rib_seen.push(afi);
            }
            if up.table_complete() && peer.stale_until.take().is_some() {
                self.rib.sweep_stale(source);
            }
            return;
        }
        let (announced, withdrawn) = routes(&update);
        peer.announcements += announced.len() as u64;
        for (prefix, path_id) in withdrawn {
            self.rib.withdraw(prefix, source, path_id);
        }
        if announced.is_empty() {
            return;
        }
        let mut attributes = update.attributes;
        if !up.source.internal {
            // RFC 7606 7.5: LOCAL_PREF from an external peer is discarded.
            attributes.local_pref = None;
        }
        let config = &peer.config;
        let refused = match check_import(&up.rules, &attributes, config.allowas_in) {
            Err(reason) => Some(reason.to_string()),
            Ok(())
                if config.import_filter.is_none()
                    && PeerConfig::effective(config.import, up.source.internal)
                        == Policy::Reject =>
            {
                Some("no import policy for an eBGP peer (RFC 8212)".to_owned())
            }
            Ok(()) => None,
        };
        if let Some(reason) = refused {
            tracing::debug!(peer = %address, %reason, routes = announced.len(), "routes refused");
            for route in announced {
                self.rib.withdraw(route.prefix, source, route.path_id);
            }
            return;
        }
        let attributes = self.interner.intern(attributes);
        // The attributes each filter term gives them, made once per UPDATE.
        let mut rewritten: Vec<(usize, Arc<Attributes>)> = Vec::new();
        for route in announced {
            let decision = match &config.import_filter {
                Some(filter) => filter.decide(&route.prefix, &attributes),
                None => Decision::Accept { term: None },
            };
            let chosen = match decision {
                Decision::Reject => None,
                Decision::Accept { term: None } => Some(Arc::clone(&attributes)),
                Decision::Accept { term: Some(term) } => {
                    let found = rewritten.iter().find(|(t, _)| *t == term);
                    Some(match found {
                        Some((_, set)) => Arc::clone(set),
                        None => {
                            let filter = config.import_filter.as_ref().expect("decided by it");
                            let set = match filter.rewrite(term, &attributes, up.rules.local_as) {
                                Some(changed) => self.interner.intern(changed),
                                None => Arc::clone(&attributes),
                            };
                            rewritten.push((term, Arc::clone(&set)));
                            set
                        }
                    })
                }
            };
            let chosen = match (chosen, &self.hooks.import) {
                (Some(set), Some(hook)) => match hook.import(&up.source, &route.prefix, &set) {
                    Verdict::Accept => Some(set),
                    Verdict::Reject => None,
                    Verdict::Replace(changed) => Some(self.interner.intern(changed)),
                },
                (chosen, _) => chosen,
            };
            match chosen {
                Some(set) if !unusable(route.next_hop, up.local) => {
                    self.rib
                        .announce(route.prefix, source, set, route.next_hop, route.path_id);
                }
                _ => self.rib.withdraw(route.prefix, source, route.path_id),
            }
        }
    }
}
