//! How routes flow through the speaker under load, over loopback: bursts become
//! few dense UPDATEs, a peer that stops reading holds up nobody and still gets
//! everything later, and the counters, the prefix limit, route refresh and the
//! dynamic-neighbour cap behave.

mod client;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bgp::codec::{Family, Message, Notification, RouteRefresh, RouteRefreshKind};
use bgp::session::State;
use bgp::speaker::{ListenRange, PeerConfig, Request, SpeakerConfig};
use client::{
    Client, Offer, Pending, SPEAKER_AS, TIMEOUT, internal, net, speaker, speaker_config, status,
};
use ipnet::{IpNet, Ipv4Net};
use tokio::net::{TcpListener, TcpSocket};

fn hop() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))
}

fn host_routes(count: u32) -> Vec<IpNet> {
    (0..count)
        .map(|i| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + i), 32).unwrap()))
        .collect()
}

fn reflector() -> SpeakerConfig {
    SpeakerConfig {
        cluster_id: Some(Ipv4Addr::new(10, 255, 0, 1)),
        ..speaker_config()
    }
}

async fn rr_client(handle: &bgp::speaker::SpeakerHandle, pending: Pending) -> Client {
    let config = PeerConfig {
        rr_client: true,
        ..pending.peer()
    };
    pending.join(handle, config, Offer::default()).await
}

#[tokio::test]
async fn a_burst_of_routes_reaches_a_peer_in_densely_packed_updates() {
    let handle = speaker(reflector());
    let mut feeder = rr_client(&handle, Pending::new(3, 2, SPEAKER_AS).await).await;
    let mut monitor = rr_client(&handle, Pending::new(3, 3, SPEAKER_AS).await).await;
    let routes = host_routes(20_000);
    feeder.announce(&routes, &internal(100), hop()).await;
    monitor
        .until("all 20,000 routes", |c| c.routes.len() == 20_000)
        .await;
    // A 4096-byte UPDATE holds about 800 /32s: 25 would do. Pipelining (sending
    // while still receiving) may cut a few short, never one per route.
    println!("20,000 routes in {} UPDATEs", monitor.updates);
    assert!(monitor.updates <= 60, "{} UPDATEs", monitor.updates);
}

/// A client whose socket takes little before the sender blocks.
async fn small_buffer_listener(address: Ipv4Addr) -> TcpListener {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket
        .bind(SocketAddr::new(IpAddr::V4(address), 0))
        .unwrap();
    socket.listen(8).unwrap()
}

#[tokio::test]
async fn a_peer_that_stops_reading_holds_up_nobody_and_gets_everything_later() {
    let handle = speaker(reflector());
    let mut feeder = rr_client(&handle, Pending::new(3, 2, SPEAKER_AS).await).await;
    let address = Ipv4Addr::new(127, 0, 3, 4);
    let stalled = Pending {
        listener: small_buffer_listener(address).await,
        address: IpAddr::V4(address),
        asn: SPEAKER_AS,
    };
    let mut stalled = rr_client(&handle, stalled).await;
    let mut monitor = rr_client(&handle, Pending::new(3, 3, SPEAKER_AS).await).await;
    let routes = host_routes(200_000);
    feeder.announce(&routes, &internal(100), hop()).await;
    monitor
        .until("all 200,000 routes while another peer reads nothing", |c| {
            c.routes.len() == 200_000
        })
        .await;
    // The speaker still answers its owner.
    let peers = tokio::time::timeout(TIMEOUT, status(&handle))
        .await
        .unwrap();
    assert!(peers.iter().all(|p| p.state == State::Established));
    // Withdrawing half while it is stuck: it ends with exactly the other half.
    feeder.withdraw(&routes[..100_000]).await;
    monitor
        .until("the withdrawals", |c| c.routes.len() == 100_000)
        .await;
    stalled
        .until("the remaining 100,000 routes, late", |c| {
            c.routes.len() == 100_000
                && c.routes
                    .keys()
                    .all(|p| routes[100_000..].binary_search(p).is_ok())
        })
        .await;
}

#[tokio::test]
async fn status_reports_state_counters_and_the_last_error() {
    let handle = speaker(speaker_config());
    let block = net("10.244.0.0/26");
    handle.requests.send(Request::Originate(block)).unwrap();
    let pending = Pending::new(3, 2, SPEAKER_AS).await;
    let config = pending.peer();
    let mut peer = pending.join(&handle, config, Offer::default()).await;
    peer.announce(&[net("10.9.0.0/24")], &internal(100), hop())
        .await;
    peer.route(block).await;
    tokio::time::timeout(TIMEOUT, async {
        loop {
            let s = &status(&handle).await[0];
            if s.prefixes_accepted == 1 {
                assert_eq!(s.state, State::Established);
                assert!(s.uptime.is_some());
                assert!(s.updates_received >= 1 && s.messages_received >= 2, "{s:?}");
                assert!(s.updates_sent >= 2, "the block and End-of-RIB: {s:?}");
                assert_eq!(s.prefixes_advertised, 1);
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    peer.send(Message::Notification(
        Notification::administrative_shutdown("maintenance"),
    ))
    .await;
    tokio::time::timeout(TIMEOUT, async {
        loop {
            let s = &status(&handle).await[0];
            if !s.established {
                assert_eq!(
                    s.info.as_deref(),
                    Some("received NOTIFICATION 6/2 \"maintenance\"")
                );
                assert_eq!(s.uptime, None);
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
}

/// On the wire: Cease/1 with AFI, SAFI and the limit, and the session back after
/// the wait. How long it stays away is the core's and the FSM's to show
/// (`speaker::tests`, `session::transitions`), without clocks.
#[tokio::test]
async fn a_peer_over_its_prefix_limit_is_reset_with_cease_1_and_comes_back_later() {
    let handle = speaker(speaker_config());
    let pending = Pending::new(3, 2, SPEAKER_AS).await;
    let config = PeerConfig {
        max_prefixes: Some(2),
        max_prefixes_restart: Duration::from_millis(200),
        ..pending.peer()
    };
    handle.requests.send(Request::AddPeer(config)).unwrap();
    let listener_address = pending.address;
    let mut peer = pending.accept(Offer::default()).await;
    let listener = peer.listener.take().unwrap();
    peer.announce(&host_routes(3), &internal(100), hop()).await;
    loop {
        match peer.read().await {
            Some(Message::Notification(n)) => {
                assert_eq!((n.code, n.subcode), (6, 1));
                assert_eq!(n.data, [0, 1, 1, 0, 0, 0, 2], "AFI, SAFI and the limit");
                break;
            }
            Some(_) => continue,
            None => panic!("closed without NOTIFICATION"),
        }
    }
    let back = tokio::time::timeout(TIMEOUT, listener.accept()).await;
    assert!(back.is_ok(), "never came back to {listener_address}");
}

#[tokio::test]
async fn a_route_refresh_is_answered_with_the_whole_table() {
    let handle = speaker(speaker_config());
    let blocks = [net("10.244.0.0/26"), net("10.244.0.64/26")];
    for block in blocks {
        handle.requests.send(Request::Originate(block)).unwrap();
    }
    let pending = Pending::new(3, 2, SPEAKER_AS).await;
    let config = pending.peer();
    let offer = Offer {
        capabilities: vec![bgp::codec::Capability::RouteRefresh],
    };
    let mut peer = pending.join(&handle, config, offer).await;
    peer.until("both blocks", |c| c.routes.len() == 2).await;
    peer.routes.clear();
    peer.send(Message::RouteRefresh(RouteRefresh {
        family: Family::IPV4_UNICAST,
        kind: RouteRefreshKind::Request,
    }))
    .await;
    peer.until("both blocks again", |c| c.routes.len() == 2)
        .await;
}

#[tokio::test]
async fn a_listen_range_takes_dynamic_neighbours_up_to_its_cap() {
    let listen = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 4, 1)), 0);
    // Find a free port for the speaker's listener.
    let port = std::net::TcpListener::bind(listen)
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = SocketAddr::new(listen.ip(), port);
    let template = PeerConfig {
        ttl: bgp::transport::TtlPolicy::Hops(64),
        ..PeerConfig::new(listen.ip(), Some(SPEAKER_AS))
    };
    let handle = speaker(SpeakerConfig {
        listen: Some(listen),
        listen_ranges: vec![ListenRange {
            prefix: net("127.0.4.0/24"),
            max_sessions: 2,
            template,
        }],
        ..speaker_config()
    });
    let mut up = Vec::new();
    for host in [2, 3] {
        let mut c = dial(listen, host).await;
        let Some(Message::Open(open)) = c.read().await else {
            panic!("no OPEN for 127.0.4.{host}")
        };
        c.finish_handshake(open).await;
        up.push(c);
    }
    let mut third = dial(listen, 4).await;
    assert_eq!(third.read().await, None, "a third session over the cap");
    let peers = status(&handle).await;
    assert_eq!(peers.len(), 2);
    // One leaves; its place is free again.
    drop(up.pop());
    tokio::time::timeout(TIMEOUT, async {
        while status(&handle).await.len() != 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the dynamic neighbour was never forgotten");
    let mut again = dial(listen, 4).await;
    assert!(matches!(again.read().await, Some(Message::Open(_))));
}

async fn dial(listen: SocketAddr, host: u8) -> Client {
    let socket = TcpSocket::new_v4().unwrap();
    let from = IpAddr::V4(Ipv4Addr::new(127, 0, 4, host));
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    let stream = socket.connect(listen).await.unwrap();
    Client::raw(stream, from, SPEAKER_AS)
}
