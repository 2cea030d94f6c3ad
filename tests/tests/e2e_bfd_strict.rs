//! BFD strict mode end to end (`strict: true` in the `bfd` block, `docs/bfd.md`):
//! a BGP session is neither opened nor accepted until its BFD session is Up, and
//! after a BFD Down it waits for BFD Up again. nftables in one node's namespace
//! drops BFD's single-hop packets (UDP 3784) and nothing else, so TCP 179 works
//! throughout: without strict mode the sessions would come up (and come back
//! after a BFD Down) within seconds. In a mesh of two agents, and between agents
//! and a tabby-reflector.
//!
//! No timing is asserted: "held" is watched for [`HELD`], several connect
//! retries of the speaker, and every other wait is generous.

use std::path::Path;
use std::time::{Duration, Instant};

use api::resources::{
    BGPConfiguration, BGPConfigurationSpec, BfdSpec, Cidr, EncapsulationMode, IPPool, IPPoolSpec,
};
use harness::e2e::{Cluster, Pod, list_peers, ping_all, wait_bfd_up};
use harness::lab::Node;
use harness::{Lab, wait_until};
use proto::bgp_status::SessionState;

const READY: Duration = Duration::from_secs(60);
const CONVERGED: Duration = Duration::from_secs(60);
/// How long sessions are watched staying down while BFD is blocked.
const HELD: Duration = Duration::from_secs(8);
const AS: u32 = 64512;

fn strict() -> BfdSpec {
    BfdSpec {
        enabled: true,
        strict: true,
        ..BfdSpec::default()
    }
}

/// An nftables table dropping single-hop BFD (UDP 3784) both ways, only.
const DROP_BFD: &str = "table inet tabby_e2e_bfd_strict { \
    chain in { type filter hook input priority 0; udp dport 3784 drop; }; \
    chain out { type filter hook output priority 0; udp dport 3784 drop; }; }";

fn block_bfd(node: &Node) {
    node.exec("nft", &[DROP_BFD]).unwrap();
}

fn unblock_bfd(node: &Node) {
    node.exec("nft", &["delete table inet tabby_e2e_bfd_strict"])
        .unwrap();
}

/// The session with `peer` as the daemon on `socket` lists it: (established,
/// BFD state, last error).
fn session(socket: &Path, peer: &str) -> anyhow::Result<(bool, String, String)> {
    let peers = list_peers(socket)?;
    let found = peers
        .iter()
        .find(|p| p.address == peer)
        .ok_or_else(|| anyhow::anyhow!("no peer {peer} in {peers:?}"))?;
    Ok((
        found.state() == SessionState::Established,
        found.bfd_state.clone(),
        found.last_error.clone(),
    ))
}

/// For [`HELD`], the daemon on `socket` never has its session with `peer`
/// established, and says why.
fn stays_held(socket: &Path, peer: &str) {
    let until = Instant::now() + HELD;
    while Instant::now() < until {
        let (established, bfd, _) = session(socket, peer).unwrap();
        assert!(
            !established,
            "{}: {peer} established, BFD {bfd}",
            socket.display()
        );
        assert_ne!(bfd, "Up", "BFD is blocked");
        std::thread::sleep(Duration::from_millis(500));
    }
    let (_, _, error) = session(socket, peer).unwrap();
    assert!(
        error.contains("BFD"),
        "{}: {peer}'s last error names BFD: {error:?}",
        socket.display()
    );
}

/// Waits until the daemon on `socket` has its session with `peer` in `state`.
fn wait_session(socket: &Path, peer: &str, established: bool) {
    wait_until(
        CONVERGED,
        &format!("{peer} established: {established}"),
        || {
            let now = session(socket, peer)?;
            anyhow::Ok(if now.0 == established {
                Ok(())
            } else {
                Err(format!("{now:?}"))
            })
        },
    )
    .unwrap();
}

fn healed(cluster: &Cluster, nodes: &[&str], pods: &[Pod], sockets: &[(&Path, &str, usize)]) {
    for (socket, name, peers) in sockets {
        wait_bfd_up(socket, name, *peers, CONVERGED).unwrap();
    }
    cluster.wait_for_routes(nodes, pods, CONVERGED).unwrap();
    ping_all(pods).unwrap();
}

#[test]
#[ignore = "needs root"]
fn e2e_bfd_strict_mesh_sessions_wait_while_bfd_is_dropped_and_go_down_with_it() {
    harness::require_root();
    let nodes = ["n1", "n2"];
    let lab = Lab::new("e2e_bfd_strict")
        .subnet("a", "10.0.1.0/24")
        .node("n1", "a")
        .node("n2", "a");
    let mut cluster = Cluster::new(lab.router().build().unwrap()).unwrap();
    let mut pool = IPPoolSpec::new(Cidr("10.244.0.0/16".parse().unwrap()));
    pool.vxlan_mode = EncapsulationMode::Never;
    cluster
        .create(&IPPool::new("default-ipv4-ippool", pool))
        .unwrap();
    let config = BGPConfigurationSpec {
        bfd: Some(strict()),
        ..BGPConfigurationSpec::default()
    };
    cluster
        .create(&BGPConfiguration::new("default", config))
        .unwrap();
    let n1 = cluster.lab.node("n1").address().to_string();
    let n2 = cluster.lab.node("n2").address().to_string();
    let (s1, s2) = (cluster.socket("n1"), cluster.socket("n2"));
    block_bfd(cluster.lab.node("n2"));
    cluster.start_agents(&nodes, READY).unwrap();
    let pods = cluster.add_pod_per_node(&nodes).unwrap();
    stays_held(&s1, &n2);
    stays_held(&s2, &n1);

    unblock_bfd(cluster.lab.node("n2"));
    let sockets = [(s1.as_path(), "n1", 1), (s2.as_path(), "n2", 1)];
    healed(&cluster, &nodes, &pods, &sockets);
    wait_session(&s1, &n2, true);

    // BFD goes down: the sessions go down with it and wait, TCP open or not.
    block_bfd(cluster.lab.node("n2"));
    wait_session(&s1, &n2, false);
    wait_session(&s2, &n1, false);
    stays_held(&s1, &n2);
    stays_held(&s2, &n1);
    unblock_bfd(cluster.lab.node("n2"));
    healed(&cluster, &nodes, &pods, &sockets);
}

#[test]
#[ignore = "needs root"]
fn e2e_bfd_strict_reflector_and_client_sessions_wait_while_bfd_is_dropped_and_go_down_with_it() {
    harness::require_root();
    let nodes = ["n1", "n2", "n3"];
    let mut cluster = Cluster::with_reflectors_and_bfd(
        "e2e_bfd_strict_rr",
        "10.0.1.0/24",
        &["n1", "n2", "n3", "rr1"],
        &["rr1"],
        AS,
        api::datastore::config::DatastoreType::Etcd,
        Some(strict()),
    )
    .unwrap();
    let cluster_id = std::net::Ipv4Addr::new(10, 0, 1, 250);
    let clients = harness::e2e::Clients::Datastore;
    let extra = "bfd: {enabled: true, strict: true}\n";
    cluster
        .start_reflector_with("rr1", AS, cluster_id, clients, extra)
        .unwrap();
    let rr1 = cluster.lab.node("rr1").address().to_string();
    let n3 = cluster.lab.node("n3").address().to_string();
    let (reflector, s3) = (cluster.reflector_socket("rr1"), cluster.socket("n3"));
    block_bfd(cluster.lab.node("n3"));
    cluster.wait_reflector_ready("rr1", READY).unwrap();
    cluster.start_agents(&nodes, READY).unwrap();
    let pods = cluster.add_pod_per_node(&nodes).unwrap();
    for node in ["n1", "n2"] {
        let address = cluster.lab.node(node).address().to_string();
        wait_session(&reflector, &address, true);
    }
    // Only n3 is held, at both ends.
    stays_held(&reflector, &n3);
    stays_held(&s3, &rr1);

    unblock_bfd(cluster.lab.node("n3"));
    let mut sockets: Vec<_> = nodes.iter().map(|n| (cluster.socket(n), *n, 1)).collect();
    sockets.push((reflector.clone(), "rr1", nodes.len()));
    let sockets: Vec<_> = sockets
        .iter()
        .map(|(s, n, p)| (s.as_path(), *n, *p))
        .collect();
    healed(&cluster, &nodes, &pods, &sockets);

    block_bfd(cluster.lab.node("n3"));
    wait_session(&reflector, &n3, false);
    wait_session(&s3, &rr1, false);
    stays_held(&reflector, &n3);
    stays_held(&s3, &rr1);
    unblock_bfd(cluster.lab.node("n3"));
    healed(&cluster, &nodes, &pods, &sockets);
}
