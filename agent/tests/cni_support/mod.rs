//! What the CNI and NAT tests share: tabby-cni called as a runtime calls it,
//! host-local as its IPAM, and a one-node lab.

// Each test file uses the part it needs.
#![allow(dead_code)]

use std::net::IpAddr;
use std::process::Command;

use harness::{Lab, Netns, Node};
use serde_json::{Value, json};

/// Where Debian's containernetworking-plugins puts `host-local`.
pub const CNI_PATH: &str = "/usr/lib/cni";
const NETWORK: &str = "tabby-test";

pub use harness::cni::Answer;

/// A network config and the runtime's side of calls on one node.
pub struct Runtime<'a> {
    node: &'a Node,
    /// host-local's state: one file per allocated address under `<dir>/<network>/`.
    data_dir: tempfile::TempDir,
    pub conf: Value,
    /// Kubernetes namespace of the pods: unique per lab.
    namespace: String,
}

impl<'a> Runtime<'a> {
    pub fn new(lab: &Lab, node: &'a Node, ranges: Value) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let conf = json!({
            "cniVersion": "1.0.0",
            "name": NETWORK,
            "type": "tabby-cni",
            "mtu": 1400,
            "ipam": {
                "type": "host-local",
                "ranges": ranges,
                "dataDir": data_dir.path(),
            },
        });
        Self {
            node,
            data_dir,
            conf,
            namespace: format!("ns-{}", lab.id()),
        }
    }

    /// Calls the plugin with `command` for `pod` (netns `None`: already gone).
    pub fn call(&self, command: &str, pod: &str, netns: Option<&Netns>, conf: &Value) -> Answer {
        let netns = netns.map(|n| n.path()).unwrap_or_default();
        run_plugin(
            self.node.command(env!("CARGO_BIN_EXE_tabby-cni")),
            &[
                ("CNI_COMMAND", command),
                ("CNI_CONTAINERID", &format!("ctr-{pod}")),
                ("CNI_NETNS", &netns.display().to_string()),
                ("CNI_IFNAME", "eth0"),
                (
                    "CNI_ARGS",
                    &format!(
                        "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={pod}",
                        self.namespace
                    ),
                ),
                ("CNI_PATH", CNI_PATH),
            ],
            conf,
        )
    }

    pub fn add(&self, pod: &str, netns: &Netns) -> Value {
        let answer = self.call("ADD", pod, Some(netns), &self.conf);
        assert!(answer.success, "ADD {pod}: {}", answer.json);
        answer.json
    }

    pub fn del(&self, pod: &str, netns: Option<&Netns>) -> Answer {
        self.call("DEL", pod, netns, &self.conf)
    }

    pub fn check(&self, pod: &str, netns: &Netns, prev_result: &Value) -> Answer {
        let mut conf = self.conf.clone();
        conf["prevResult"] = prev_result.clone();
        self.call("CHECK", pod, Some(netns), &conf)
    }

    /// The Kubernetes namespace the pods are in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn host_veth(&self, pod: &str) -> String {
        agent::veth::host_veth_name(&self.namespace, pod)
    }

    /// Addresses host-local has handed out (its state directory's file names).
    pub fn allocated(&self) -> Vec<String> {
        let dir = self.data_dir.path().join(NETWORK);
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|name| name.parse::<IpAddr>().is_ok())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// Runs the plugin binary as a runtime does: `vars` in the environment, `conf`
/// on stdin, the answer from stdout.
pub fn run_plugin(command: Command, vars: &[(&str, &str)], conf: &Value) -> Answer {
    harness::cni::run_plugin(command, vars, conf).unwrap()
}

/// A one-subnet lab whose node has a default route (via the router): proxy ARP
/// answers for 169.254.1.1 only when the node has a route to it.
pub fn lab(test: &str) -> Lab {
    Lab::new(test)
        .subnet("a", "10.0.1.0/24")
        .node("n1", "a")
        .router()
        .build()
        .unwrap()
}

pub fn v4_range() -> Value {
    json!([[{"subnet": "10.244.0.0/24"}]])
}

/// The pod's address from an ADD result.
pub fn pod_ip(result: &Value, index: usize) -> IpAddr {
    let cidr = result["ips"][index]["address"].as_str().unwrap();
    cidr.split('/').next().unwrap().parse().unwrap()
}

pub fn ip_json(netns: &Netns, args: &str) -> Value {
    serde_json::from_str(&netns.ip(&format!("-j {args}")).unwrap()).unwrap()
}

pub fn has_link(netns: &Netns, name: &str) -> bool {
    ip_json(netns, "link show")
        .as_array()
        .unwrap()
        .iter()
        .any(|link| link["ifname"] == name)
}
