//! tabby-agent's BGP with BFD (a `BGPPeer` with `bfd.enabled`) against BIRD's BGP
//! with `bfd on` and `protocol bfd`, on the lab's router: when the node's link
//! goes down, both ends drop the BGP session through BFD, long before the hold
//! timers (tabby 90 s, BIRD 240 s) — the waits are 20 s — and both bring it back
//! when the link returns. The same against FRR's bgpd with `neighbor X bfd` (bgpd
//! reaches bfdd through zebra, which runs beside them), with a failure seen from
//! each side: the link, the agent killed (FRR notices), bfdd killed (tabby
//! notices). Needs root.

use std::net::IpAddr;
use std::time::Duration;

use api::resources::{
    BGPConfiguration, BGPConfigurationSpec, BGPPeer, BGPPeerSpec, BfdSpec, Cidr, IPPool,
    IPPoolSpec, PeerAddress,
};
use bfd::State;
use harness::e2e::{Cluster, list_peers};
use harness::lab::NODE_INTERFACE;
use harness::peers::{BfdPeer, BgpConfig, BgpPeer, Bird, Frr, Neighbor};
use harness::{Lab, wait_until};
use ipnet::IpNet;

const NODE_AS: u32 = 64512;
const ROUTER_AS: u32 = 65000;
const EXTERNAL: &str = "198.51.100.0/24";
const READY: Duration = Duration::from_secs(60);
const CONVERGED: Duration = Duration::from_secs(60);
/// Far below either hold time: only BFD passes.
const DETECTED: Duration = Duration::from_secs(20);
/// BIRD waits its `error wait time` (60 s at first) before it takes a session
/// again after BFD brought one down.
const RECOVERED: Duration = Duration::from_secs(180);

/// The agent's view of its session with `peer`: (BGP state, BFD state, last error).
fn agent_session(
    cluster: &Cluster,
    node: &str,
    peer: IpAddr,
) -> anyhow::Result<(i32, String, String)> {
    let peers = list_peers(&cluster.socket(node))?;
    let p = peers
        .iter()
        .find(|p| p.address == peer.to_string())
        .ok_or_else(|| anyhow::anyhow!("no peer {peer} in {peers:?}"))?;
    Ok((p.state, p.bfd_state.clone(), p.last_error.clone()))
}

/// Node n1 behind the lab's router, the mesh off, a `BGPPeer` with BFD on to the
/// router (AS [`ROUTER_AS`]): (the cluster, the router's address, n1's address).
fn node_peering_with_the_router(test: &str) -> (Cluster, IpAddr, IpAddr) {
    let lab = Lab::new(test)
        .subnet("a", "10.0.1.0/24")
        .node("n1", "a")
        .router()
        .build()
        .unwrap();
    let cluster = Cluster::new(lab).unwrap();
    let router_ip = cluster
        .lab
        .router()
        .unwrap()
        .address_in("a", cluster.lab.node("n1").address())
        .unwrap();
    let n1 = cluster.lab.node("n1").address();
    cluster
        .create(&IPPool::new(
            "default-ipv4-ippool",
            IPPoolSpec::new(Cidr("10.244.0.0/16".parse().unwrap())),
        ))
        .unwrap();
    let bgp = BGPConfigurationSpec {
        node_to_node_mesh_enabled: Some(false),
        ..BGPConfigurationSpec::default()
    };
    cluster
        .create(&BGPConfiguration::new("default", bgp))
        .unwrap();
    let peer = BGPPeerSpec {
        peer_ip: Some(PeerAddress {
            ip: router_ip,
            port: None,
        }),
        as_number: Some(api::resources::AsNumber(ROUTER_AS)),
        bfd: Some(BfdSpec {
            enabled: true,
            ..BfdSpec::default()
        }),
        ..BGPPeerSpec::default()
    };
    cluster.create(&BGPPeer::new("router", peer)).unwrap();
    (cluster, router_ip, n1)
}

#[test]
#[ignore = "needs root"]
fn interop_bfd_bgp_with_bird_a_cut_link_drops_the_session_at_both_ends_through_bfd() {
    harness::require_root();
    use proto::bgp_status::SessionState;
    let (mut cluster, router_ip, n1) = node_peering_with_the_router("interop_bfd_bgp_bird");
    let config = BgpConfig::new(ROUTER_AS, "10.0.1.1".parse().unwrap())
        .route(EXTERNAL.parse().unwrap())
        .neighbor(Neighbor::new(n1, NODE_AS).passive().bfd());
    let bird = Bird::start(cluster.lab.router().unwrap().netns(), &config).unwrap();
    cluster.start_agent("n1").unwrap();
    cluster.wait_ready("n1", READY).unwrap();
    let up = |cluster: &Cluster, within: Duration| {
        bird.wait_established(n1, within).unwrap();
        bird.wait_bfd_state(n1, State::Up, within).unwrap();
        wait_until(within, "n1's session with BFD up", || {
            let (state, bfd, _) = agent_session(cluster, "n1", router_ip)?;
            anyhow::Ok(
                if state == SessionState::Established as i32 && bfd == "Up" {
                    Ok(())
                } else {
                    Err(format!("{state} {bfd}"))
                },
            )
        })
        .unwrap();
    };
    // A pod gives n1 a block to announce.
    let _pod = cluster.add_pod("n1", "pod-n1").unwrap();
    up(&cluster, CONVERGED);
    let external: IpNet = EXTERNAL.parse().unwrap();
    wait_until(CONVERGED, "BIRD to learn n1's block", || {
        let routes = bird.routes()?;
        anyhow::Ok(if routes.iter().any(|r| r.prefix != external) {
            Ok(())
        } else {
            Err(format!("{routes:?}"))
        })
    })
    .unwrap();

    let node = cluster.lab.node("n1");
    node.ip(&format!("link set dev {NODE_INTERFACE} down"))
        .unwrap();
    bird.wait_down(n1, DETECTED).unwrap();
    wait_until(DETECTED, "n1 to drop its session through BFD", || {
        let (state, bfd, error) = agent_session(&cluster, "n1", router_ip)?;
        anyhow::Ok(
            if state != SessionState::Established as i32 && bfd == "Down" {
                Ok(())
            } else {
                Err(format!("{state} {bfd} {error}"))
            },
        )
    })
    .unwrap();
    // BIRD's routes from n1 went with the session.
    assert!(
        bird.routes().unwrap().iter().all(|r| r.prefix == external),
        "{:?}",
        bird.routes()
    );
    node.ip(&format!("link set dev {NODE_INTERFACE} up"))
        .unwrap();
    up(&cluster, RECOVERED);
}

#[test]
#[ignore = "needs root"]
fn interop_bfd_bgp_with_frr_a_cut_link_a_killed_agent_or_a_killed_bfdd_drop_the_session_through_bfd()
 {
    harness::require_root();
    use proto::bgp_status::SessionState;
    let (mut cluster, router_ip, n1) = node_peering_with_the_router("interop_bfd_bgp_frr");
    let config = BgpConfig::new(ROUTER_AS, "10.0.1.1".parse().unwrap())
        .route(EXTERNAL.parse().unwrap())
        .neighbor(Neighbor::new(n1, NODE_AS).passive().bfd());
    let mut frr = Frr::start(cluster.lab.router().unwrap().netns(), &config).unwrap();
    cluster.start_agent("n1").unwrap();
    cluster.wait_ready("n1", READY).unwrap();
    let up = |cluster: &Cluster, frr: &mut Frr| {
        frr.wait_established(n1, CONVERGED).unwrap();
        let bfdd = frr.bfdd().unwrap();
        bfdd.wait_bfd_state(n1, State::Up, CONVERGED).unwrap();
        wait_until(CONVERGED, "n1's session with BFD up", || {
            let (state, bfd, _) = agent_session(cluster, "n1", router_ip)?;
            anyhow::Ok(
                if state == SessionState::Established as i32 && bfd == "Up" {
                    Ok(())
                } else {
                    Err(format!("{state} {bfd}"))
                },
            )
        })
        .unwrap();
    };
    let _pod = cluster.add_pod("n1", "pod-n1").unwrap();
    up(&cluster, &mut frr);
    let node = cluster.lab.node("n1");

    // The link: both ends see BFD go down and drop BGP.
    node.ip(&format!("link set dev {NODE_INTERFACE} down"))
        .unwrap();
    frr.wait_down(n1, DETECTED).unwrap();
    wait_until(DETECTED, "n1 to drop its session through BFD", || {
        let (state, bfd, error) = agent_session(&cluster, "n1", router_ip)?;
        anyhow::Ok(
            if state != SessionState::Established as i32 && bfd == "Down" {
                Ok(())
            } else {
                Err(format!("{state} {bfd} {error}"))
            },
        )
    })
    .unwrap();
    node.ip(&format!("link set dev {NODE_INTERFACE} up"))
        .unwrap();
    up(&cluster, &mut frr);

    // The agent dies (its kernel, its link and its TCP socket's end stay): only
    // bfdd's Detection Time tells bgpd, long before the hold time.
    cluster.kill_agent("n1");
    frr.wait_down(n1, DETECTED).unwrap();
    cluster.start_agent("n1").unwrap();
    cluster.wait_ready("n1", READY).unwrap();
    up(&cluster, &mut frr);

    // bfdd dies while bgpd runs on: tabby's BFD goes down and it resets BGP with
    // Cease/BFD Down (bgpd counts the dropped connection; tabby reconnects, as
    // BGP does not wait for BFD).
    let dropped = |frr: &Frr| {
        let neighbors = frr.vtysh_json("show bgp neighbors json").unwrap();
        neighbors[n1.to_string()]["connectionsDropped"]
            .as_u64()
            .unwrap()
    };
    let before = dropped(&frr);
    frr.bfdd().unwrap().kill();
    wait_until(DETECTED, "n1 to reset its session for BFD down", || {
        let (state, bfd, _) = agent_session(&cluster, "n1", router_ip)?;
        let now = dropped(&frr);
        anyhow::Ok(if bfd == "Down" && now > before {
            Ok(())
        } else {
            Err(format!(
                "{state} {bfd}, bgpd's dropped connections {before} → {now}"
            ))
        })
    })
    .unwrap();
}
