//! NAT outgoing: pods of `natOutgoing` pools reach destinations outside every pool
//! with the node's address, through tabby's own nftables tables `ip tabby-nat` and
//! `ip6 tabby-nat`.
//!
//! [`render`] is pure: pools in, an nft script out. The script recreates only
//! tabby's tables, inside one transaction (`nft -f` applies a file atomically):
//!
//! ```text
//! table ip tabby-nat                 # exists afterwards, even if it did not before
//! delete table ip tabby-nat          # ... so that this cannot fail
//! table ip tabby-nat { sets, chain } # the desired table, absent without NAT pools
//! ```
//!
//! so a reader never sees a half-built table, rules of other owners (kube-proxy,
//! firewalls) are never touched, and a restart converges by simply applying again.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};

use ipnet::IpNet;

/// The name of tabby's table in both families.
pub const NAT_TABLE: &str = "tabby-nat";

/// An IP pool as NAT outgoing needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatPool {
    pub cidr: IpNet,
    /// Masquerade this pool's traffic to destinations outside every pool.
    pub nat_outgoing: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum NatError {
    #[error("running nft: {0} (is the nftables package installed?)")]
    Spawn(std::io::Error),
    #[error("nft refused tabby's NAT ruleset ({status}): {stderr}")]
    Refused { status: String, stderr: String },
}

/// The nft script that makes tabby's tables match `pools`.
pub fn render(pools: &[NatPool]) -> String {
    let mut script = String::new();
    for family in [Family::V4, Family::V6] {
        let all: Vec<IpNet> = family.pick(pools, |_| true);
        let masquerading: Vec<IpNet> = family.pick(pools, |p| p.nat_outgoing);
        let table = format!("{} {NAT_TABLE}", family.table());
        let _ = writeln!(script, "table {table}\ndelete table {table}");
        if masquerading.is_empty() {
            continue;
        }
        let (addr, match_) = (family.addr_type(), family.match_());
        let _ = writeln!(script, "table {table} {{");
        for (name, cidrs) in [("all-pools", &all), ("masq-pools", &masquerading)] {
            let elements: Vec<String> = cidrs.iter().map(IpNet::to_string).collect();
            // auto-merge: overlapping pools would otherwise be a conflict.
            let _ = writeln!(
                script,
                "\tset {name} {{\n\t\ttype {addr}\n\t\tflags interval\n\t\tauto-merge\n\t\telements = {{ {} }}\n\t}}",
                elements.join(", ")
            );
        }
        let _ = writeln!(
            script,
            "\tchain postrouting {{\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\
             \t\t{match_} saddr @masq-pools {match_} daddr != @all-pools masquerade\n\t}}\n}}"
        );
    }
    script
}

/// Applies `script` (from [`render`]) with `nft -f -` in the calling thread's
/// network namespace.
pub fn apply(script: &str) -> Result<(), NatError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(NatError::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A failed write means nft exited early; its status and stderr say why.
        let _ = stdin.write_all(script.as_bytes());
    }
    let output = child.wait_with_output().map_err(NatError::Spawn)?;
    if output.status.success() {
        Ok(())
    } else {
        Err(NatError::Refused {
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn pick(self, pools: &[NatPool], keep: impl Fn(&NatPool) -> bool) -> Vec<IpNet> {
        pools
            .iter()
            .filter(|p| p.cidr.addr().is_ipv4() == matches!(self, Self::V4) && keep(p))
            .map(|p| p.cidr.trunc())
            .collect()
    }

    fn table(self) -> &'static str {
        match self {
            Self::V4 => "ip",
            Self::V6 => "ip6",
        }
    }

    fn addr_type(self) -> &'static str {
        match self {
            Self::V4 => "ipv4_addr",
            Self::V6 => "ipv6_addr",
        }
    }

    fn match_(self) -> &'static str {
        match self {
            Self::V4 => "ip",
            Self::V6 => "ip6",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(cidr: &str, nat_outgoing: bool) -> NatPool {
        NatPool {
            cidr: cidr.parse().unwrap(),
            nat_outgoing,
        }
    }

    #[test]
    fn nat_pools_masquerade_to_destinations_outside_every_pool() {
        let script = render(&[
            pool("10.244.0.0/16", true),
            pool("10.96.0.0/12", false),
            pool("fd00:244::/48", true),
        ]);
        let expected = "\
table ip tabby-nat
delete table ip tabby-nat
table ip tabby-nat {
\tset all-pools {
\t\ttype ipv4_addr
\t\tflags interval
\t\tauto-merge
\t\telements = { 10.244.0.0/16, 10.96.0.0/12 }
\t}
\tset masq-pools {
\t\ttype ipv4_addr
\t\tflags interval
\t\tauto-merge
\t\telements = { 10.244.0.0/16 }
\t}
\tchain postrouting {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tip saddr @masq-pools ip daddr != @all-pools masquerade
\t}
}
table ip6 tabby-nat
delete table ip6 tabby-nat
table ip6 tabby-nat {
\tset all-pools {
\t\ttype ipv6_addr
\t\tflags interval
\t\tauto-merge
\t\telements = { fd00:244::/48 }
\t}
\tset masq-pools {
\t\ttype ipv6_addr
\t\tflags interval
\t\tauto-merge
\t\telements = { fd00:244::/48 }
\t}
\tchain postrouting {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tip6 saddr @masq-pools ip6 daddr != @all-pools masquerade
\t}
}
";
        assert_eq!(script, expected);
    }

    #[test]
    fn without_nat_pools_the_script_only_removes_tabbys_tables() {
        assert_eq!(
            render(&[pool("10.244.0.0/16", false)]),
            "table ip tabby-nat\ndelete table ip tabby-nat\n\
             table ip6 tabby-nat\ndelete table ip6 tabby-nat\n"
        );
    }

    #[test]
    fn pool_cidrs_with_host_bits_are_truncated_to_their_network() {
        assert!(render(&[pool("10.244.3.7/16", true)]).contains("{ 10.244.0.0/16 }"));
    }
}
