//! Route refresh (RFC 2918) and enhanced route refresh (RFC 7313) over loopback:
//! the speaker offers both (the enhanced one beside graceful restart), answers a request between a beginning and an end
//! marker, and at the end of a peer's own refresh removes what the peer did not
//! announce again.

mod client;

use std::net::{IpAddr, Ipv4Addr};

use bgp::codec::{Capability, Family, Message, RouteRefresh, RouteRefreshKind};
use bgp::rib::Change;
use bgp::session::GracefulRestartConfig;
use bgp::speaker::{Request, SpeakerConfig};
use client::{Client, Pending, SPEAKER_AS, best, internal, net, speaker, speaker_config};
use ipnet::IpNet;

fn hop(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, n))
}

fn marker(kind: RouteRefreshKind) -> Message {
    Message::RouteRefresh(RouteRefresh {
        family: Family::IPV4_UNICAST,
        kind,
    })
}

/// An iBGP client of a fresh speaker, offering `capabilities`; returns it with
/// the capabilities of the speaker's OPEN.
async fn join(
    handle: &bgp::speaker::SpeakerHandle,
    host: u8,
    capabilities: Vec<Capability>,
) -> (Client, Vec<Capability>) {
    let pending = Pending::new(7, host, SPEAKER_AS).await;
    handle
        .requests
        .send(Request::AddPeer(pending.peer()))
        .unwrap();
    let (stream, _) = pending.listener.accept().await.unwrap();
    let mut client = Client::raw(stream, pending.address, SPEAKER_AS);
    let Some(Message::Open(open)) = client.read().await else {
        panic!("no OPEN")
    };
    let offered = open.capabilities.clone();
    client.finish_handshake_with(open, capabilities).await;
    (client, offered)
}

/// A speaker offering graceful restart, as tabby's daemons do.
fn graceful() -> SpeakerConfig {
    SpeakerConfig {
        graceful_restart: Some(GracefulRestartConfig {
            restart_time: 120,
            restarting: false,
            forwarding_preserved: true,
        }),
        ..speaker_config()
    }
}

fn enhanced() -> Vec<Capability> {
    vec![Capability::RouteRefresh, Capability::EnhancedRouteRefresh]
}

/// Reads until the speaker's End of Route Refresh, returning the prefixes
/// announced before it; fails on an UPDATE before the beginning.
async fn refreshed(client: &mut Client) -> Vec<IpNet> {
    let mut begun = false;
    let mut announced = Vec::new();
    loop {
        let message = tokio::time::timeout(client::TIMEOUT, client.read())
            .await
            .expect("no End of Route Refresh")
            .expect("the speaker closed the session");
        match message {
            Message::RouteRefresh(r) if r.kind == RouteRefreshKind::Begin => begun = true,
            Message::RouteRefresh(r) if r.kind == RouteRefreshKind::End => {
                assert!(begun, "an end without a beginning");
                return announced;
            }
            Message::Update(update) => {
                assert!(begun, "an UPDATE before the Beginning of Route Refresh");
                announced.extend(update.nlri.iter().map(|n| n.prefix));
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn enhanced_route_refresh_is_offered_and_a_request_is_answered_between_begin_and_end() {
    let handle = speaker(graceful());
    let blocks = [net("10.244.0.0/26"), net("10.244.0.64/26")];
    for block in blocks {
        handle.requests.send(Request::Originate(block)).unwrap();
    }
    let (mut client, offered) = join(&handle, 2, enhanced()).await;
    assert!(offered.contains(&Capability::RouteRefresh));
    assert!(offered.contains(&Capability::EnhancedRouteRefresh));
    client
        .until("both blocks and End-of-RIB", |c| {
            c.routes.len() == 2 && c.end_of_rib > 0
        })
        .await;
    client
        .send(Message::RouteRefresh(RouteRefresh::request(
            Family::IPV4_UNICAST,
        )))
        .await;
    let mut again = refreshed(&mut client).await;
    again.sort();
    assert_eq!(again, blocks);
}

#[tokio::test]
async fn at_the_end_of_a_peers_route_refresh_what_it_did_not_announce_again_is_withdrawn() {
    let mut handle = speaker(graceful());
    let (mut client, _) = join(&handle, 3, enhanced()).await;
    let (kept, dropped) = (net("10.9.1.0/24"), net("10.9.2.0/24"));
    client
        .announce(&[kept, dropped], &internal(100), hop(3))
        .await;
    best(&mut handle, dropped).await;
    client.send(marker(RouteRefreshKind::Begin)).await;
    client.announce(&[kept], &internal(100), hop(3)).await;
    client.send(marker(RouteRefreshKind::End)).await;
    assert_eq!(
        best(&mut handle, dropped).await,
        Change::Withdrawn { prefix: dropped }
    );
    let status = client::status(&handle).await;
    assert_eq!(status[0].prefixes_accepted, 1, "{kept} stays");
}

#[tokio::test]
async fn without_enhanced_route_refresh_the_markers_change_nothing() {
    let mut handle = speaker(graceful());
    let (mut client, _) = join(&handle, 4, vec![Capability::RouteRefresh]).await;
    let (first, second, last) = (net("10.9.1.0/24"), net("10.9.2.0/24"), net("10.9.3.0/24"));
    client
        .announce(&[first, second], &internal(100), hop(4))
        .await;
    best(&mut handle, second).await;
    client.send(marker(RouteRefreshKind::Begin)).await;
    client.send(marker(RouteRefreshKind::End)).await;
    // Read in order: once `last` is in, the markers were handled.
    client.announce(&[last], &internal(100), hop(4)).await;
    best(&mut handle, last).await;
    let status = client::status(&handle).await;
    assert_eq!(status[0].prefixes_accepted, 3);
}
