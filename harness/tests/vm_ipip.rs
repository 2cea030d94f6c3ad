//! The VM harness proven on its first job: IPIP between two lab nodes, which this
//! host's kernel cannot do. The agent's IPIP suite (pools in ipipMode Always and
//! CrossSubnet) runs the same way: `e2e_ipip.rs`.

use std::time::Duration;

use harness::{Lab, Node, require_root, vm};

/// Generous: the guest is emulated (TCG) and may share two cores with a build.
const VM_TIMEOUT: Duration = Duration::from_secs(240);

#[test]
#[ignore = "needs root"]
fn vm_ipip_tunl0_carries_pings_between_nodes_as_ip_in_ip() {
    require_root();
    if !vm::in_vm() {
        vm::run_test_in_vm(
            "vm_ipip_tunl0_carries_pings_between_nodes_as_ip_in_ip",
            VM_TIMEOUT,
        )
        .unwrap();
        return;
    }
    let lab = Lab::new("vm_ipip_tunl0_carries_pings_between_nodes_as_ip_in_ip")
        .subnet("a", "10.0.1.0/24")
        .node("n1", "a")
        .node("n2", "a")
        .build()
        .unwrap();
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));
    // Each node's tunl0 holds its tunnel address; the other's block goes through it,
    // `onlink` because the next hop is the peer's underlay address, not on tunl0.
    tunnel(n1, "10.244.1.1", "10.244.2.0/24", n2);
    tunnel(n2, "10.244.2.1", "10.244.1.0/24", n1);

    let before = packets(n2, "tunl0", "rx");
    n1.exec(
        "ping",
        &["-c", "3", "-w", "10", "-I", "10.244.1.1", "10.244.2.1"],
    )
    .unwrap();
    // tunl0 only receives what it decapsulated from protocol-4 packets on eth0, so
    // its counter proves the echoes crossed the underlay as IP-in-IP.
    assert!(
        packets(n2, "tunl0", "rx") >= before + 3,
        "the echoes reached n2 without passing its tunl0"
    );
}

/// Brings `node`'s `tunl0` up with `address` and routes `remote` to `peer` through it.
fn tunnel(node: &Node, address: &str, remote: &str, peer: &Node) {
    // Loading ipip gives every namespace its fallback device `tunl0`.
    node.exec("modprobe", &["ipip"]).unwrap();
    node.ip("link set dev tunl0 up").unwrap();
    node.ip(&format!("addr add {address}/32 dev tunl0"))
        .unwrap();
    node.ip(&format!(
        "route add {remote} via {} dev tunl0 onlink",
        peer.address()
    ))
    .unwrap();
}

/// An interface's packet counter (`rx` or `tx`) inside `node`.
fn packets(node: &Node, device: &str, direction: &str) -> u64 {
    let path = format!("/sys/class/net/{device}/statistics/{direction}_packets");
    node.exec("cat", &[&path]).unwrap().trim().parse().unwrap()
}
