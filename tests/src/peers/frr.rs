//! FRR's bgpd alone, without zebra (`-Z`): it speaks BGP but installs nothing in the
//! kernel. Runs as root without dropping privileges (`-S`), with its pid file and vty
//! socket in a private directory, no vty TCP port (`-P 0`). Queried with
//! `vtysh --vty_socket`, JSON output.

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;
use tempfile::TempDir;

use super::{BgpConfig, BgpPeer, Route, next_hop, role, socket_dir, write_config};
use crate::netns::Netns;
use crate::process::{self, Process};
use crate::wait::wait_until;

/// Where Debian installs the daemon.
const BGPD: &str = "/usr/lib/frr/bgpd";

/// A running FRR bgpd inside a namespace; killed on drop.
#[derive(Debug)]
pub struct Frr {
    process: Process,
    sockets: TempDir,
}

impl Frr {
    /// Starts bgpd in `netns` with `config` and waits until vtysh reaches it.
    pub fn start(netns: &Netns, config: &BgpConfig) -> Result<Self> {
        let sockets = socket_dir()?;
        let file = write_config(
            netns,
            &format!("bgpd-{}.conf", role(netns)),
            &render(config, netns.name()),
        )?;
        let mut command = netns.command(BGPD);
        command
            .args(["-Z", "-S", "-P", "0", "--log", "stdout", "-f"])
            .arg(&file)
            .arg("-i")
            .arg(sockets.path().join("bgpd.pid"))
            .arg("--vty_socket")
            .arg(sockets.path());
        let process = Process::spawn(command, netns.logs(), &format!("bgpd-{}", role(netns)))?;
        let mut frr = Self { process, sockets };
        wait_until(Duration::from_secs(10), "vtysh reaches bgpd", || {
            frr.process.check_running()?;
            frr.vtysh("show bgp summary json").map(|_| true)
        })?;
        Ok(frr)
    }

    /// Runs one vtysh command against this bgpd; returns its output.
    pub fn vtysh(&self, command: &str) -> Result<String> {
        process::exec(vtysh(self.sockets.path()).args(["-c", command]))
    }

    /// Runs a vtysh `show ... json` command and parses it.
    pub fn vtysh_json(&self, command: &str) -> Result<Value> {
        let output = self.vtysh(command)?;
        serde_json::from_str(&output).with_context(|| format!("vtysh {command}: {output}"))
    }

    /// The bgpd process (pid, log).
    pub fn process(&self) -> &Process {
        &self.process
    }
}

impl BgpPeer for Frr {
    fn established(&self, neighbor: IpAddr) -> Result<bool> {
        let neighbors = self.vtysh_json("show bgp neighbors json")?;
        Ok(neighbors[neighbor.to_string()]["bgpState"] == "Established")
    }

    fn routes(&self) -> Result<Vec<Route>> {
        let mut routes = Vec::new();
        for family in ["ipv4", "ipv6"] {
            let table = self.vtysh_json(&format!("show bgp {family} unicast json"))?;
            routes.extend(parse_routes(&table));
        }
        Ok(routes)
    }
}

fn vtysh(sockets: &Path) -> Command {
    let mut command = Command::new("vtysh");
    command
        .arg("--vty_socket")
        .arg(sockets)
        .args(["-d", "bgpd"]);
    command
}

/// bgpd's config for `config`. Without zebra, `network` statements must not wait for
/// the prefix to appear in the RIB (`no bgp network import-check`).
fn render(config: &BgpConfig, hostname: &str) -> String {
    let mut lines = vec![
        "frr defaults traditional".to_owned(),
        format!("hostname {hostname}"),
        "log stdout informational".to_owned(),
        format!("router bgp {}", config.asn),
        format!(" bgp router-id {}", config.router_id),
        " no bgp ebgp-requires-policy".to_owned(),
        " no bgp network import-check".to_owned(),
        " no bgp default ipv4-unicast".to_owned(),
    ];
    for n in &config.neighbors {
        let a = n.address;
        lines.push(format!(" neighbor {a} remote-as {}", n.asn));
        if n.passive {
            lines.push(format!(" neighbor {a} passive"));
        }
        if let Some(password) = &n.password {
            lines.push(format!(" neighbor {a} password {password}"));
        }
        if let Some(ttl) = n.multihop {
            lines.push(format!(" neighbor {a} ebgp-multihop {ttl}"));
        }
    }
    for (family, v4) in [("ipv4", true), ("ipv6", false)] {
        lines.push(format!(" address-family {family} unicast"));
        for route in config.routes.iter().filter(|r| r.addr().is_ipv4() == v4) {
            lines.push(format!("  network {route}"));
        }
        for n in config
            .neighbors
            .iter()
            .filter(|n| n.address.is_ipv4() == v4)
        {
            lines.push(format!("  neighbor {} activate", n.address));
            if n.rr_client {
                lines.push(format!("  neighbor {} route-reflector-client", n.address));
            }
        }
        lines.push(" exit-address-family".to_owned());
    }
    lines.join("\n") + "\n"
}

/// Parses `show bgp <family> unicast json`: `routes` maps each prefix to its paths.
fn parse_routes(table: &Value) -> Vec<Route> {
    let Some(prefixes) = table["routes"].as_object() else {
        return Vec::new();
    };
    prefixes
        .iter()
        .filter_map(|(prefix, paths)| {
            let best = paths.as_array()?.iter().find(|p| p["bestpath"] == true)?;
            Some(Route {
                prefix: prefix.parse().ok()?,
                next_hop: best["nexthops"][0]["ip"].as_str().and_then(next_hop),
                as_path: best["path"]
                    .as_str()
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|a| a.parse().ok())
                    .collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::Neighbor;

    #[test]
    fn config_activates_each_neighbour_in_its_family() {
        let config = BgpConfig::new(65001, "192.0.2.1".parse().unwrap())
            .neighbor(
                Neighbor::new("192.0.2.2".parse().unwrap(), 65002)
                    .passive()
                    .rr_client(),
            )
            .neighbor(Neighbor::new("fd00::2".parse().unwrap(), 65002).password("pw"))
            .route("10.1.0.0/24".parse().unwrap())
            .route("fd01::/64".parse().unwrap());
        let text = render(&config, "n1");
        let v4 = &text
            [text.find("address-family ipv4").unwrap()..text.find("address-family ipv6").unwrap()];
        let v6 = &text[text.find("address-family ipv6").unwrap()..];
        assert!(v4.contains("network 10.1.0.0/24"), "{text}");
        assert!(v4.contains("neighbor 192.0.2.2 activate"), "{text}");
        assert!(
            v4.contains("neighbor 192.0.2.2 route-reflector-client"),
            "{text}"
        );
        assert!(v6.contains("network fd01::/64"), "{text}");
        assert!(v6.contains("neighbor fd00::2 activate"), "{text}");
        assert!(text.contains("neighbor 192.0.2.2 passive"), "{text}");
        assert!(text.contains("neighbor fd00::2 password pw"), "{text}");
    }

    #[test]
    fn route_table_json_yields_best_paths() {
        let table: Value = serde_json::from_str(
            r#"{"routes": {
                "10.9.0.0/24": [{"bestpath": true, "path": "", "nexthops": [{"ip": "0.0.0.0"}]}],
                "10.8.0.0/24": [
                    {"valid": true, "path": "65003 65004", "nexthops": [{"ip": "10.0.1.13"}]},
                    {"bestpath": true, "path": "65002", "nexthops": [{"ip": "10.0.1.12"}]}
                ]}}"#,
        )
        .unwrap();
        let mut routes = parse_routes(&table);
        routes.sort_by_key(|r| r.prefix);
        assert_eq!(
            routes,
            [
                Route {
                    prefix: "10.8.0.0/24".parse().unwrap(),
                    next_hop: Some("10.0.1.12".parse().unwrap()),
                    as_path: vec![65002],
                },
                Route {
                    prefix: "10.9.0.0/24".parse().unwrap(),
                    next_hop: None,
                    as_path: vec![],
                },
            ]
        );
    }
}
