//! The decision process of RFC 4271 9.1.2.2, with the tie-breaks of RFC 4456 9 and
//! the usual practice of comparing MED only between paths from the same AS.

use std::cmp::Ordering;

use super::path::Candidate;

/// Orders two paths to one prefix: `Less` when `a` is better.
pub fn compare(a: &impl Candidate, b: &impl Candidate) -> Ordering {
    equal_cost_order(a, b).then_with(|| tie_break(a, b))
}

/// True when `a` and `b` are equally good up to the final tie-breaks, so traffic may
/// be spread over both (ECMP).
pub fn equal_cost(a: &impl Candidate, b: &impl Candidate) -> bool {
    equal_cost_order(a, b) == Ordering::Equal
}

/// Steps that decide which path is better (a to e of 9.1.2.2, after the paths
/// the owner refused, which are never selected, and stale paths losing to fresh
/// ones under graceful restart).
fn equal_cost_order(a: &impl Candidate, b: &impl Candidate) -> Ordering {
    b.eligible()
        .cmp(&a.eligible())
        .then_with(|| a.stale().cmp(&b.stale()))
        // a) highest LOCAL_PREF.
        .then_with(|| b.local_pref().cmp(&a.local_pref()))
        // b) shortest AS path.
        .then_with(|| a.as_path_len().cmp(&b.as_path_len()))
        // c) lowest ORIGIN.
        .then_with(|| origin(a).cmp(&origin(b)))
        // d) lowest MED, among paths from the same neighbouring AS.
        .then_with(|| {
            if a.neighbor_as() == b.neighbor_as() {
                med(a).cmp(&med(b))
            } else {
                Ordering::Equal
            }
        })
        // e) eBGP over iBGP.
        .then_with(|| a.source().internal.cmp(&b.source().internal))
}

/// Steps f and g: lowest router id (ORIGINATOR_ID for reflected routes), shortest
/// CLUSTER_LIST, then lowest peer address; own routes first.
fn tie_break(a: &impl Candidate, b: &impl Candidate) -> Ordering {
    a.originator()
        .cmp(&b.originator())
        .then_with(|| {
            a.attributes()
                .cluster_list
                .len()
                .cmp(&b.attributes().cluster_list.len())
        })
        .then_with(|| a.source().peer.cmp(&b.source().peer))
        .then_with(|| a.path_id().cmp(&b.path_id()))
}

fn origin(path: &impl Candidate) -> u8 {
    use crate::codec::Origin;
    // A missing ORIGIN was already handled as malformed; rank it last.
    match path.attributes().origin {
        Some(Origin::Igp) => 0,
        Some(Origin::Egp) => 1,
        Some(Origin::Incomplete) | None => 2,
    }
}

fn med(path: &impl Candidate) -> u32 {
    // RFC 4271 9.1.2.2 d: a missing MED counts as the lowest value.
    path.attributes().med.unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::Arc;

    use super::*;
    use crate::codec::{AsPath, Attributes, Origin};
    use crate::rib::path::{Path, Source};

    fn source(last_octet: u8, internal: bool) -> Arc<Source> {
        Arc::new(Source {
            peer: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last_octet))),
            router_id: Ipv4Addr::new(10, 0, 0, last_octet),
            remote_as: if internal {
                64512
            } else {
                65000 + u32::from(last_octet)
            },
            internal,
            rr_client: false,
        })
    }

    fn path(from: u8, attributes: Attributes) -> Path {
        Path {
            source: source(from, false),
            attributes: Arc::new(attributes),
            next_hop: IpAddr::V4(Ipv4Addr::new(10, 0, 0, from)),
            path_id: None,
            stale: false,
            eligible: true,
        }
    }

    fn attrs(as_path: &[u32]) -> Attributes {
        Attributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence(as_path.to_vec())),
            ..Attributes::default()
        }
    }

    #[test]
    fn higher_local_pref_beats_a_shorter_path() {
        let long = path(
            2,
            Attributes {
                local_pref: Some(200),
                ..attrs(&[1, 2, 3])
            },
        );
        let short = path(1, attrs(&[1]));
        assert_eq!(compare(&long, &short), Ordering::Less);
    }

    #[test]
    fn the_shorter_as_path_wins_then_the_lower_origin() {
        assert_eq!(
            compare(&path(2, attrs(&[1])), &path(1, attrs(&[1, 2]))),
            Ordering::Less
        );
        let incomplete = path(
            1,
            Attributes {
                origin: Some(Origin::Incomplete),
                ..attrs(&[1])
            },
        );
        assert_eq!(compare(&path(2, attrs(&[1])), &incomplete), Ordering::Less);
    }

    #[test]
    fn med_is_compared_only_between_paths_from_the_same_neighbour_as() {
        let low = path(
            2,
            Attributes {
                med: Some(10),
                ..attrs(&[7])
            },
        );
        let high = path(
            1,
            Attributes {
                med: Some(20),
                ..attrs(&[7])
            },
        );
        assert_eq!(compare(&low, &high), Ordering::Less);
        // From different ASes MED is skipped and the router id decides.
        let other_as = path(
            1,
            Attributes {
                med: Some(20),
                ..attrs(&[8])
            },
        );
        assert_eq!(compare(&low, &other_as), Ordering::Greater);
        assert!(equal_cost(&low, &other_as));
    }

    #[test]
    fn ebgp_beats_ibgp_and_equal_paths_fall_to_the_lower_router_id() {
        let mut internal = path(1, attrs(&[7]));
        internal.source = source(1, true);
        let external = path(2, attrs(&[7]));
        assert_eq!(compare(&external, &internal), Ordering::Less);
        assert_eq!(
            compare(&path(1, attrs(&[7])), &path(2, attrs(&[8]))),
            Ordering::Less
        );
    }

    #[test]
    fn a_reflected_route_ranks_by_originator_then_cluster_list_length() {
        let reflected = |from, originator, clusters: usize| {
            path(
                from,
                Attributes {
                    originator_id: Some(Ipv4Addr::new(192, 0, 2, originator)),
                    cluster_list: vec![Ipv4Addr::new(1, 1, 1, 1); clusters],
                    ..attrs(&[])
                },
            )
        };
        assert_eq!(
            compare(&reflected(9, 1, 2), &reflected(1, 2, 1)),
            Ordering::Less
        );
        assert_eq!(
            compare(&reflected(9, 1, 1), &reflected(1, 1, 2)),
            Ordering::Less
        );
    }

    #[test]
    fn a_stale_path_loses_to_any_fresh_one() {
        let mut stale = path(
            1,
            Attributes {
                local_pref: Some(500),
                ..attrs(&[1])
            },
        );
        stale.stale = true;
        assert_eq!(compare(&path(2, attrs(&[1, 2, 3])), &stale), Ordering::Less);
    }
}
