//! Silent partitions: nftables in a namespace drops every packet to and from a
//! peer (optionally one TCP port of it), with no RST and no ICMP, as a dead link or
//! a black-holing firewall does; only timers (BGP hold time, etcd keepalive and
//! request deadlines) can notice. Healed on drop.
//!
//! ```no_run
//! # fn f(lab: &harness::Lab) -> anyhow::Result<()> {
//! use harness::partition::Partition;
//! let cut = Partition::between(lab.node("n1"), "10.0.1.1".parse()?, Some(2379))?;
//! // ... n1 cannot reach etcd, and nothing tells it so ...
//! drop(cut); // healed
//! # Ok(()) }
//! ```

use std::net::IpAddr;

use anyhow::Result;

use crate::netns::Netns;

/// The nftables table holding the drops (its own, so nothing else is touched).
const TABLE: &str = "tabby_test_partition";

/// A partition in force; healed on drop.
#[derive(Debug)]
pub struct Partition {
    netns: String,
}

impl Partition {
    /// Drops, in `netns`, everything sent to `peer` and everything from it (only
    /// TCP to and from `port` of it, when given).
    pub fn between(netns: &Netns, peer: IpAddr, port: Option<u16>) -> Result<Self> {
        let family = if peer.is_ipv4() { "ip" } else { "ip6" };
        let (to, from) = match port {
            Some(port) => (format!("tcp dport {port}"), format!("tcp sport {port}")),
            None => (String::new(), String::new()),
        };
        let script = format!(
            "table inet {TABLE} {{\n\
             chain output {{ type filter hook output priority 0; {family} daddr {peer} {to} drop; }}\n\
             chain input {{ type filter hook input priority 0; {family} saddr {peer} {from} drop; }}\n\
             }}\n"
        );
        let file = tempfile::NamedTempFile::new()?;
        std::fs::write(file.path(), script)?;
        netns.exec("nft", &["-f", &file.path().display().to_string()])?;
        Ok(Self {
            netns: netns.name().to_owned(),
        })
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        let _ = crate::process::exec(
            crate::netns::command_in(&self.netns, "nft").args(["delete", "table", "inet", TABLE]),
        );
    }
}
