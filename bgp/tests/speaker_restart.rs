//! Graceful restart (RFC 4724) with the speaker as the restarting side, over
//! loopback: it says so in its OPEN, holds its best paths back from peers and
//! owner until every peer has sent End-of-RIB, then sends the table and its own
//! End-of-RIB. The bound on the wait is tested in the core (`speaker::tests`),
//! with the time given, not measured.

mod client;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use bgp::codec::{Capability, Family, GracefulRestart, Message};
use bgp::session::GracefulRestartConfig;
use bgp::speaker::{Notice, Request, SpeakerConfig, SpeakerHandle};
use client::{Client, Pending, SPEAKER_AS, internal, net, speaker, speaker_config};

fn restarting(deferral: Duration) -> SpeakerConfig {
    SpeakerConfig {
        graceful_restart: Some(GracefulRestartConfig {
            restart_time: 120,
            restarting: true,
            forwarding_preserved: true,
        }),
        selection_deferral: deferral,
        ..speaker_config()
    }
}

fn offer() -> client::Offer {
    client::Offer {
        capabilities: vec![Capability::GracefulRestart(GracefulRestart {
            restarting: false,
            notification: false,
            restart_time: 120,
            families: vec![(Family::IPV4_UNICAST, true)],
        })],
    }
}

/// Joins a client, checking the speaker's OPEN announces the restart.
async fn join(handle: &SpeakerHandle, host: u8) -> Client {
    let pending = Pending::new(5, host, SPEAKER_AS).await;
    handle
        .requests
        .send(Request::AddPeer(pending.peer()))
        .unwrap();
    let (stream, _) = pending.listener.accept().await.unwrap();
    let mut c = Client::raw(stream, pending.address, SPEAKER_AS);
    let Some(Message::Open(open)) = c.read().await else {
        panic!("no OPEN")
    };
    let gr = open.capabilities.iter().find_map(|c| match c {
        Capability::GracefulRestart(gr) => Some(gr.clone()),
        _ => None,
    });
    let gr = gr.expect("no graceful restart capability");
    assert!(gr.restarting, "the R bit");
    assert!(
        gr.families.iter().all(|&(_, forwarding)| forwarding),
        "the F bits"
    );
    c.finish_handshake_with(open, offer().capabilities).await;
    c
}

fn hop(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, n))
}

#[tokio::test]
async fn a_restarting_speaker_holds_its_table_back_until_every_peer_sent_end_of_rib() {
    let mut handle = speaker(restarting(Duration::from_secs(30)));
    let block = net("10.244.0.0/26");
    handle.requests.send(Request::Originate(block)).unwrap();
    // B is configured from the start but comes up late.
    let b_pending = Pending::new(5, 3, SPEAKER_AS).await;
    handle
        .requests
        .send(Request::AddPeer(b_pending.peer()))
        .unwrap();
    let mut a = join(&handle, 2).await;
    a.announce(&[net("10.1.0.0/24")], &internal(100), hop(2))
        .await;
    a.end_of_rib().await;
    a.never(block, Duration::from_millis(300)).await;
    assert_eq!(a.end_of_rib, 0);
    assert!(
        handle.notices.try_recv().is_err(),
        "the owner was told early"
    );
    let (stream, _) = b_pending.listener.accept().await.unwrap();
    let mut b = Client::raw(stream, b_pending.address, SPEAKER_AS);
    let Some(Message::Open(open)) = b.read().await else {
        panic!("no OPEN")
    };
    b.finish_handshake_with(open, offer().capabilities).await;
    b.announce(&[net("10.2.0.0/24")], &internal(100), hop(3))
        .await;
    a.never(block, Duration::from_millis(200)).await;
    b.end_of_rib().await;
    // Now both get the whole table, then End-of-RIB.
    a.until("the table and End-of-RIB", |c| c.end_of_rib == 1)
        .await;
    assert!(a.routes.contains_key(&block));
    b.until("the table and End-of-RIB", |c| c.end_of_rib == 1)
        .await;
    assert!(b.routes.contains_key(&block));
    let notice = handle.notices.recv().await;
    assert!(
        matches!(notice, Some(Notice::PeerUp { .. } | Notice::Best(_))),
        "{notice:?}"
    );
}
