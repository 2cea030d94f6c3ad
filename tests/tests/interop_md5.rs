//! TCP-MD5 (RFC 2385) against real BIRD, FRR and GoBGP: each is configured with a
//! password for a tabby node; tabby's transport connects with the same key and gets
//! the daemon's OPEN, and with another key gets nothing (the kernel drops the SYN).
//! Then the same with tabby's speaker: the session comes up with the right key and
//! never with a wrong one.

use std::net::SocketAddr;
use std::time::Duration;

use bgp::speaker::{self, PeerConfig, Request, SpeakerConfig};
use bgp::transport::{Endpoint, TtlPolicy, connect};
use harness::peers::{BgpConfig, BgpPeer, Bird, Frr, GoBgp, Neighbor};
use harness::{Lab, Node, require_root};
use tokio::io::AsyncReadExt;

const PASSWORD: &str = "tabby-md5";
/// BGP header: 16-octet marker of ones, length, type 1 (OPEN).
const OPEN_TYPE: u8 = 1;

fn lab(test: &str) -> Lab {
    Lab::new(test)
        .subnet("a", "10.0.1.0/24")
        .node("peer", "a")
        .node("tabby", "a")
        .build()
        .unwrap()
}

/// The daemon's configuration: one passive neighbour, the tabby node, with the password.
fn config(peer: &Node, tabby: &Node) -> BgpConfig {
    BgpConfig::new(65001, peer.ipv4().unwrap()).neighbor(
        Neighbor::new(tabby.address(), 65002)
            .passive()
            .password(PASSWORD),
    )
}

/// From `tabby`, connects to `peer` port 179 signing with `key` and returns the type
/// of the first message received, or `None` when nothing arrives within five seconds.
fn first_message(tabby: &Node, peer: &Node, key: &str) -> Option<u8> {
    let endpoint = Endpoint {
        remote: SocketAddr::new(peer.address(), 179),
        local: Some(tabby.address()),
        md5_key: Some(key.as_bytes().to_vec().into()),
        ttl: TtlPolicy::Hops(1),
    };
    tabby
        .run(|| {
            harness::runtime().block_on(async {
                let session = async {
                    let mut stream = connect(&endpoint).await.ok()?;
                    let mut header = [0u8; 19];
                    stream.read_exact(&mut header).await.ok()?;
                    assert_eq!(header[..16], [0xff; 16], "not a BGP marker: {header:?}");
                    Some(header[18])
                };
                tokio::time::timeout(Duration::from_secs(5), session)
                    .await
                    .ok()
                    .flatten()
            })
        })
        .unwrap()
}

/// Waits for the daemon to listen, then checks both keys.
fn check(tabby: &Node, peer: &Node) {
    harness::wait_until(
        Duration::from_secs(20),
        "the peer listens on port 179",
        || {
            let sockets = peer.exec("ss", &["-Hltn", "sport", "= :179"])?;
            Ok(if sockets.trim().is_empty() {
                Err("nothing listens on :179".to_owned())
            } else {
                Ok(())
            })
        },
    )
    .unwrap();
    assert_eq!(first_message(tabby, peer, "wrong-key"), None);
    assert_eq!(first_message(tabby, peer, PASSWORD), Some(OPEN_TYPE));
}

#[test]
#[ignore = "needs root"]
fn interop_md5_bird_sends_open_only_over_a_correctly_signed_connection() {
    require_root();
    let lab = lab("interop_md5_bird_sends_open_only_over_a_correctly_signed_connection");
    let (peer, tabby) = (lab.node("peer"), lab.node("tabby"));
    let _bird = Bird::start(peer, &config(peer, tabby)).unwrap();
    check(tabby, peer);
}

#[test]
#[ignore = "needs root"]
fn interop_md5_frr_sends_open_only_over_a_correctly_signed_connection() {
    require_root();
    let lab = lab("interop_md5_frr_sends_open_only_over_a_correctly_signed_connection");
    let (peer, tabby) = (lab.node("peer"), lab.node("tabby"));
    let _frr = Frr::start(peer, &config(peer, tabby)).unwrap();
    check(tabby, peer);
}

#[test]
#[ignore = "needs root"]
fn interop_md5_gobgp_sends_open_only_over_a_correctly_signed_connection() {
    require_root();
    let lab = lab("interop_md5_gobgp_sends_open_only_over_a_correctly_signed_connection");
    let (peer, tabby) = (lab.node("peer"), lab.node("tabby"));
    let _gobgp = GoBgp::start(peer, &config(peer, tabby)).unwrap();
    check(tabby, peer);
}

/// tabby's speaker peering with the daemon signed with `key`; true when the
/// session came up within a few seconds (seen by both ends).
fn speaker_session(tabby: &Node, peer: &Node, daemon: &(dyn BgpPeer + Sync), key: &str) -> bool {
    let (router_id, peer_address) = (tabby.ipv4().unwrap(), peer.address());
    tabby
        .run(|| {
            harness::runtime().block_on(async {
                let handle = speaker::start(SpeakerConfig::new(65002, router_id)).unwrap();
                let config = PeerConfig {
                    md5_key: Some(key.as_bytes().to_vec().into()),
                    ..PeerConfig::new(peer_address, Some(65001))
                };
                handle.requests.send(Request::AddPeer(config)).unwrap();
                let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
                while tokio::time::Instant::now() < deadline {
                    let (reply, status) = tokio::sync::oneshot::channel();
                    handle.requests.send(Request::Status(reply)).unwrap();
                    let ours = status.await.unwrap()[0].established;
                    if ours && daemon.established(tabby.address()).unwrap_or(false) {
                        return true;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                false
            })
        })
        .unwrap()
}

fn check_speaker(tabby: &Node, peer: &Node, daemon: &(dyn BgpPeer + Sync)) {
    assert!(
        !speaker_session(tabby, peer, daemon, "wrong-key"),
        "a session came up with the wrong key"
    );
    assert!(
        speaker_session(tabby, peer, daemon, PASSWORD),
        "no session with the right key"
    );
}

#[test]
#[ignore = "needs root"]
fn interop_md5_bird_session_comes_up_with_the_right_key_only() {
    require_root();
    let lab = lab("interop_md5_bird_session_comes_up_with_the_right_key_only");
    let (peer, tabby) = (lab.node("peer"), lab.node("tabby"));
    let bird = Bird::start(peer, &config(peer, tabby)).unwrap();
    check_speaker(tabby, peer, &bird);
}

#[test]
#[ignore = "needs root"]
fn interop_md5_frr_session_comes_up_with_the_right_key_only() {
    require_root();
    let lab = lab("interop_md5_frr_session_comes_up_with_the_right_key_only");
    let (peer, tabby) = (lab.node("peer"), lab.node("tabby"));
    let frr = Frr::start(peer, &config(peer, tabby)).unwrap();
    check_speaker(tabby, peer, &frr);
}

#[test]
#[ignore = "needs root"]
fn interop_md5_gobgp_session_comes_up_with_the_right_key_only() {
    require_root();
    let lab = lab("interop_md5_gobgp_session_comes_up_with_the_right_key_only");
    let (peer, tabby) = (lab.node("peer"), lab.node("tabby"));
    let gobgp = GoBgp::start(peer, &config(peer, tabby)).unwrap();
    check_speaker(tabby, peer, &gobgp);
}
