//! Routes as `ip -j route` reports them, one normalised line each, so tests can
//! compare a node's kernel table with the table they expect:
//!
//! ```text
//! 10.0.0.1/32 dev cali1 scope link
//! blackhole 10.0.0.0/26
//! 10.0.2.0/26 via 198.51.100.2 dev tunl0 onlink
//! 10.0.3.0/26 nexthop via 192.0.2.3 dev eth0 nexthop via 192.0.2.4 dev eth0
//! ```

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::netns::Netns;
use crate::process::Process;

/// The main table's routes of `protocol` (`84` for tabby's), both families.
pub fn routes(netns: &Netns, protocol: &str) -> Result<BTreeSet<String>> {
    let mut lines = BTreeSet::new();
    for family in ["-4", "-6"] {
        let text = netns.ip(&format!("-j {family} route show proto {protocol}"))?;
        let json: Value = serde_json::from_str(&text).context("ip -j route output")?;
        for route in json.as_array().into_iter().flatten() {
            lines.insert(describe(route, family));
        }
    }
    Ok(lines)
}

/// `ip monitor route` in a namespace: every route change from its start on, so a
/// test can say that nothing changed while it broke something.
#[derive(Debug)]
pub struct RouteMonitor {
    process: Process,
}

impl RouteMonitor {
    pub fn start(netns: &Netns) -> Result<Self> {
        let label = format!("route-monitor-{}", netns.name());
        Ok(Self {
            process: netns.spawn(&label, "ip", &["monitor", "route"])?,
        })
    }

    /// The changes seen so far, but the kernel's own routes (link-local addresses
    /// finishing DAD come and go) and the error line `ip monitor` prints when
    /// another test deletes a network namespace (no route change).
    pub fn changes(&self) -> Vec<String> {
        self.process
            .log()
            .lines()
            .filter(|l| !l.contains("proto kernel"))
            .filter(|l| *l != "Error: Peer netns reference is invalid.")
            .map(str::to_owned)
            .collect()
    }
}

/// The lines of `expected`, for comparing with [`routes`].
pub fn lines(expected: &[&str]) -> BTreeSet<String> {
    expected.iter().map(|s| s.to_string()).collect()
}

fn describe(route: &Value, family: &str) -> String {
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let mut dst = text(route, "dst").unwrap_or_default();
    if dst == "default" {
        dst = if family == "-4" { "0.0.0.0/0" } else { "::/0" }.into();
    }
    if !dst.contains('/') {
        dst.push_str(if family == "-4" { "/32" } else { "/128" });
    }
    let blackhole = text(route, "type").as_deref() == Some("blackhole");
    let mut line = if blackhole {
        format!("blackhole {dst}")
    } else {
        dst
    };
    let hop = |line: &mut String, hop: &Value| {
        if let Some(gateway) = text(hop, "gateway") {
            line.push_str(&format!(" via {gateway}"));
        }
        // A next hop of the other family (RFC 8950), as `ip route` prints it.
        if let Some(via) = hop.get("via")
            && let (Some(family), Some(host)) = (text(via, "family"), text(via, "host"))
        {
            line.push_str(&format!(" via {family} {host}"));
        }
        if let Some(dev) = text(hop, "dev").filter(|_| !blackhole) {
            line.push_str(&format!(" dev {dev}"));
        }
        let flags = hop
            .get("flags")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if flags.iter().any(|f| f == "onlink") {
            line.push_str(" onlink");
        }
    };
    match route.get("nexthops").and_then(Value::as_array) {
        Some(hops) => hops.iter().for_each(|h| {
            line.push_str(" nexthop");
            hop(&mut line, h);
        }),
        None => hop(&mut line, route),
    }
    if text(route, "scope").as_deref() == Some("link") {
        line.push_str(" scope link");
    }
    line
}
