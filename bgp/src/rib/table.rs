//! The Loc-RIB: every path to every prefix (the Adj-RIBs-In after import policy),
//! kept best first, and the changes of each prefix's best (ECMP) set.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;

use super::decision::{compare, equal_cost};
use super::path::Path;

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

/// Who a path belongs to: a peer (`None` for local routes) and its ADD-PATH id.
type PathKey = (Option<IpAddr>, Option<u32>);

#[derive(Debug, Default)]
pub struct Rib {
    /// Candidates per prefix, best first.
    prefixes: HashMap<IpNet, Vec<Path>>,
    /// The prefixes each peer has paths to, for session resets.
    by_peer: HashMap<Option<IpAddr>, HashSet<IpNet>>,
}

impl Rib {
    /// Adds or replaces the path from `path.source.peer` with `path.path_id`.
    pub fn announce(&mut self, prefix: IpNet, path: Path) -> Option<Change> {
        let key = key(&path);
        self.by_peer.entry(key.0).or_default().insert(prefix);
        self.update(prefix, |paths| {
            paths.retain(|p| self::key(p) != key);
            let at = paths
                .binary_search_by(|p| compare(p, &path))
                .unwrap_or_else(|at| at);
            paths.insert(at, path);
        })
    }

    /// Removes the path of `peer` with `path_id`, if there is one.
    pub fn withdraw(
        &mut self,
        prefix: IpNet,
        peer: Option<IpAddr>,
        path_id: Option<u32>,
    ) -> Option<Change> {
        let change = self.update(prefix, |paths| {
            paths.retain(|p| key(p) != (peer, path_id));
        });
        if !self
            .prefixes
            .get(&prefix)
            .is_some_and(|paths| paths.iter().any(|p| p.source.peer == peer))
            && let Some(prefixes) = self.by_peer.get_mut(&peer)
        {
            prefixes.remove(&prefix);
        }
        change
    }

    /// Removes every path of `peer` (its session went down without graceful restart).
    pub fn remove_peer(&mut self, peer: Option<IpAddr>) -> Vec<Change> {
        let prefixes = self.by_peer.remove(&peer).unwrap_or_default();
        prefixes
            .into_iter()
            .filter_map(|prefix| {
                self.update(prefix, |paths| paths.retain(|p| p.source.peer != peer))
            })
            .collect()
    }

    /// Marks every path of `peer` stale: kept for forwarding, but losing to any fresh
    /// path, until the peer re-announces it or [`Rib::sweep_stale`] runs.
    pub fn mark_stale(&mut self, peer: Option<IpAddr>) -> Vec<Change> {
        self.peer_prefixes(peer)
            .into_iter()
            .filter_map(|prefix| {
                self.update(prefix, |paths| {
                    for path in paths.iter_mut().filter(|p| p.source.peer == peer) {
                        path.stale = true;
                    }
                    paths.sort_by(compare);
                })
            })
            .collect()
    }

    /// Removes `peer`'s paths still stale (End-of-RIB arrived or restart time ran out).
    pub fn sweep_stale(&mut self, peer: Option<IpAddr>) -> Vec<Change> {
        let changes = self
            .peer_prefixes(peer)
            .into_iter()
            .filter_map(|prefix| {
                self.update(prefix, |paths| {
                    paths.retain(|p| !(p.source.peer == peer && p.stale));
                })
            })
            .collect();
        let prefixes = &self.prefixes;
        if let Some(owned) = self.by_peer.get_mut(&peer) {
            owned.retain(|prefix| {
                prefixes
                    .get(prefix)
                    .is_some_and(|paths| paths.iter().any(|p| p.source.peer == peer))
            });
        }
        changes
    }

    /// The best path to `prefix` and those equal to it.
    pub fn best(&self, prefix: &IpNet) -> Option<Vec<Path>> {
        self.prefixes.get(prefix).map(|paths| ecmp(paths))
    }

    /// Every path to `prefix`, best first.
    pub fn paths(&self, prefix: &IpNet) -> &[Path] {
        self.prefixes.get(prefix).map_or(&[], Vec::as_slice)
    }

    /// Every prefix with at least one path.
    pub fn prefixes(&self) -> impl Iterator<Item = &IpNet> {
        self.prefixes.keys()
    }

    /// How many prefixes `peer` has paths to.
    pub fn prefix_count(&self, peer: Option<IpAddr>) -> usize {
        self.by_peer.get(&peer).map_or(0, HashSet::len)
    }

    fn peer_prefixes(&self, peer: Option<IpAddr>) -> Vec<IpNet> {
        self.by_peer
            .get(&peer)
            .map(|p| p.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Applies `edit` to the paths of `prefix` and reports a change of its best set.
    fn update(&mut self, prefix: IpNet, edit: impl FnOnce(&mut Vec<Path>)) -> Option<Change> {
        let paths = self.prefixes.entry(prefix).or_default();
        let before = ecmp(paths);
        edit(paths);
        let after = ecmp(paths);
        if paths.is_empty() {
            self.prefixes.remove(&prefix);
        }
        match (before.is_empty(), after.is_empty()) {
            _ if before == after => None,
            (false, true) => Some(Change::Withdrawn { prefix }),
            _ => Some(Change::Best {
                prefix,
                paths: after,
            }),
        }
    }
}

fn key(path: &Path) -> PathKey {
    (path.source.peer, path.path_id)
}

/// The best path and those of equal cost, from a best-first list.
fn ecmp(paths: &[Path]) -> Vec<Path> {
    match paths.first() {
        None => Vec::new(),
        Some(best) => paths
            .iter()
            .take_while(|p| equal_cost(best, p))
            .cloned()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rib::testing::{path, peer};

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn best_peers(change: Option<Change>) -> Vec<u8> {
        match change {
            Some(Change::Best { paths, .. }) => paths
                .iter()
                .map(|p| match p.source.peer {
                    Some(IpAddr::V4(a)) => a.octets()[3],
                    _ => 0,
                })
                .collect(),
            other => panic!("expected a new best set, got {other:?}"),
        }
    }

    #[test]
    fn a_better_path_replaces_the_best_and_a_worse_one_changes_nothing() {
        let mut rib = Rib::default();
        let prefix = net("10.244.1.0/26");
        assert_eq!(
            best_peers(rib.announce(prefix, path(&peer(1, false, false), &[1, 2]))),
            [1]
        );
        assert_eq!(
            best_peers(rib.announce(prefix, path(&peer(2, false, false), &[2]))),
            [2]
        );
        assert_eq!(
            rib.announce(prefix, path(&peer(3, false, false), &[3, 4, 5])),
            None
        );
        assert_eq!(rib.paths(&prefix).len(), 3);
    }

    #[test]
    fn equal_paths_form_an_ecmp_set_that_shrinks_on_withdraw() {
        let mut rib = Rib::default();
        let prefix = net("10.244.1.0/26");
        rib.announce(prefix, path(&peer(1, false, false), &[7]));
        assert_eq!(
            best_peers(rib.announce(prefix, path(&peer(2, false, false), &[8]))),
            [1, 2]
        );
        assert_eq!(
            best_peers(rib.withdraw(prefix, peer(1, false, false).peer, None)),
            [2]
        );
        assert_eq!(
            rib.withdraw(prefix, peer(2, false, false).peer, None),
            Some(Change::Withdrawn { prefix })
        );
        assert_eq!(rib.prefixes().count(), 0);
    }

    #[test]
    fn a_reannouncement_replaces_the_peers_previous_path() {
        let mut rib = Rib::default();
        let prefix = net("10.244.1.0/26");
        let from = peer(1, false, false);
        rib.announce(prefix, path(&from, &[1, 2, 3]));
        rib.announce(prefix, path(&from, &[1]));
        assert_eq!(rib.paths(&prefix).len(), 1);
        assert_eq!(rib.paths(&prefix)[0].as_path_len(), 1);
    }

    #[test]
    fn a_peer_going_down_takes_exactly_its_paths() {
        let mut rib = Rib::default();
        let (a, b) = (peer(1, false, false), peer(2, false, false));
        for prefix in ["10.244.1.0/26", "10.244.2.0/26"] {
            rib.announce(net(prefix), path(&a, &[1]));
        }
        rib.announce(net("10.244.2.0/26"), path(&b, &[2, 3]));
        let changes = rib.remove_peer(a.peer);
        assert_eq!(changes.len(), 2);
        assert!(changes.contains(&Change::Withdrawn {
            prefix: net("10.244.1.0/26")
        }));
        assert_eq!(rib.best(&net("10.244.2.0/26")).unwrap()[0].source, b);
        assert_eq!(rib.prefix_count(a.peer), 0);
    }

    #[test]
    fn stale_paths_keep_forwarding_until_swept_and_refreshed_ones_survive() {
        let mut rib = Rib::default();
        let a = peer(1, false, false);
        let (kept, dropped) = (net("10.244.1.0/26"), net("10.244.2.0/26"));
        rib.announce(kept, path(&a, &[1]));
        rib.announce(dropped, path(&a, &[1]));
        rib.mark_stale(a.peer);
        assert!(rib.best(&kept).unwrap()[0].stale);
        // After the restart the peer announces `kept` again, then End-of-RIB.
        rib.announce(kept, path(&a, &[1]));
        let changes = rib.sweep_stale(a.peer);
        assert_eq!(changes, [Change::Withdrawn { prefix: dropped }]);
        assert!(!rib.best(&kept).unwrap()[0].stale);
        assert_eq!(rib.prefix_count(a.peer), 1);
    }
}
