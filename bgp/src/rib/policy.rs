//! What every BGP speaker must check on import and change on export, before any
//! operator policy: AS-path loops, route-reflection loops (RFC 4456 8), which peers
//! may receive a path (iBGP split horizon, reflection), and the attributes each kind
//! of session expects.

use std::net::{IpAddr, Ipv4Addr};

use crate::codec::{AsPath, Attributes, Community};

use super::filter::prepend_as;

use super::path::{Candidate, Source};

/// This router as the import checks and export rules see it: its AS and
/// identifiers, and how it reflects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRouter {
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    /// Set when this speaker reflects routes (RFC 4456); the router id otherwise.
    pub cluster_id: Option<Ipv4Addr>,
    /// Reflect routes between clients (off when clients are fully meshed).
    pub client_to_client: bool,
}

/// Why a received path is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("AS path contains the local AS {0} more often than allowed")]
    AsPathLoop(u32),
    #[error("ORIGINATOR_ID is this speaker's router id")]
    OriginatorLoop,
    #[error("CLUSTER_LIST contains this speaker's cluster id")]
    ClusterLoop,
}

/// Loop checks on a path received from a peer; `allowas_in` is how many times the
/// local AS may already appear (for sites that reuse one AS).
pub fn check_import(
    speaker: &LocalRouter,
    attributes: &Attributes,
    allowas_in: usize,
) -> Result<(), Rejected> {
    let occurrences = attributes.as_path.as_ref().map_or(0, |path| {
        path.segments
            .iter()
            .flat_map(|s| &s.asns)
            .filter(|&&asn| asn == speaker.local_as)
            .count()
    });
    if occurrences > allowas_in {
        return Err(Rejected::AsPathLoop(speaker.local_as));
    }
    if attributes.originator_id == Some(speaker.router_id) {
        return Err(Rejected::OriginatorLoop);
    }
    if attributes
        .cluster_list
        .contains(&speaker.cluster_id.unwrap_or(speaker.router_id))
    {
        return Err(Rejected::ClusterLoop);
    }
    Ok(())
}

const NO_EXPORT_SUBCONFED: Community = Community(0xffff_ff03);

/// How the next hop is set towards a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextHopMode {
    /// eBGP: self; iBGP: unchanged (RFC 4271 5.1.3).
    Auto,
    SelfAlways,
    Unchanged,
}

/// The attributes and next hop `path` is sent to `peer` with, or `None` when it must
/// not be sent to that peer at all. `own_address` is this speaker's address on the
/// session.
pub fn export(
    speaker: &LocalRouter,
    path: &impl Candidate,
    peer: &Source,
    own_address: IpAddr,
    next_hop_mode: NextHopMode,
) -> Option<(Attributes, IpAddr)> {
    // Never back to where it came from.
    if path.source().peer.is_some() && path.source().peer == peer.peer {
        return None;
    }
    // RFC 1997: NO_ADVERTISE goes to nobody, NO_EXPORT (and NO_EXPORT_SUBCONFED,
    // without confederations) stays inside the AS.
    let communities = &path.attributes().communities;
    if communities.contains(&Community::NO_ADVERTISE)
        || (!peer.internal
            && (communities.contains(&Community::NO_EXPORT)
                || communities.contains(&NO_EXPORT_SUBCONFED)))
    {
        return None;
    }
    let learned_internal = path.source().peer.is_some() && path.source().internal;
    let reflecting = learned_internal && peer.internal;
    if reflecting {
        let Some(cluster_id) = speaker.cluster_id else {
            // iBGP split horizon without reflection.
            return None;
        };
        let allowed = if path.source().rr_client {
            !peer.rr_client || speaker.client_to_client
        } else {
            peer.rr_client
        };
        if !allowed {
            return None;
        }
        let mut attributes = path.attributes().clone();
        attributes
            .originator_id
            .get_or_insert(path.source().router_id);
        attributes.cluster_list.insert(0, cluster_id);
        let next_hop = match next_hop_mode {
            NextHopMode::SelfAlways => own_address,
            NextHopMode::Auto | NextHopMode::Unchanged => path.next_hop(),
        };
        return Some((attributes, next_hop));
    }
    let mut attributes = path.attributes().clone();
    let local = path.source().peer.is_none();
    if peer.internal {
        attributes.local_pref = Some(path.local_pref());
        let next_hop = match next_hop_mode {
            NextHopMode::SelfAlways => own_address,
            NextHopMode::Auto if local => own_address,
            NextHopMode::Auto | NextHopMode::Unchanged => path.next_hop(),
        };
        Some((attributes, next_hop))
    } else {
        // eBGP: our AS first, and nothing that only means something inside our AS.
        attributes.as_path = Some(prepend(attributes.as_path.take(), speaker.local_as));
        attributes.local_pref = None;
        attributes.originator_id = None;
        attributes.cluster_list.clear();
        if !path.source().internal && path.source().remote_as != peer.remote_as {
            // RFC 4271 5.1.4: MED is not passed between neighbouring ASes.
            attributes.med = None;
        }
        let next_hop = match next_hop_mode {
            NextHopMode::Unchanged => path.next_hop(),
            NextHopMode::Auto | NextHopMode::SelfAlways => own_address,
        };
        Some((attributes, next_hop))
    }
}

fn prepend(path: Option<AsPath>, asn: u32) -> AsPath {
    let mut path = path.unwrap_or_default();
    prepend_as(&mut path, asn);
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rib::testing::{LOCAL_AS, path, peer};

    const OWN: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100));

    fn speaker(cluster_id: Option<Ipv4Addr>) -> LocalRouter {
        LocalRouter {
            local_as: LOCAL_AS,
            router_id: Ipv4Addr::new(10, 0, 0, 100),
            cluster_id,
            client_to_client: true,
        }
    }

    #[test]
    fn a_path_through_our_own_as_is_a_loop_unless_allowed() {
        let looped = path(&peer(1, false, false), &[65001, LOCAL_AS]);
        let err = check_import(&speaker(None), &looped.attributes, 0).unwrap_err();
        assert_eq!(err, Rejected::AsPathLoop(LOCAL_AS));
        assert_eq!(check_import(&speaker(None), &looped.attributes, 1), Ok(()));
    }

    #[test]
    fn reflected_routes_carrying_our_ids_are_loops() {
        let speaker = speaker(Some(Ipv4Addr::new(1, 1, 1, 1)));
        let mut attributes = (*path(&peer(1, true, true), &[]).attributes).clone();
        attributes.cluster_list = vec![Ipv4Addr::new(1, 1, 1, 1)];
        assert_eq!(
            check_import(&speaker, &attributes, 0),
            Err(Rejected::ClusterLoop)
        );
        attributes.cluster_list.clear();
        attributes.originator_id = Some(speaker.router_id);
        assert_eq!(
            check_import(&speaker, &attributes, 0),
            Err(Rejected::OriginatorLoop)
        );
    }

    #[test]
    fn without_reflection_ibgp_routes_are_not_passed_to_ibgp_peers() {
        let from = path(&peer(1, true, false), &[]);
        assert_eq!(
            export(
                &speaker(None),
                &from,
                &peer(2, true, false),
                OWN,
                NextHopMode::Auto
            ),
            None
        );
    }

    #[test]
    fn a_reflector_sends_client_routes_to_all_and_others_only_to_clients() {
        let speaker = speaker(Some(Ipv4Addr::new(1, 1, 1, 1)));
        let client_route = path(&peer(1, true, true), &[]);
        let (client, non_client) = (peer(2, true, true), peer(3, true, false));
        let (attributes, next_hop) =
            export(&speaker, &client_route, &non_client, OWN, NextHopMode::Auto).unwrap();
        assert_eq!(attributes.originator_id, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(attributes.cluster_list, [Ipv4Addr::new(1, 1, 1, 1)]);
        assert_eq!(
            next_hop, client_route.next_hop,
            "reflection keeps the next hop"
        );
        assert!(export(&speaker, &client_route, &client, OWN, NextHopMode::Auto).is_some());

        let other_route = path(&non_client, &[]);
        assert!(export(&speaker, &other_route, &client, OWN, NextHopMode::Auto).is_some());
        assert!(
            export(
                &speaker,
                &other_route,
                &peer(4, true, false),
                OWN,
                NextHopMode::Auto
            )
            .is_none()
        );
        // Never back to the client it came from.
        assert!(
            export(
                &speaker,
                &client_route,
                &peer(1, true, true),
                OWN,
                NextHopMode::Auto
            )
            .is_none()
        );
    }

    #[test]
    fn client_to_client_reflection_can_be_switched_off() {
        let speaker = LocalRouter {
            client_to_client: false,
            ..speaker(Some(Ipv4Addr::new(1, 1, 1, 1)))
        };
        let client_route = path(&peer(1, true, true), &[]);
        assert!(
            export(
                &speaker,
                &client_route,
                &peer(2, true, true),
                OWN,
                NextHopMode::Auto
            )
            .is_none()
        );
        assert!(
            export(
                &speaker,
                &client_route,
                &peer(3, true, false),
                OWN,
                NextHopMode::Auto
            )
            .is_some()
        );
    }

    #[test]
    fn to_ebgp_our_as_is_prepended_next_hop_is_self_and_internal_attributes_go() {
        let mut ibgp = path(&peer(1, true, false), &[]);
        let mut attributes = (*ibgp.attributes).clone();
        attributes.local_pref = Some(200);
        attributes.originator_id = Some(Ipv4Addr::new(9, 9, 9, 9));
        ibgp.attributes = std::sync::Arc::new(attributes);
        let (sent, next_hop) = export(
            &speaker(None),
            &ibgp,
            &peer(5, false, false),
            OWN,
            NextHopMode::Auto,
        )
        .unwrap();
        assert_eq!(sent.as_path, Some(AsPath::sequence(vec![LOCAL_AS])));
        assert_eq!((sent.local_pref, sent.originator_id), (None, None));
        assert_eq!(next_hop, OWN);
    }

    #[test]
    fn to_ibgp_local_routes_get_next_hop_self_and_a_local_pref() {
        let local = path(&Source::local(Ipv4Addr::new(10, 0, 0, 100), LOCAL_AS), &[]);
        let (sent, next_hop) = export(
            &speaker(None),
            &local,
            &peer(2, true, false),
            OWN,
            NextHopMode::Auto,
        )
        .unwrap();
        assert_eq!(sent.local_pref, Some(100));
        assert_eq!(next_hop, OWN);
        let learned = path(&peer(5, false, false), &[65005]);
        let (_, next_hop) = export(
            &speaker(None),
            &learned,
            &peer(2, true, false),
            OWN,
            NextHopMode::Auto,
        )
        .unwrap();
        assert_eq!(
            next_hop, learned.next_hop,
            "iBGP keeps an eBGP next hop by default"
        );
    }
}
