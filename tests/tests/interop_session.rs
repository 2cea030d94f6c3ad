//! tabby's session layer (FSM, negotiation, codec, tokio driver) against real BIRD,
//! FRR and GoBGP: each daemon waits for the tabby node, which connects, negotiates,
//! comes up, receives the daemon's route, and finally shuts the session down with
//! an RFC 9003 message.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bgp::codec::Message;
use bgp::session::{Command, Event, SessionConfig, SessionHandle, spawn};
use bgp::transport::{Endpoint, TtlPolicy};
use harness::peers::{BgpConfig, BgpPeer, Bird, Frr, GoBgp, Neighbor};
use harness::{Lab, Node, require_root};
use ipnet::IpNet;

const PEER_AS: u32 = 65001;
const TABBY_AS: u32 = 65002;
const TIMEOUT: Duration = Duration::from_secs(30);

fn lab(test: &str) -> Lab {
    Lab::new(test)
        .subnet("a", "10.0.1.0/24")
        .node("peer", "a")
        .node("tabby", "a")
        .build()
        .unwrap()
}

fn route() -> IpNet {
    "10.100.1.0/24".parse().unwrap()
}

fn peer_config(peer: &Node, tabby: &Node) -> BgpConfig {
    BgpConfig::new(PEER_AS, peer.ipv4().unwrap())
        .neighbor(Neighbor::new(tabby.address(), TABBY_AS).passive())
        .route(route())
}

/// The next event, or a panic naming what was awaited.
async fn next(handle: &mut SessionHandle, what: &str) -> Event {
    tokio::time::timeout(TIMEOUT, handle.events.recv())
        .await
        .unwrap_or_else(|_| panic!("no event within {TIMEOUT:?} while waiting for {what}"))
        .expect("the session task ended")
}

/// Runs tabby's session from `tabby` to `peer` until it is up and has received the
/// peer's route; then checks the daemon agrees, stops the session and checks the
/// daemon saw it go.
fn session_with(tabby: &Node, peer: &Node, daemon: &(dyn BgpPeer + Sync)) {
    let peer_address = peer.address();
    let endpoint = Endpoint {
        remote: SocketAddr::new(peer_address, 179),
        local: Some(tabby.address()),
        md5_key: None,
        ttl: TtlPolicy::Hops(1),
    };
    let config = SessionConfig::new(TABBY_AS, tabby.ipv4().unwrap(), Some(PEER_AS));
    tabby
        .run(|| {
            harness::runtime().block_on(async {
                let mut handle = spawn(config, endpoint);
                let negotiated = loop {
                    match next(&mut handle, "Up").await {
                        Event::Up { negotiated, .. } => break negotiated,
                        Event::Failed(reason) => eprintln!("attempt failed: {reason}"),
                        other => panic!("unexpected before Up: {other:?}"),
                    }
                };
                assert_eq!(negotiated.remote_as, PEER_AS);
                assert_eq!(IpAddr::V4(negotiated.remote_id), peer_address);
                assert!(negotiated.context.four_octet_as);
                loop {
                    let Event::Received(Message::Update(update)) =
                        next(&mut handle, "the peer's route").await
                    else {
                        continue;
                    };
                    if update.nlri.iter().any(|n| n.prefix == route()) {
                        assert_eq!(update.next_hop.map(IpAddr::V4), Some(peer_address));
                        break;
                    }
                }
                assert!(daemon.established(tabby.address()).unwrap());
                handle
                    .commands
                    .send(Command::Stop("tabby interop test".into()))
                    .unwrap();
                // The task ends after sending Cease; its channel closes.
                while handle.events.recv().await.is_some() {}
            })
        })
        .unwrap();
    daemon.wait_down(tabby.address(), TIMEOUT).unwrap();
}

#[test]
#[ignore = "needs root"]
fn interop_session_with_bird_comes_up_learns_its_route_and_shuts_down() {
    require_root();
    let lab = lab("interop_session_with_bird_comes_up_learns_its_route_and_shuts_down");
    let (peer, tabby) = (lab.node("peer"), lab.node("tabby"));
    let bird = Bird::start(peer, &peer_config(peer, tabby)).unwrap();
    session_with(tabby, peer, &bird);
    // BIRD logs the RFC 9003 shutdown communication it received.
    let status = bird.show_protocols().unwrap();
    let log = bird.process().log();
    assert!(
        log.contains("tabby interop test") || status.contains("tabby interop test"),
        "BIRD did not report the shutdown message:\n{status}\n{log}"
    );
}

#[test]
#[ignore = "needs root"]
fn interop_session_with_frr_comes_up_learns_its_route_and_shuts_down() {
    require_root();
    let lab = lab("interop_session_with_frr_comes_up_learns_its_route_and_shuts_down");
    let (peer, tabby) = (lab.node("peer"), lab.node("tabby"));
    let frr = Frr::start(peer, &peer_config(peer, tabby)).unwrap();
    session_with(tabby, peer, &frr);
}

#[test]
#[ignore = "needs root"]
fn interop_session_with_gobgp_comes_up_learns_its_route_and_shuts_down() {
    require_root();
    let lab = lab("interop_session_with_gobgp_comes_up_learns_its_route_and_shuts_down");
    let (peer, tabby) = (lab.node("peer"), lab.node("tabby"));
    let gobgp = GoBgp::start(peer, &peer_config(peer, tabby)).unwrap();
    session_with(tabby, peer, &gobgp);
}
