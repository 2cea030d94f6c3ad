//! Route reflection (RFC 4456) by the speaker, with clients over loopback: what is
//! reflected to whom, the attributes added, and the loops refused.

mod client;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use bgp::speaker::SpeakerConfig;
use client::{Client, Offer, Pending, SPEAKER_AS, internal, net, speaker, speaker_config};

const CLUSTER: Ipv4Addr = Ipv4Addr::new(10, 255, 0, 9);

fn reflector() -> SpeakerConfig {
    SpeakerConfig {
        cluster_id: Some(CLUSTER),
        ..speaker_config()
    }
}

fn hop(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, n))
}

/// Clients 127.0.1.2, .3, ... of `handle`; `clients` of them RR clients.
async fn join(handle: &bgp::speaker::SpeakerHandle, count: u8, clients: u8) -> Vec<Client> {
    let mut joined = Vec::new();
    for n in 0..count {
        let pending = Pending::new(1, 2 + n, SPEAKER_AS).await;
        let config = bgp::speaker::PeerConfig {
            rr_client: n < clients,
            ..pending.peer()
        };
        joined.push(pending.join(handle, config, Offer::default()).await);
    }
    joined
}

#[tokio::test]
async fn a_clients_route_reaches_the_other_clients_with_originator_id_and_cluster_list() {
    let handle = speaker(reflector());
    let mut c = join(&handle, 3, 3).await;
    let route = net("10.1.0.0/24");
    c[0].announce(&[route], &internal(150), hop(2)).await;
    for other in &mut c[1..] {
        let (attributes, next_hop) = other.route(route).await;
        assert_eq!(attributes.originator_id, Some(Ipv4Addr::new(127, 0, 1, 2)));
        assert_eq!(attributes.cluster_list, [CLUSTER]);
        assert_eq!(attributes.local_pref, Some(150));
        assert_eq!(
            next_hop,
            bgp::codec::NextHop::V4(Ipv4Addr::new(192, 0, 2, 2))
        );
    }
    c[0].never(route, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_route_carrying_our_cluster_id_is_dropped() {
    let handle = speaker(reflector());
    let mut c = join(&handle, 2, 2).await;
    let looped = net("10.2.0.0/24");
    let mut attributes = internal(100);
    attributes.originator_id = Some(Ipv4Addr::new(10, 7, 7, 7));
    attributes.cluster_list = vec![Ipv4Addr::new(10, 8, 8, 8), CLUSTER];
    c[0].announce(&[looped], &attributes, hop(2)).await;
    let fine = net("10.3.0.0/24");
    c[0].announce(&[fine], &internal(100), hop(2)).await;
    c[1].route(fine).await;
    assert!(!c[1].routes.contains_key(&looped));
}

#[tokio::test]
async fn a_route_whose_originator_id_is_ours_is_dropped() {
    let handle = speaker(reflector());
    let mut c = join(&handle, 2, 2).await;
    let looped = net("10.2.0.0/24");
    let mut attributes = internal(100);
    attributes.originator_id = Some(speaker_config().router_id);
    c[0].announce(&[looped], &attributes, hop(2)).await;
    let fine = net("10.3.0.0/24");
    c[0].announce(&[fine], &internal(100), hop(2)).await;
    c[1].route(fine).await;
    assert!(!c[1].routes.contains_key(&looped));
}

#[tokio::test]
async fn without_client_to_client_reflection_client_routes_reach_only_non_clients() {
    let handle = speaker(SpeakerConfig {
        client_to_client: false,
        ..reflector()
    });
    // Two clients and a non-client.
    let mut c = join(&handle, 3, 2).await;
    let route = net("10.4.0.0/24");
    c[0].announce(&[route], &internal(100), hop(2)).await;
    c[2].route(route).await;
    c[1].never(route, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_non_clients_route_reaches_clients_only() {
    let handle = speaker(reflector());
    let mut c = join(&handle, 3, 1).await;
    let route = net("10.5.0.0/24");
    c[1].announce(&[route], &internal(100), hop(3)).await;
    c[0].route(route).await;
    c[2].never(route, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn an_add_path_client_gets_every_path_and_loses_only_the_withdrawn_one() {
    use bgp::codec::{AddPathMode, Capability, Family, Message};
    use std::collections::BTreeSet;

    let handle = speaker(reflector());
    let mut c = join(&handle, 2, 2).await;
    let pending = Pending::new(1, 9, SPEAKER_AS).await;
    let config = bgp::speaker::PeerConfig {
        rr_client: true,
        add_path_send: true,
        ..pending.peer()
    };
    let offer = Offer {
        capabilities: vec![Capability::AddPath(vec![(
            Family::IPV4_UNICAST,
            AddPathMode::Receive,
        )])],
    };
    let mut many = pending.join(&handle, config, offer).await;
    assert!(many.context.add_path.receive_ipv4);
    let route = net("10.6.0.0/24");
    c[0].announce(&[route], &internal(100), hop(2)).await;
    c[1].announce(&[route], &internal(100), hop(3)).await;
    // (path id, next hop) pairs the add-path client holds for the route.
    let mut held: BTreeSet<(u32, bgp::codec::NextHop)> = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + client::TIMEOUT;
    while held.len() < 2 {
        let Ok(Some(Message::Update(update))) =
            tokio::time::timeout_at(deadline, many.read()).await
        else {
            panic!("both paths never arrived: {held:?}");
        };
        if let Some(next_hop) = update.next_hop {
            for n in update.nlri.iter().filter(|n| n.prefix == route) {
                held.insert((
                    n.path_id.expect("a path id"),
                    bgp::codec::NextHop::V4(next_hop),
                ));
            }
        }
    }
    let ids: BTreeSet<u32> = held.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids.len(), 2, "{held:?}");
    c[0].withdraw(&[route]).await;
    let gone = loop {
        let Ok(Some(Message::Update(update))) =
            tokio::time::timeout_at(deadline, many.read()).await
        else {
            panic!("no withdrawal");
        };
        if let Some(n) = update.withdrawn.iter().find(|n| n.prefix == route) {
            break n.path_id.expect("a path id");
        }
    };
    let (first_path, _) = held
        .iter()
        .find(|(_, next_hop)| *next_hop == bgp::codec::NextHop::V4(Ipv4Addr::new(192, 0, 2, 2)))
        .unwrap();
    assert_eq!(gone, *first_path, "the withdrawn path's id, not the other");
}
