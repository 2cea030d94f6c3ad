//! Two tabby speakers as in a node-to-node mesh: each listens and connects to the
//! other at the same moment, so their connections collide (RFC 4271 6.8). Exactly
//! one session must survive and carry both nodes' blocks.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bgp::rib::Change;
use bgp::speaker::{self, Notice, PeerConfig, Request, SpeakerConfig};
use harness::{Lab, Node, require_root};
use ipnet::IpNet;

const AS: u32 = 64512;
const TIMEOUT: Duration = Duration::from_secs(30);

/// Runs a mesh speaker on `node` that originates `own` and peers with `other`;
/// returns once both nodes learned each other's block and saw one connection.
fn mesh_node(node: &Node, other: &Node, own: IpNet, theirs: IpNet, progress: &[AtomicUsize; 2]) {
    let (address, other_address) = (node.address(), other.address());
    let router_id = node.ipv4().unwrap();
    node.run(|| {
        harness::runtime().block_on(async {
            let mut handle = speaker::start(SpeakerConfig {
                listen: vec![SocketAddr::new(address, 179)],
                ..SpeakerConfig::new(AS, router_id)
            })
            .unwrap();
            handle.requests.send(Request::Originate(own)).unwrap();
            let peer = PeerConfig {
                local_address: Some(address),
                ..PeerConfig::new(other_address, Some(AS))
            };
            handle.requests.send(Request::AddPeer(peer)).unwrap();
            tokio::time::timeout(TIMEOUT, async {
                loop {
                    if let Some(Notice::Best(Change::Best { prefix, paths })) =
                        handle.notices.recv().await
                        && prefix == theirs
                    {
                        assert_eq!(paths[0].next_hop, other_address);
                        return;
                    }
                }
            })
            .await
            .expect("the other node's block never arrived");
            // Keep serving the other side until it has learned ours too.
            rendezvous(&progress[0]).await;
            // One session between the two, whichever connection it uses.
            harness::wait_until(Duration::from_secs(5), "one BGP connection", || {
                let sockets = node.exec(
                    "ss",
                    &[
                        "-Htn",
                        "state",
                        "established",
                        "( sport = :179 or dport = :179 )",
                    ],
                )?;
                let count = sockets.lines().count();
                Ok(if count == 1 {
                    Ok(())
                } else {
                    Err(format!("{count} connections:\n{sockets}"))
                })
            })
            .unwrap();
            // And until it has counted the connections too.
            rendezvous(&progress[1]).await;
        })
    })
    .unwrap();
}

/// Counts this node in and waits (without blocking the speaker) for the other.
async fn rendezvous(arrived: &AtomicUsize) {
    arrived.fetch_add(1, Ordering::SeqCst);
    while arrived.load(Ordering::SeqCst) < 2 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
#[ignore = "needs root"]
fn speaker_mesh_nodes_connecting_at_once_keep_one_session_and_learn_each_others_blocks() {
    require_root();
    let lab = Lab::new(
        "speaker_mesh_nodes_connecting_at_once_keep_one_session_and_learn_each_others_blocks",
    )
    .subnet("a", "10.0.1.0/24")
    .node("n1", "a")
    .node("n2", "a")
    .build()
    .unwrap();
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));
    let (b1, b2): (IpNet, IpNet) = (
        "10.244.1.0/26".parse().unwrap(),
        "10.244.2.0/26".parse().unwrap(),
    );
    let progress = [AtomicUsize::new(0), AtomicUsize::new(0)];
    std::thread::scope(|scope| {
        scope.spawn(|| mesh_node(n1, n2, b1, b2, &progress));
        scope.spawn(|| mesh_node(n2, n1, b2, b1, &progress));
    });
}
