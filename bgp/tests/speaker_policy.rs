//! What the speaker sends and takes per peer: RFC 8212, operator filters, hooks,
//! local-AS, allowas-in, next hop self and unchanged, originated attributes, and
//! a policy change that keeps every session up.

mod client;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use bgp::codec::{AsPath, Attributes, Community, NextHop};
use bgp::rib::{Change, Filter, NextHopMode, Source};
use bgp::speaker::{self, Hooks, ImportHook, JudgeHook, PeerConfig, Policy, Request, Verdict};
use client::{Offer, Pending, SPEAKER_AS, best, external, internal, net, speaker, speaker_config};
use ipnet::IpNet;

const PEER_AS: u32 = 65001;

fn hop(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, n))
}

fn filter(yaml: &str) -> Filter {
    yaml_serde::from_str(yaml).unwrap()
}

#[tokio::test]
async fn an_ebgp_peer_without_a_policy_is_sent_nothing_and_taken_nothing_from() {
    let mut handle = speaker(speaker_config());
    let block = net("10.244.0.0/26");
    handle.requests.send(Request::Originate(block)).unwrap();
    let pending = Pending::new(2, 2, PEER_AS).await;
    let config = pending.peer();
    let mut ebgp = pending.join(&handle, config, Offer::default()).await;
    let theirs = net("10.9.0.0/24");
    ebgp.announce(&[theirs], &external(&[PEER_AS]), hop(2))
        .await;
    // A second, iBGP peer sees neither.
    let pending = Pending::new(2, 3, SPEAKER_AS).await;
    let config = pending.peer();
    let mut ibgp = pending.join(&handle, config, Offer::default()).await;
    ibgp.route(block).await;
    ibgp.never(theirs, Duration::from_millis(300)).await;
    ebgp.never(block, Duration::from_millis(100)).await;
    assert!(matches!(
        best(&mut handle, block).await,
        Change::Best { .. }
    ));
    let status = client::status(&handle).await;
    assert_eq!(status[0].prefixes_received, 1);
    assert_eq!(status[0].prefixes_accepted, 0);
}

#[tokio::test]
async fn an_import_filter_matches_prefix_lists_and_communities_and_sets_attributes() {
    let handle = speaker(speaker_config());
    let pending = Pending::new(2, 2, PEER_AS).await;
    let config = PeerConfig {
        import_filter: Some(filter(
            "terms:\n\
             - match: { communities: [\"65001:666\"] }\n  action: reject\n\
             - match: { prefixes: [{ prefix: 10.10.0.0/16, ge: 24, le: 26 }] }\n  action: accept\n  set:\n\
             \x20   local_pref: 300\n    add_communities: [\"64512:1\"]\n",
        )),
        ..pending.peer()
    };
    let mut ebgp = pending.join(&handle, config, Offer::default()).await;
    let pending = Pending::new(2, 3, SPEAKER_AS).await;
    let config = pending.peer();
    let mut ibgp = pending.join(&handle, config, Offer::default()).await;
    let (accepted, too_long, outside, tagged) = (
        net("10.10.1.0/24"),
        net("10.10.2.0/27"),
        net("10.11.0.0/24"),
        net("10.10.3.0/24"),
    );
    ebgp.announce(
        &[accepted, too_long, outside],
        &external(&[PEER_AS]),
        hop(2),
    )
    .await;
    let mut bad = external(&[PEER_AS]);
    bad.communities.push(Community::new(65001, 666));
    ebgp.announce(&[tagged], &bad, hop(2)).await;
    let (attributes, _) = ibgp.route(accepted).await;
    assert_eq!(attributes.local_pref, Some(300));
    assert_eq!(attributes.communities, [Community::new(64512, 1)]);
    ibgp.never(too_long, Duration::from_millis(200)).await;
    for refused in [too_long, outside, tagged] {
        assert!(!ibgp.routes.contains_key(&refused), "{refused}");
    }
}

#[tokio::test]
async fn an_export_filter_prepends_sets_med_and_rejects() {
    let handle = speaker(speaker_config());
    let (kept, dropped) = (net("10.244.1.0/26"), net("10.244.2.0/26"));
    for prefix in [kept, dropped] {
        handle.requests.send(Request::Originate(prefix)).unwrap();
    }
    let pending = Pending::new(2, 2, PEER_AS).await;
    let config = PeerConfig {
        export_filter: Some(filter(
            "terms:\n\
             - match: { prefixes: [{ prefix: 10.244.1.0/26 }] }\n  action: accept\n  set: { med: 50, prepend: { count: 2 } }\n",
        )),
        ..pending.peer()
    };
    let mut ebgp = pending.join(&handle, config, Offer::default()).await;
    let (attributes, next_hop) = ebgp.route(kept).await;
    assert_eq!(
        attributes.as_path,
        Some(AsPath::sequence(vec![SPEAKER_AS; 3])),
        "two prepends, then our AS as every eBGP export"
    );
    assert_eq!(attributes.med, Some(50));
    assert_eq!(
        next_hop,
        NextHop::V4(Ipv4Addr::LOCALHOST),
        "next hop self over eBGP"
    );
    ebgp.never(dropped, Duration::from_millis(200)).await;
}

#[derive(Debug)]
struct RefuseLongerThan24;

impl ImportHook for RefuseLongerThan24 {
    fn import(&self, _: &Source, prefix: &IpNet, attributes: &Attributes) -> Verdict {
        if prefix.prefix_len() > 24 {
            Verdict::Reject
        } else {
            let mut changed = attributes.clone();
            changed.med = Some(7);
            Verdict::Replace(changed)
        }
    }
}

#[tokio::test]
async fn an_import_hook_refuses_and_rewrites_routes() {
    let hooks = Hooks {
        import: Some(Arc::new(RefuseLongerThan24)),
        export: None,
    };
    let mut handle = speaker::start_with(speaker_config(), hooks).unwrap();
    let pending = Pending::new(2, 2, SPEAKER_AS).await;
    let config = pending.peer();
    let mut ibgp = pending.join(&handle, config, Offer::default()).await;
    let (short, long) = (net("10.20.0.0/24"), net("10.20.1.0/25"));
    ibgp.announce(&[long, short], &internal(100), hop(2)).await;
    let Change::Best { paths, .. } = best(&mut handle, short).await else {
        panic!("withdrawn")
    };
    assert_eq!(paths[0].attributes.med, Some(7));
    let (reply, routes) = tokio::sync::oneshot::channel();
    handle.requests.send(Request::Routes(reply)).unwrap();
    let routes = routes.await.unwrap();
    assert_eq!(routes.len(), 1, "{routes:?}");
}

#[tokio::test]
async fn a_peer_with_its_own_local_as_sees_that_as_in_the_open_and_the_path() {
    let handle = speaker(speaker_config());
    handle
        .requests
        .send(Request::Originate(net("10.244.3.0/26")))
        .unwrap();
    let pending = Pending::new(2, 2, PEER_AS).await;
    let config = PeerConfig {
        local_as: Some(65100),
        export: Some(Policy::Accept),
        ..pending.peer()
    };
    handle.requests.send(Request::AddPeer(config)).unwrap();
    let (stream, _) = pending.listener.accept().await.unwrap();
    let mut raw = client::Client::raw(stream, pending.address, PEER_AS);
    let Some(bgp::codec::Message::Open(open)) = raw.read().await else {
        panic!("no OPEN")
    };
    assert_eq!(open.asn(), 65100);
    raw.finish_handshake(open).await;
    let (attributes, _) = raw.route(net("10.244.3.0/26")).await;
    assert_eq!(attributes.as_path, Some(AsPath::sequence(vec![65100])));
}

#[tokio::test]
async fn allowas_in_accepts_our_as_in_the_path_that_many_times() {
    let handle = speaker(speaker_config());
    let pending = Pending::new(2, 2, PEER_AS).await;
    let config = PeerConfig {
        allowas_in: 1,
        import: Some(Policy::Accept),
        ..pending.peer()
    };
    let mut ebgp = pending.join(&handle, config, Offer::default()).await;
    let pending = Pending::new(2, 3, SPEAKER_AS).await;
    let config = pending.peer();
    let mut ibgp = pending.join(&handle, config, Offer::default()).await;
    let (once, twice) = (net("10.30.1.0/24"), net("10.30.2.0/24"));
    ebgp.announce(&[once], &external(&[PEER_AS, SPEAKER_AS]), hop(2))
        .await;
    ebgp.announce(
        &[twice],
        &external(&[PEER_AS, SPEAKER_AS, 65009, SPEAKER_AS]),
        hop(2),
    )
    .await;
    ibgp.route(once).await;
    ibgp.never(twice, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn next_hop_self_and_unchanged_apply_towards_ibgp_peers() {
    let handle = speaker(speaker_config());
    let pending = Pending::new(2, 2, PEER_AS).await;
    let config = PeerConfig {
        import: Some(Policy::Accept),
        ..pending.peer()
    };
    let mut ebgp = pending.join(&handle, config, Offer::default()).await;
    let pending = Pending::new(2, 3, SPEAKER_AS).await;
    let config = PeerConfig {
        next_hop: NextHopMode::SelfAlways,
        ..pending.peer()
    };
    let mut own = pending.join(&handle, config, Offer::default()).await;
    let pending = Pending::new(2, 4, SPEAKER_AS).await;
    let config = pending.peer();
    let mut unchanged = pending.join(&handle, config, Offer::default()).await;
    let route = net("10.40.0.0/24");
    ebgp.announce(&[route], &external(&[PEER_AS]), hop(2)).await;
    let (_, next_hop) = own.route(route).await;
    assert_eq!(next_hop, NextHop::V4(Ipv4Addr::LOCALHOST));
    let (attributes, next_hop) = unchanged.route(route).await;
    assert_eq!(next_hop, NextHop::V4(Ipv4Addr::new(192, 0, 2, 2)));
    assert_eq!(attributes.as_path, Some(AsPath::sequence(vec![PEER_AS])));
    assert_eq!(attributes.local_pref, Some(100));
}

#[tokio::test]
async fn originated_routes_carry_the_owners_attributes_and_withdraw() {
    let handle = speaker(speaker_config());
    let pending = Pending::new(2, 2, SPEAKER_AS).await;
    let config = pending.peer();
    let mut ibgp = pending.join(&handle, config, Offer::default()).await;
    let block = net("10.244.9.0/26");
    let attributes = Attributes {
        communities: vec![Community::new(64512, 42), Community::NO_EXPORT],
        med: Some(3),
        ..Attributes::default()
    };
    handle
        .requests
        .send(Request::OriginateWith {
            prefix: block,
            attributes,
        })
        .unwrap();
    let (got, _) = ibgp.route(block).await;
    assert_eq!(
        got.communities,
        [Community::new(64512, 42), Community::NO_EXPORT]
    );
    assert_eq!(got.med, Some(3));
    assert_eq!(got.origin, Some(bgp::codec::Origin::Igp));
    handle.requests.send(Request::Withdraw(block)).unwrap();
    ibgp.gone(block).await;
}

#[tokio::test]
async fn no_export_routes_stay_inside_the_as() {
    let handle = speaker(speaker_config());
    let block = net("10.244.10.0/26");
    handle
        .requests
        .send(Request::OriginateWith {
            prefix: block,
            attributes: Attributes {
                communities: vec![Community::NO_EXPORT],
                ..Attributes::default()
            },
        })
        .unwrap();
    let pending = Pending::new(2, 2, PEER_AS).await;
    let config = PeerConfig {
        export: Some(Policy::Accept),
        ..pending.peer()
    };
    let mut ebgp = pending.join(&handle, config, Offer::default()).await;
    ebgp.never(block, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn changing_a_peers_export_policy_keeps_every_session_up() {
    let handle = speaker(speaker_config());
    let block = net("10.244.11.0/26");
    handle.requests.send(Request::Originate(block)).unwrap();
    let pending = Pending::new(2, 2, PEER_AS).await;
    let config = pending.peer();
    let mut ebgp = pending
        .join(&handle, config.clone(), Offer::default())
        .await;
    let pending = Pending::new(2, 3, SPEAKER_AS).await;
    let ibgp_config = pending.peer();
    let mut ibgp = pending.join(&handle, ibgp_config, Offer::default()).await;
    ibgp.route(block).await;
    ebgp.never(block, Duration::from_millis(100)).await;
    let accepting = PeerConfig {
        export: Some(Policy::Accept),
        ..config
    };
    handle
        .requests
        .send(Request::UpdatePeer(accepting.clone()))
        .unwrap();
    ebgp.route(block).await;
    handle
        .requests
        .send(Request::UpdatePeer(PeerConfig {
            export: Some(Policy::Reject),
            ..accepting
        }))
        .unwrap();
    ebgp.gone(block).await;
    let status = client::status(&handle).await;
    assert!(status.iter().all(|s| s.established), "{status:?}");
    assert!(status.iter().all(|s| s.info.is_none()), "{status:?}");
}

#[tokio::test]
async fn ipv4_routes_with_ipv6_next_hops_pass_only_between_extended_next_hop_peers() {
    let mut handle = speaker(bgp::speaker::SpeakerConfig {
        cluster_id: Some(Ipv4Addr::new(10, 255, 0, 9)),
        ..speaker_config()
    });
    let extended = || Offer {
        capabilities: vec![bgp::codec::Capability::ExtendedNextHop(vec![
            bgp::codec::ExtendedNextHop {
                nlri: bgp::codec::Family::IPV4_UNICAST,
                next_hop_afi: 2,
            },
        ])],
    };
    let mut clients = Vec::new();
    for (host, offer) in [(2, extended()), (3, extended()), (4, Offer::default())] {
        let pending = Pending::new(2, host, SPEAKER_AS).await;
        let config = PeerConfig {
            rr_client: true,
            extended_next_hop: true,
            ..pending.peer()
        };
        clients.push(pending.join(&handle, config, offer).await);
    }
    assert!(clients[0].context.extended_next_hop);
    let route = net("10.50.0.0/24");
    let v6: IpAddr = "fd00::1".parse().unwrap();
    clients[0].announce(&[route], &internal(100), v6).await;
    let Change::Best { paths, .. } = best(&mut handle, route).await else {
        panic!("withdrawn")
    };
    assert_eq!(paths[0].next_hop, v6);
    let (_, next_hop) = clients[1].route(route).await;
    assert_eq!(
        next_hop,
        NextHop::V6 {
            global: "fd00::1".parse().unwrap(),
            link_local: None
        }
    );
    clients[2].never(route, Duration::from_millis(300)).await;
}

/// Refuses routes whose next hop is the address the view holds.
fn refuse_next_hop(
    refused: &IpAddr,
    prefix: IpNet,
    next_hop: IpAddr,
    _: Option<IpAddr>,
) -> Result<(), IpNet> {
    if next_hop == *refused {
        Err(prefix)
    } else {
        Ok(())
    }
}

#[tokio::test]
async fn hardening_a_path_the_hook_refuses_falls_back_to_the_next_and_is_revalidated() {
    let (view, seen) = tokio::sync::watch::channel(Arc::new(hop(3)));
    let (refused, mut refusals) = tokio::sync::mpsc::channel(8);
    let hook = JudgeHook::new(seen, refuse_next_hop, refused, Default::default());
    let hooks = Hooks {
        import: Some(Arc::new(hook)),
        export: None,
    };
    let mut handle = speaker::start_with(speaker_config(), hooks).unwrap();
    let block = net("10.244.7.0/26");
    let pending = Pending::new(2, 2, SPEAKER_AS).await;
    let config = pending.peer();
    let mut owner = pending.join(&handle, config, Offer::default()).await;
    owner.announce(&[block], &internal(100), hop(2)).await;
    let Change::Best { paths, .. } = best(&mut handle, block).await else {
        panic!("withdrawn")
    };
    assert_eq!(paths[0].next_hop, hop(2));
    // A better path (LOCAL_PREF 200) through the refused next hop changes nothing.
    let pending = Pending::new(2, 3, SPEAKER_AS).await;
    let config = pending.peer();
    let mut rogue = pending.join(&handle, config, Offer::default()).await;
    rogue.announce(&[block], &internal(200), hop(3)).await;
    assert_eq!(refusals.recv().await, Some(block));
    let (reply, routes) = tokio::sync::oneshot::channel();
    handle.requests.send(Request::Routes(reply)).unwrap();
    let routes = routes.await.unwrap();
    let held: Vec<(IpAddr, bool)> = routes[0]
        .1
        .iter()
        .map(|p| (p.next_hop, p.eligible))
        .collect();
    assert_eq!(held, [(hop(2), true), (hop(3), false)]);
    // The view changes: the owner's path is refused, the other one selected.
    view.send_replace(Arc::new(hop(2)));
    handle.requests.send(Request::Revalidate).unwrap();
    let Change::Best { paths, .. } = best(&mut handle, block).await else {
        panic!("withdrawn")
    };
    assert_eq!(paths[0].next_hop, hop(3));
    // Refused everywhere: the owner is told the prefix is gone.
    view.send_replace(Arc::new(hop(3)));
    handle.requests.send(Request::Revalidate).unwrap();
    best(&mut handle, block).await;
    owner.withdraw(&[block]).await;
    assert!(matches!(
        best(&mut handle, block).await,
        Change::Withdrawn { .. }
    ));
}

#[tokio::test]
async fn hardening_reflection_attributes_from_a_peer_that_does_not_reflect_are_dropped() {
    let mut handle = speaker(speaker_config());
    let spoofed = Attributes {
        originator_id: Some(Ipv4Addr::new(192, 0, 2, 99)),
        cluster_list: vec![Ipv4Addr::new(1, 1, 1, 1)],
        ..internal(100)
    };
    for (host, keep) in [(2, false), (3, true)] {
        let pending = Pending::new(2, host, SPEAKER_AS).await;
        let config = PeerConfig {
            keep_reflection_attributes: keep,
            ..pending.peer()
        };
        let mut peer = pending.join(&handle, config, Offer::default()).await;
        let prefix = net(&format!("10.244.{host}.0/26"));
        peer.announce(&[prefix], &spoofed, hop(host)).await;
        let Change::Best { paths, .. } = best(&mut handle, prefix).await else {
            panic!("withdrawn")
        };
        let attributes = &paths[0].attributes;
        if keep {
            assert_eq!(attributes.originator_id, spoofed.originator_id);
            assert_eq!(attributes.cluster_list, spoofed.cluster_list);
        } else {
            assert_eq!(attributes.originator_id, None);
            assert!(attributes.cluster_list.is_empty());
        }
    }
}

#[tokio::test]
async fn ipv6_routes_over_an_ipv4_session_carry_the_speakers_ipv6_address_when_it_has_one() {
    let handle = speaker(speaker_config());
    let block = net("fd00:244::/122");
    handle.requests.send(Request::Originate(block)).unwrap();
    let both = || Offer {
        capabilities: vec![
            bgp::codec::Capability::Multiprotocol(bgp::codec::Family::IPV4_UNICAST),
            bgp::codec::Capability::Multiprotocol(bgp::codec::Family::IPV6_UNICAST),
        ],
    };
    let own_v6: IpAddr = "fd00:1::7".parse().unwrap();
    let pending = Pending::new(2, 2, SPEAKER_AS).await;
    let config = PeerConfig {
        other_family_address: Some(own_v6),
        ..pending.peer()
    };
    let mut dual = pending.join(&handle, config, both()).await;
    let pending = Pending::new(2, 3, SPEAKER_AS).await;
    let config = pending.peer();
    let mut plain = pending.join(&handle, config, both()).await;
    let (_, next_hop) = dual.route(block).await;
    assert_eq!(
        next_hop,
        NextHop::V6 {
            global: "fd00:1::7".parse().unwrap(),
            link_local: None
        }
    );
    // Without an IPv6 address of its own, the speaker can only name its IPv4 one.
    let (_, next_hop) = plain.route(block).await;
    assert_eq!(
        next_hop,
        NextHop::V6 {
            global: Ipv4Addr::LOCALHOST.to_ipv6_mapped(),
            link_local: None
        }
    );
    // An IPv4 route over the same session keeps the session's own address.
    let v4 = net("10.244.0.0/26");
    handle.requests.send(Request::Originate(v4)).unwrap();
    let (_, next_hop) = dual.route(v4).await;
    assert_eq!(next_hop, NextHop::V4(Ipv4Addr::LOCALHOST));
}
