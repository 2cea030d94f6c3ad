//! What an operator applies to set the cluster up, written as YAML and applied
//! with the real `calicoctl-rs` from the router's namespace (where the datastore is): the
//! default pool, the BGP configuration, and, when the lab has them, the reflectors'
//! `Node`s and the agents' `BGPPeer`s to the reflectors and to the top-of-rack
//! router.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;

use anyhow::{Context, Result};

use harness::e2e::Cluster;

/// The AS of every node and reflector, and the top-of-rack router's.
pub const CLUSTER_AS: u32 = 64512;
pub const TOR_AS: u32 = 65000;
/// The reflectors' RFC 4456 cluster id (Calico's documented example).
pub const REFLECTOR_CLUSTER_ID: &str = "244.0.0.1";
/// The label reflector `Node`s carry.
pub const REFLECTOR_LABEL: &str = "route-reflector";

/// The cluster's shape, as the resources describe it.
#[derive(Debug)]
pub struct Shape<'a> {
    pub pool: &'a str,
    /// The pool's `vxlanMode`: Never, Always or CrossSubnet.
    pub vxlan_mode: &'a str,
    /// (name, address with prefix length)
    pub reflectors: Vec<(String, String)>,
    /// The top-of-rack router's address on each rack (subnet) that has nodes.
    pub tor: Vec<(String, IpAddr)>,
}

/// The resources as one YAML file of documents.
pub fn resources(shape: &Shape<'_>) -> String {
    let mut yaml = String::from(
        "# tabby-lab's cluster, as an operator sets it up:\n\
         #   calicoctl-rs apply -f FILE (with the datastore's flags)\n",
    );
    let mut document = |kind: &str, name: &str, labels: &str, spec: &str| {
        let _ = write!(
            yaml,
            "---\napiVersion: tabby.dev/v1\nkind: {kind}\nmetadata:\n  name: {name}\n{labels}spec:\n{spec}"
        );
    };
    document(
        "IPPool",
        "default-ipv4-ippool",
        "",
        &format!(
            "  cidr: {}\n  blockSize: 26\n  ipipMode: Never\n  vxlanMode: {}\n  nodeSelector: all()\n",
            shape.pool, shape.vxlan_mode
        ),
    );
    let mesh = shape.reflectors.is_empty();
    let comment = if mesh {
        "every node peers with every other"
    } else {
        "the reflectors carry the routes"
    };
    document(
        "BGPConfiguration",
        "default",
        "",
        &format!("  asNumber: {CLUSTER_AS}\n  nodeToNodeMeshEnabled: {mesh}   # {comment}\n"),
    );
    for (name, address) in &shape.reflectors {
        document(
            "Node",
            name,
            &format!("  labels:\n    {REFLECTOR_LABEL}: \"true\"\n"),
            &format!(
                "  bgp:\n    ipv4Address: {address}\n    routeReflectorClusterID: {REFLECTOR_CLUSTER_ID}\n"
            ),
        );
        let ip = address.split('/').next().unwrap_or_default();
        document(
            "BGPPeer",
            name,
            "",
            &format!(
                "  peerIP: {ip}   # every node peers with this reflector\n  asNumber: {CLUSTER_AS}\n"
            ),
        );
    }
    for (rack, address) in &shape.tor {
        document(
            "BGPPeer",
            &format!("tor-{rack}"),
            "",
            &format!(
                "  nodeSelector: rack == '{rack}'   # the nodes of rack {rack} peer with its ToR\n  \
                 peerIP: {address}\n  asNumber: {TOR_AS}\n"
            ),
        );
    }
    yaml
}

/// Applies `file` with calicoctl-rs; returns what it said it did, one line each
/// (`ippool/default-ipv4-ippool created`).
pub fn apply(cluster: &Cluster, file: &Path) -> Result<Vec<String>> {
    let mut command = cluster.calicoctl()?;
    command.args(["apply", "-f"]).arg(file);
    let said = harness::process::exec(&mut command).context("calicoctl-rs apply")?;
    Ok(said.lines().map(str::to_owned).collect())
}
