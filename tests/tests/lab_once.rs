//! `tabby-lab --once` in small: three nodes on two subnets (direct routes within
//! one, VXLAN across), etcd, three agents, a pod per node; every session up and
//! every pod reaching every pod, then everything removed. Needs root.

use tests::tabby_lab::{Lab, Mode, Options};

#[test]
fn lab_once_three_nodes_on_two_subnets_every_pod_reaches_every_pod_and_nothing_is_left() {
    if !tests::require_root() {
        return;
    }
    let options = Options {
        nodes: 3,
        mode: Mode::Crosssubnet,
        pods_per_node: 1,
    };
    let lab = Lab::up("lab_once", options).unwrap();
    let namespaces = lab.cluster.lab.namespaces();
    let report = lab.report().unwrap();
    println!("{report}");
    assert!(report.healthy(), "{report}");
    assert_eq!(report.reachable.len(), 3);
    // Each node has a session with each other node (the mesh).
    for node in &report.nodes {
        assert_eq!((node.established, node.peers), (2, 2), "{node:?}");
    }
    drop(lab);
    let left: Vec<String> = tests::netns::list()
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
    };
    let error = Lab::up("lab_ipip", options).unwrap_err().to_string();
    assert!(
        error.contains("no IPIP") && error.contains("test(/ipip/)"),
        "{error}"
    );
}
