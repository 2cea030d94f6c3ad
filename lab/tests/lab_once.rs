//! `tabby-lab --once` in small: three nodes on two subnets (direct routes within
//! one, VXLAN across), the Kubernetes API double (the default datastore), the resources applied with calicoctl-rs, one
//! tabby-reflector (the mesh off), a BIRD top-of-rack router, three agents, a pod
//! per node; every session up, the ToR with every node's block, every pod
//! reaching every pod, then everything removed. Needs root.

use api::datastore::Datastore;
use api::datastore::config::DatastoreType;
use api::resources::{BGPConfiguration, BGPPeer, IPPool};
use lab::tabby_lab::{Lab, Mode, Options, Session, Tor};

fn up(peers: &[&str]) -> Vec<Session> {
    (peers.iter())
        .map(|p| Session {
            peer: p.to_string(),
            up: true,
        })
        .collect()
}

#[test]
#[ignore = "needs root"]
fn lab_once_kdd_three_nodes_a_reflector_and_a_bird_tor_every_pod_reaches_every_pod_and_nothing_is_left()
 {
    harness::require_root();
    let options = Options {
        nodes: 3,
        mode: Mode::Crosssubnet,
        pods_per_node: 1,
        reflectors: 1,
        tor: Tor::Bird,
        datastore: DatastoreType::Kubernetes,
    };
    let lab = Lab::up("lab_once", options).unwrap();
    let namespaces = lab.cluster.lab.namespaces();
    let report = lab.report().unwrap();
    println!("{report}");
    assert!(report.healthy(), "{report}");
    assert!(report.convergence.is_some(), "{report}");

    // What calicoctl-rs wrote is in the datastore: the pool, the mesh off, a
    // BGPPeer to the reflector and one per rack to its ToR.
    let (pool, mesh, mut peers) = lab
        .cluster
        .datastore(async |store| {
            let pool: IPPool = store.get("default-ipv4-ippool").await?;
            let config: BGPConfiguration = store.get("default").await?;
            let peers = store.list::<BGPPeer>(&Default::default()).await?.items;
            let names: Vec<String> = peers.into_iter().map(|p| p.metadata.name).collect();
            anyhow::Ok((pool, config.spec.node_to_node_mesh_enabled, names))
        })
        .unwrap()
        .unwrap();
    assert_eq!(pool.spec.cidr.0.to_string(), lab::tabby_lab::POOL);
    assert_eq!(mesh, Some(false));
    peers.sort();
    assert_eq!(peers, ["rr1", "tor-a", "tor-b"]);
    assert_eq!(report.applied.len(), 6, "{:?}", report.applied);

    // Each node peers with the reflector and its ToR, not with the other nodes;
    // the reflector with every node; the ToR with every node.
    for node in &report.nodes {
        assert_eq!(node.sessions, Ok(up(&["rr1", "ToR"])), "{node:?}");
    }
    assert_eq!(report.reflectors.len(), 1);
    assert_eq!(report.reflectors[0].sessions, Ok(up(&["n1", "n2", "n3"])));
    let tor = report.tor.as_ref().unwrap();
    assert_eq!(tor.sessions, Ok(up(&["n1", "n2", "n3"])));
    // The ToR learned every block of every node (a node may own more than one).
    let owners: std::collections::BTreeSet<&str> =
        report.tor_blocks.iter().map(|b| b.owner.as_str()).collect();
    assert_eq!(owners, ["n1", "n2", "n3"].into(), "{report}");
    assert!(report.tor_blocks.iter().all(|b| b.learned), "{report}");
    // Every node's routes are what the datastore implies.
    for node in &report.routes {
        assert!(node.missing.is_empty(), "{node:?}");
        assert!(
            node.routes.iter().all(|(_, note)| !note.is_empty()),
            "{node:?}"
        );
    }
    assert_eq!(report.reachable.len(), 3);
    assert_eq!(report.pairs(), (9, 9));

    let pids = [
        lab.cluster.reflector_pid(&lab.reflectors[0]).unwrap(),
        lab.tor.as_ref().unwrap().pid(),
    ];
    drop(lab);
    for pid in pids {
        let proc = std::path::PathBuf::from(format!("/proc/{pid}"));
        assert!(!proc.exists(), "process {pid} is still running");
    }
    let left: Vec<String> = harness::netns::list()
        .into_iter()
        .filter(|n| namespaces.contains(n))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn lab_refuses_ipip_on_this_kernel_and_says_where_it_runs() {
    let options = Options {
        nodes: 2,
        mode: Mode::Ipip,
        pods_per_node: 1,
        reflectors: 0,
        tor: Tor::None,
        datastore: DatastoreType::Kubernetes,
    };
    let error = Lab::up("lab_ipip", options).unwrap_err().to_string();
    assert!(
        error.contains("no IPIP") && error.contains("test(/ipip/)"),
        "{error}"
    );
}
