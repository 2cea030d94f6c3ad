use super::*;
use crate::rib::testing::{path, peer};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// A table with sources 10.0.0.1 to 10.0.0.4 (eBGP), ids 1 to 4.
fn rib() -> Rib {
    let mut rib = Rib::new(Source::local("10.0.0.100".parse().unwrap(), 64512));
    for n in 1..=4 {
        assert_eq!(rib.add_source(peer(n, false, false)), SourceId::from(n));
    }
    rib
}

fn announce(rib: &mut Rib, prefix: IpNet, from: u8, as_path: &[u32]) -> Vec<Touched> {
    let p = path(&peer(from, false, false), as_path);
    rib.announce(prefix, from.into(), &p.attributes, p.next_hop, None, true);
    rib.drain().collect()
}

fn best_sources(rib: &Rib, prefix: IpNet) -> Vec<SourceId> {
    let slot = rib.slot_of(&prefix).unwrap();
    rib.best_at(slot).map(|p| p.source_id()).collect()
}

#[test]
fn a_better_path_replaces_the_best_and_a_worse_one_changes_nothing() {
    let mut rib = rib();
    let prefix = net("10.244.1.0/26");
    assert_eq!(announce(&mut rib, prefix, 1, &[1, 2]), [Touched::Best(0)]);
    assert_eq!(announce(&mut rib, prefix, 2, &[2]), [Touched::Best(0)]);
    assert_eq!(best_sources(&rib, prefix), [2]);
    assert_eq!(
        announce(&mut rib, prefix, 3, &[3, 4, 5]),
        [Touched::Paths(0)]
    );
    assert_eq!(rib.paths(&prefix).len(), 3);
}

#[test]
fn equal_paths_form_an_ecmp_set_that_shrinks_on_withdraw() {
    let mut rib = rib();
    let prefix = net("10.244.1.0/26");
    announce(&mut rib, prefix, 1, &[7]);
    announce(&mut rib, prefix, 2, &[8]);
    assert_eq!(best_sources(&rib, prefix), [1, 2]);
    rib.withdraw(prefix, 1, None);
    assert_eq!(rib.drain().collect::<Vec<_>>(), [Touched::Best(0)]);
    assert_eq!(best_sources(&rib, prefix), [2]);
    rib.withdraw(prefix, 2, None);
    assert_eq!(rib.drain().collect::<Vec<_>>(), [Touched::Gone(0, prefix)]);
    assert!(rib.is_empty());
    assert_eq!(rib.best(&prefix), None);
}

#[test]
fn a_reannouncement_replaces_the_sources_previous_path() {
    let mut rib = rib();
    let prefix = net("10.244.1.0/26");
    announce(&mut rib, prefix, 1, &[1, 2, 3]);
    assert_eq!(announce(&mut rib, prefix, 1, &[1]), [Touched::Best(0)]);
    assert_eq!(rib.paths(&prefix).len(), 1);
    assert_eq!(rib.paths(&prefix)[0].as_path_len(), 1);
    assert_eq!(rib.path_count(1), 1);
}

#[test]
fn a_freed_slot_is_reused_and_the_journal_keeps_the_old_prefix() {
    let mut rib = rib();
    let (a, b) = (net("10.244.1.0/26"), net("10.244.2.0/26"));
    announce(&mut rib, a, 1, &[1]);
    rib.withdraw(a, 1, None);
    let p = path(&peer(1, false, false), &[1]);
    rib.announce(b, 1, &p.attributes, p.next_hop, None, true);
    assert_eq!(
        rib.drain().collect::<Vec<_>>(),
        [Touched::Gone(0, a), Touched::Best(0)]
    );
    assert_eq!(rib.prefix_at(0), Some(b));
    assert_eq!(rib.slot_of(&a), None);
}

#[test]
fn removing_a_source_takes_exactly_its_paths() {
    let mut rib = rib();
    let (a, b) = (net("10.244.1.0/26"), net("10.244.2.0/26"));
    announce(&mut rib, a, 1, &[1]);
    announce(&mut rib, b, 1, &[1]);
    announce(&mut rib, b, 2, &[2, 3]);
    rib.remove_source(1);
    let changes: Vec<_> = rib.drain().collect();
    assert_eq!(changes, [Touched::Gone(0, a), Touched::Best(1)]);
    assert_eq!(best_sources(&rib, b), [2]);
    assert_eq!(rib.path_count(1), 0);
    // The number is handed out again.
    assert_eq!(rib.add_source(peer(9, false, false)), 1);
}

#[test]
fn stale_paths_keep_forwarding_until_swept_and_refreshed_ones_survive() {
    let mut rib = rib();
    let (kept, dropped) = (net("10.244.1.0/26"), net("10.244.2.0/26"));
    announce(&mut rib, kept, 1, &[1]);
    announce(&mut rib, dropped, 1, &[1]);
    rib.mark_stale(1);
    assert!(rib.best(&kept).unwrap()[0].stale);
    // After the restart the peer announces `kept` again, then End-of-RIB.
    announce(&mut rib, kept, 1, &[1]);
    rib.sweep_stale(1);
    assert_eq!(rib.drain().collect::<Vec<_>>(), [Touched::Gone(1, dropped)]);
    assert!(!rib.best(&kept).unwrap()[0].stale);
    assert_eq!(rib.path_count(1), 1);
}

#[test]
fn a_route_refresh_removes_at_its_end_what_the_peer_did_not_announce_again_and_moves_nothing_else()
{
    let mut rib = rib();
    let (kept, dropped) = (net("10.244.1.0/26"), net("10.244.2.0/26"));
    let other_family = net("fd00:10:244::/122");
    // One attribute set, as the speaker interns them.
    let p = path(&peer(1, false, false), &[1]);
    let send = |rib: &mut Rib, prefix| {
        rib.announce(prefix, 1, &p.attributes, p.next_hop, None, true);
        rib.drain().collect::<Vec<_>>()
    };
    for prefix in [kept, dropped, other_family] {
        send(&mut rib, prefix);
    }
    rib.begin_refresh(1, true);
    // The same path again, as a refresh sends it: nobody is told anything.
    assert_eq!(send(&mut rib, kept), [], "a refreshed path is no change");
    assert!(!rib.best(&dropped).unwrap()[0].stale, "selection untouched");
    rib.end_refresh(1, true);
    assert_eq!(rib.drain().collect::<Vec<_>>(), [Touched::Gone(1, dropped)]);
    assert_eq!(rib.path_count(1), 2);
    assert!(rib.best(&other_family).is_some(), "the other family stays");
    // An end without a beginning removes nothing.
    rib.end_refresh(1, true);
    assert_eq!(rib.path_count(1), 2);
}

#[test]
fn hardening_an_ineligible_path_is_never_best_and_the_next_one_is() {
    let mut rib = rib();
    let prefix = net("10.244.1.0/26");
    // Peer 1's path is better (shorter), but ineligible.
    let short = path(&peer(1, false, false), &[1]);
    rib.announce(prefix, 1, &short.attributes, short.next_hop, None, false);
    assert_eq!(best_sources(&rib, prefix), Vec::<SourceId>::new());
    announce(&mut rib, prefix, 2, &[2, 3]);
    assert_eq!(best_sources(&rib, prefix), [2]);
    // Judged again: peer 1 is fine now, and peer 2 not.
    rib.drain().for_each(drop);
    rib.revalidate(|_, path| path.source_id() == 1);
    assert_eq!(best_sources(&rib, prefix), [1]);
    assert!(rib.drain().any(|t| t == Touched::Best(0)));
    let paths = rib.paths(&prefix);
    assert_eq!(
        paths.iter().map(|p| p.eligible).collect::<Vec<_>>(),
        [true, false]
    );
    // Nothing changes: nothing is journalled.
    rib.revalidate(|_, path| path.source_id() == 1);
    assert_eq!(rib.drain().count(), 0);
}

#[test]
fn a_stored_path_and_a_slot_stay_small() {
    assert_eq!(std::mem::size_of::<Stored>(), 20);
    assert!(
        std::mem::size_of::<Slot>() <= 48,
        "{}",
        std::mem::size_of::<Slot>()
    );
}
