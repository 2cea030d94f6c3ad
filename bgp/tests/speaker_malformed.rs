//! How a session with tabby's speaker reacts to malformed messages from a peer,
//! sent byte by byte from a hand-driven peer over loopback (RFC 4271 6, RFC 7606):
//! a malformed attribute withdraws the routes and keeps the session; a broken
//! header resets it with the NOTIFICATION RFC 4271 prescribes.

mod raw_peer;

use std::net::Ipv4Addr;

use bgp::codec::{AsPath, Attributes, Message, Nlri, Origin, Update};
use bgp::rib::Change;
use bgp::speaker::{self, Notice, PeerConfig, Policy, Request, SpeakerConfig, SpeakerHandle};
use ipnet::IpNet;
use raw_peer::{PEER_AS, RawPeer, TIMEOUT, open};
use tokio::net::TcpListener;

fn prefix() -> IpNet {
    "10.1.0.0/24".parse().unwrap()
}

/// A session from a fresh speaker to a raw peer, Established; the peer has
/// announced `prefix()` and the speaker has taken it.
async fn established() -> (SpeakerHandle, RawPeer) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut handle = speaker::start(SpeakerConfig::new(64512, Ipv4Addr::new(10, 0, 0, 1))).unwrap();
    let peer = PeerConfig {
        port,
        import: Some(Policy::Accept),
        ..PeerConfig::new("127.0.0.1".parse().unwrap(), Some(PEER_AS))
    };
    handle.requests.send(Request::AddPeer(peer)).unwrap();
    let mut raw = RawPeer::new(listener.accept().await.unwrap().0);
    assert!(matches!(raw.read().await, Some(Message::Open(_))));
    raw.send(open(Ipv4Addr::new(10, 0, 0, 2))).await;
    assert_eq!(raw.read().await, Some(Message::Keepalive));
    raw.send(Message::Keepalive).await;
    // Both OPENs carry the 4-octet AS capability.
    raw.context.four_octet_as = true;
    raw.send(announcement()).await;
    match next_best(&mut handle).await {
        Change::Best { prefix: p, .. } if p == prefix() => {}
        other => panic!("expected the announced route, got {other:?}"),
    }
    (handle, raw)
}

fn announcement() -> Message {
    Message::Update(Update {
        attributes: Attributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence(vec![PEER_AS])),
            ..Attributes::default()
        },
        // Not the speaker's own address (127.0.0.1 here): that would be refused.
        next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
        nlri: vec![Nlri::new(prefix())],
        ..Update::default()
    })
}

async fn next_best(handle: &mut SpeakerHandle) -> Change {
    tokio::time::timeout(TIMEOUT, async {
        loop {
            if let Some(Notice::Best(change)) = handle.notices.recv().await {
                return change;
            }
        }
    })
    .await
    .expect("no route change")
}

#[tokio::test]
async fn an_invalid_origin_withdraws_the_routes_and_keeps_the_session() {
    let (mut handle, mut raw) = established().await;
    let mut bytes = raw.encode(announcement());
    // Header (19), withdrawn length (2), attributes length (2), then ORIGIN:
    // flags, type 1, length 1, value.
    assert_eq!(bytes[24], 1, "ORIGIN is the first attribute");
    bytes[26] = 7;
    raw.send_bytes(&bytes).await;
    assert_eq!(
        next_best(&mut handle).await,
        Change::Withdrawn { prefix: prefix() }
    );
    // RFC 7606 treat-as-withdraw: no NOTIFICATION, the session goes on.
    raw.send(Message::Keepalive).await;
    raw.send(announcement()).await;
    assert!(matches!(next_best(&mut handle).await, Change::Best { .. }));
}

#[tokio::test]
async fn a_broken_marker_resets_the_session_with_1_1_and_drops_its_routes() {
    let (mut handle, mut raw) = established().await;
    let mut bytes = raw.encode(Message::Keepalive);
    bytes[0] = 0;
    raw.send_bytes(&bytes).await;
    loop {
        match raw.read().await {
            Some(Message::Notification(n)) => {
                assert_eq!((n.code, n.subcode), (1, 1));
                break;
            }
            // End-of-RIB and keepalives sent before the error arrived.
            Some(Message::Keepalive | Message::Update(_)) => continue,
            other => panic!("expected NOTIFICATION 1/1, got {other:?}"),
        }
    }
    assert_eq!(raw.read().await, None, "the connection must close");
    assert_eq!(
        next_best(&mut handle).await,
        Change::Withdrawn { prefix: prefix() }
    );
}

#[tokio::test]
async fn a_message_longer_than_allowed_resets_the_session_with_1_2_and_the_length() {
    let (_handle, mut raw) = established().await;
    let mut bytes = raw.encode(Message::Keepalive);
    // A KEEPALIVE must be exactly 19 octets.
    bytes[16..18].copy_from_slice(&20u16.to_be_bytes());
    bytes.push(0);
    raw.send_bytes(&bytes).await;
    loop {
        match raw.read().await {
            Some(Message::Notification(n)) => {
                assert_eq!((n.code, n.subcode, n.data), (1, 2, vec![0, 20]));
                break;
            }
            // End-of-RIB and keepalives sent before the error arrived.
            Some(Message::Keepalive | Message::Update(_)) => continue,
            other => panic!("expected NOTIFICATION 1/2, got {other:?}"),
        }
    }
}
