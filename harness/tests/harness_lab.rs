//! The lab itself: nodes reach each other across the underlay and the router, labs
//! with identical addresses coexist, and nothing survives a lab, even a panicking one.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use harness::{Lab, require_root};

fn gone(namespaces: &[String]) -> bool {
    let present = harness::netns::list();
    namespaces.iter().all(|n| !present.contains(n))
}

#[test]
#[ignore = "needs root"]
fn harness_two_nodes_ping_across_the_underlay() {
    require_root();
    let lab = Lab::new("harness_two_nodes_ping_across_the_underlay")
        .subnet("a", "10.0.1.0/24")
        .node("n1", "a")
        .node("n2", "a")
        .build()
        .unwrap();
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));
    assert_eq!(n1.address().to_string(), "10.0.1.10");
    assert_eq!(n2.address().to_string(), "10.0.1.11");
    n1.ping(n2.address()).unwrap();
    n2.ping(n1.address()).unwrap();

    let namespaces = lab.namespaces();
    assert_eq!(
        namespaces.len(),
        3,
        "underlay and two nodes: {namespaces:?}"
    );
    drop(lab);
    assert!(gone(&namespaces), "left behind: {namespaces:?}");
}

#[test]
#[ignore = "needs root"]
fn harness_nodes_on_different_subnets_ping_through_the_router() {
    require_root();
    let lab = Lab::new("harness_nodes_on_different_subnets_ping_through_the_router")
        .subnet("a", "10.0.1.0/24")
        .ipv6("a", "fd00:1::/64")
        .subnet("b", "10.0.2.0/24")
        .ipv6("b", "fd00:2::/64")
        .node("n1", "a")
        .node_at("n2", "b", &["10.0.2.20"])
        .build()
        .unwrap();
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));
    assert_eq!(n2.address().to_string(), "10.0.2.20");
    n1.ping(n2.address()).unwrap();
    n1.ping(n2.address6().unwrap()).unwrap();
    // One hop: the router decrements the TTL.
    let route = n1.ip(&format!("route get {}", n2.address())).unwrap();
    assert!(route.contains("via 10.0.1.1"), "{route}");
}

#[test]
#[ignore = "needs root"]
fn harness_labs_with_identical_addresses_do_not_collide() {
    require_root();
    let build = || {
        Lab::new("harness_labs_with_identical_addresses_do_not_collide")
            .subnet("a", "10.0.1.0/24")
            .node("n1", "a")
            .node("n2", "a")
            .build()
            .unwrap()
    };
    let (first, second) = (build(), build());
    assert_ne!(first.id(), second.id());
    for lab in [&first, &second] {
        lab.node("n1").ping(lab.node("n2").address()).unwrap();
    }
}

#[test]
#[ignore = "needs root"]
fn harness_code_in_a_node_opens_its_sockets_there() {
    require_root();
    let lab = Lab::new("harness_code_in_a_node_opens_its_sockets_there")
        .subnet("a", "10.0.1.0/24")
        .node("n1", "a")
        .node("n2", "a")
        .build()
        .unwrap();
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));
    let server = SocketAddr::new(n1.address(), 7000);
    let listener = n1.run(|| TcpListener::bind(server)).unwrap().unwrap();
    let client = std::thread::spawn(move || {
        let (mut stream, peer) = listener.accept().unwrap();
        let mut greeting = String::new();
        stream.read_to_string(&mut greeting).unwrap();
        (peer.ip(), greeting)
    });
    n2.run(|| {
        let mut stream = TcpStream::connect_timeout(&server, Duration::from_secs(5)).unwrap();
        stream.write_all(b"hello").unwrap();
    })
    .unwrap();
    assert_eq!(client.join().unwrap(), (n2.address(), "hello".to_owned()));
}

#[test]
#[ignore = "needs root"]
fn harness_pods_are_namespaces_removed_on_drop() {
    require_root();
    let lab = Lab::new("harness_pods_are_namespaces_removed_on_drop")
        .subnet("a", "10.0.1.0/24")
        .node("n1", "a")
        .build()
        .unwrap();
    let pod = lab.pod("p1").unwrap();
    assert!(pod.path().exists());
    assert!(pod.ip("link show lo").unwrap().contains("UP"));
    let name = pod.name().to_owned();
    drop(pod);
    assert!(gone(&[name]));
}

#[test]
#[ignore = "needs root"]
fn harness_a_panicking_test_leaves_nothing_behind() {
    require_root();
    let (report, seen) = std::sync::mpsc::channel();
    let outcome = std::thread::spawn(move || {
        let lab = Lab::new("harness_a_panicking_test_leaves_nothing_behind")
            .subnet("a", "10.0.1.0/24")
            .subnet("b", "10.0.2.0/24")
            .node("n1", "a")
            .node("n2", "b")
            .build()
            .unwrap();
        let sleeper = lab.node("n1").spawn("sleeper", "sleep", &["600"]).unwrap();
        report.send((lab.namespaces(), sleeper.pid())).unwrap();
        panic!("the test fails mid-way");
    })
    .join();
    assert!(outcome.is_err(), "the test thread should have panicked");
    let (namespaces, pid) = seen.recv().unwrap();
    assert_eq!(namespaces.len(), 4, "{namespaces:?}");
    assert!(gone(&namespaces), "left behind: {namespaces:?}");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "process {pid} survived"
    );
}

#[test]
fn harness_declaration_mistakes_are_reported_by_build() {
    let error = Lab::new("harness_declaration_mistakes_are_reported_by_build")
        .subnet("a", "10.0.1.0/33")
        .node("Bad Name", "a")
        .build()
        .unwrap_err()
        .to_string();
    assert!(error.contains("10.0.1.0/33"), "{error}");
    assert!(error.contains("Bad Name"), "{error}");
}
