//! A one-node lab (on the harness) for the dataplane tests and benchmark, with the
//! node's commands unwrapped and async code run inside its namespace.

#![allow(dead_code)] // each test binary uses part of it

use harness::{Lab, Node};

/// A lab with one node `n1` on 192.0.2.0/24 and fd00:ff::/64: its `eth0` has
/// 192.0.2.10 and fd00:ff::a, so 192.0.2.2-4 and fd00:ff::3-4 are on-link gateways.
#[derive(Debug)]
pub struct Host {
    lab: Lab,
}

impl Host {
    pub fn new(test: &str) -> Self {
        let lab = Lab::new(test)
            .subnet("u", "192.0.2.0/24")
            .ipv6("u", "fd00:ff::/64")
            .node("n1", "u")
            .build()
            .expect("lab");
        Self { lab }
    }

    pub fn node(&self) -> &Node {
        self.lab.node("n1")
    }

    /// `ip <command>` in the node; panics with ip's error.
    pub fn ip(&self, command: &str) -> String {
        self.node()
            .ip(command)
            .unwrap_or_else(|e| panic!("ip {command}: {e:#}"))
    }

    /// `program args` in the node; panics with its error.
    pub fn exec(&self, program: &str, args: &[&str]) -> String {
        self.node()
            .exec(program, args)
            .unwrap_or_else(|e| panic!("{program}: {e:#}"))
    }

    /// A veth pair `name` / `peer` in the node, both up.
    pub fn veth(&self, name: &str, peer: &str) {
        self.ip(&format!("link add {name} type veth peer name {peer}"));
        self.ip(&format!("link set {name} up"));
        self.ip(&format!("link set {peer} up"));
    }

    /// Runs `f` inside the node's namespace on a tokio runtime, so the sockets it
    /// opens (the reconciler's) belong to the node.
    pub fn run<T: Send>(&self, f: impl AsyncFnOnce() -> T + Send) -> T {
        self.node()
            .run(|| harness::runtime().block_on(f()))
            .expect("entering the node's namespace")
    }
}
