//! Connection collision (RFC 4271 6.8) in the session driver, over loopback: the
//! session's own connection is in OpenSent when the peer's arrives; the peer's OPEN
//! decides which one lives, and the other is closed with Cease 6/7.

mod raw_peer;

use std::net::Ipv4Addr;

use bgp::codec::Message;
use bgp::session::{Command, Event, SessionConfig, spawn};
use bgp::transport::{Endpoint, TtlPolicy};
use raw_peer::{PEER_AS, RawPeer, TIMEOUT, open};
use tokio::net::{TcpListener, TcpStream};

/// Sets up the collision and returns (our connection, the peer's connection, the
/// session's events) after the peer's OPEN went out on its connection.
async fn collide(
    local_id: Ipv4Addr,
    peer_id: Ipv4Addr,
) -> (RawPeer, RawPeer, tokio::sync::mpsc::Receiver<Event>) {
    let peer = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = Endpoint {
        remote: peer.local_addr().unwrap(),
        local: None,
        md5_key: None,
        ttl: TtlPolicy::Hops(64),
    };
    let handle = spawn(SessionConfig::new(64512, local_id, Some(PEER_AS)), endpoint);
    // The session's own connection reaches the peer and sends OPEN: OpenSent.
    let mut ours = RawPeer::new(peer.accept().await.unwrap().0);
    assert!(matches!(ours.read().await, Some(Message::Open(_))));
    // The peer's connection, as the speaker's listener would hand it over.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let connecting = TcpStream::connect(listener.local_addr().unwrap());
    let mut theirs = RawPeer::new(connecting.await.unwrap());
    let (accepted, _) = listener.accept().await.unwrap();
    handle.commands.send(Command::Accepted(accepted)).unwrap();
    theirs.send(open(peer_id)).await;
    // Keep the command channel open: dropping it stops the session.
    std::mem::forget(handle.commands);
    (ours, theirs, handle.events)
}

fn is_collision_cease(message: Option<Message>) -> bool {
    matches!(message, Some(Message::Notification(n)) if (n.code, n.subcode) == (6, 7))
}

#[tokio::test]
async fn a_peer_with_the_higher_identifier_keeps_its_connection() {
    let (mut ours, mut theirs, mut events) =
        collide(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)).await;
    assert!(is_collision_cease(ours.read().await));
    assert_eq!(ours.read().await, None, "ours must close");

    assert!(matches!(theirs.read().await, Some(Message::Open(_))));
    assert_eq!(theirs.read().await, Some(Message::Keepalive));
    theirs.send(Message::Keepalive).await;
    let up = tokio::time::timeout(TIMEOUT, events.recv()).await.unwrap();
    assert!(matches!(up, Some(Event::Up { .. })), "{up:?}");
}

#[tokio::test]
async fn a_peer_with_the_lower_identifier_has_its_connection_closed() {
    let (mut ours, mut theirs, _events) =
        collide(Ipv4Addr::new(10, 0, 0, 5), Ipv4Addr::new(10, 0, 0, 2)).await;
    assert!(is_collision_cease(theirs.read().await));
    assert_eq!(theirs.read().await, None);
    // Our connection carries on: the peer's OPEN there is answered.
    ours.send(open(Ipv4Addr::new(10, 0, 0, 2))).await;
    assert_eq!(ours.read().await, Some(Message::Keepalive));
}
