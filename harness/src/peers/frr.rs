//! FRR's bgpd alone, without zebra (`-Z`): it speaks BGP but installs nothing in the
//! kernel. With a neighbour asking for BFD, zebra and bfdd run beside it (bgpd
//! reaches bfdd only through zebra), and zebra installs its routes. Runs as root without dropping privileges (`-S`), with its pid file and vty
//! socket in a private directory, no vty TCP port (`-P 0`). Queried with
//! `vtysh --vty_socket`, JSON output.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;
use tempfile::TempDir;

use ipnet::IpNet;

use super::bfdd::{Bfdd, Zebra};
use super::{
    BgpConfig, BgpPeer, Route, community, next_hop, role, socket_dir, vtysh, write_config,
};
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
    asn: u32,
    /// bfdd and the zebra bgpd reaches it through, when a neighbour has BFD
    /// (dropped after bgpd).
    bfd: Option<(Bfdd, Zebra)>,
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
        let bfd = if config.neighbors.iter().any(|n| n.bfd) {
            let zebra = Zebra::start(netns)?;
            Some((Bfdd::start_beside(netns, config, &zebra)?, zebra))
        } else {
            None
        };
        let mut command = netns.command(BGPD);
        match &bfd {
            Some((_, zebra)) => command.arg("-z").arg(zebra.zserv()),
            None => command.arg("-Z"),
        };
        command
            .args(["-S", "-P", "0", "--log", "stdout", "-f"])
            .arg(&file)
            .arg("-i")
            .arg(sockets.path().join("bgpd.pid"))
            .arg("--vty_socket")
            .arg(sockets.path());
        let process = Process::spawn(command, netns.logs(), &format!("bgpd-{}", role(netns)))?;
        let mut frr = Self {
            process,
            sockets,
            asn: config.asn,
            bfd,
        };
        wait_until(Duration::from_secs(10), "vtysh reaches bgpd", || {
            frr.process.check_running()?;
            frr.vtysh("show bgp summary json").map(|_| true)
        })?;
        Ok(frr)
    }

    /// Runs one vtysh command against this bgpd; returns its output.
    pub fn vtysh(&self, command: &str) -> Result<String> {
        process::exec(vtysh(self.sockets.path(), "bgpd").args(["-c", command]))
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

    /// The bfdd beside bgpd, when a neighbour has BFD.
    pub fn bfdd(&mut self) -> Option<&mut Bfdd> {
        self.bfd.as_mut().map(|(bfdd, _)| bfdd)
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

    fn route(&self, prefix: IpNet) -> Result<Option<Route>> {
        let family = if prefix.addr().is_ipv4() {
            "ipv4"
        } else {
            "ipv6"
        };
        let detail = self.vtysh_json(&format!("show bgp {family} unicast {prefix} json"))?;
        Ok(parse_detail(prefix, &detail))
    }

    fn withdraw(&self, prefix: IpNet) -> Result<()> {
        let family = if prefix.addr().is_ipv4() {
            "ipv4"
        } else {
            "ipv6"
        };
        process::exec(vtysh(self.sockets.path(), "bgpd").args([
            "-c",
            "configure terminal",
            "-c",
            &format!("router bgp {}", self.asn),
            "-c",
            &format!("address-family {family} unicast"),
            "-c",
            &format!("no network {prefix}"),
        ]))
        .map(drop)
    }
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
    if let Some(id) = config.cluster_id {
        lines.push(format!(" bgp cluster-id {id}"));
    }
    if let Some(time) = config.neighbors.iter().find_map(|n| n.graceful_restart) {
        lines.push(" bgp graceful-restart".to_owned());
        lines.push(format!(" bgp graceful-restart restart-time {time}"));
    }
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
        if n.bfd {
            lines.push(format!(" neighbor {a} bfd"));
        }
    }
    for (family, v4) in [("ipv4", true), ("ipv6", false)] {
        lines.push(format!(" address-family {family} unicast"));
        for route in config.routes.iter().filter(|r| r.addr().is_ipv4() == v4) {
            if config.communities.is_empty() {
                lines.push(format!("  network {route}"));
            } else {
                lines.push(format!("  network {route} route-map TAG"));
            }
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
            if n.next_hop_self {
                lines.push(format!("  neighbor {} next-hop-self force", n.address));
            }
        }
        lines.push(" exit-address-family".to_owned());
    }
    if !config.communities.is_empty() {
        lines.push("route-map TAG permit 10".to_owned());
        lines.push(format!(
            " set community {} additive",
            config.communities.join(" ")
        ));
    }
    lines.join("\n") + "\n"
}

/// Parses `show bgp <family> unicast <prefix> json`: the best of `paths`.
fn parse_detail(prefix: IpNet, detail: &Value) -> Option<Route> {
    let best = detail["paths"]
        .as_array()?
        .iter()
        .find(|p| p["bestpath"]["overall"] == true)?;
    let mut route = Route::new(prefix);
    route.next_hop = best["nexthops"][0]["ip"].as_str().and_then(next_hop);
    route.as_path = best["aspath"]["string"]
        .as_str()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|a| a.parse().ok())
        .collect();
    route.med = best["metric"].as_u64().and_then(|m| u32::try_from(m).ok());
    route.local_pref = best["locPrf"].as_u64().and_then(|m| u32::try_from(m).ok());
    route.communities = best["community"]["string"]
        .as_str()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(community)
        .collect();
    route.communities.sort();
    route.originator_id = best["originatorId"].as_str().and_then(|a| a.parse().ok());
    route.cluster_list = best["clusterList"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str()?.parse().ok())
        .collect();
    Some(route)
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
            let mut route = Route::new(prefix.parse().ok()?);
            route.next_hop = best["nexthops"][0]["ip"].as_str().and_then(next_hop);
            route.as_path = best["path"]
                .as_str()
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|a| a.parse().ok())
                .collect();
            Some(route)
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
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].next_hop, Some("10.0.1.12".parse().unwrap()));
        assert_eq!(routes[0].as_path, [65002]);
        assert_eq!(routes[1].next_hop, None);
    }

    #[test]
    fn route_detail_json_yields_the_attributes() {
        let detail: Value = serde_json::from_str(
            r#"{"prefix": "10.8.0.0/24", "paths": [
                {"aspath": {"string": "65003"}, "bestpath": {"overall": false}},
                {"aspath": {"string": "65002 65009"}, "metric": 7, "locPrf": 150,
                 "community": {"string": "64512:42 no-export"},
                 "originatorId": "10.0.1.10", "clusterList": {"list": ["10.0.0.9"]},
                 "nexthops": [{"ip": "10.0.1.12"}], "bestpath": {"overall": true}}]}"#,
        )
        .unwrap();
        let route = parse_detail("10.8.0.0/24".parse().unwrap(), &detail).unwrap();
        assert_eq!(route.as_path, [65002, 65009]);
        assert_eq!((route.med, route.local_pref), (Some(7), Some(150)));
        assert_eq!(route.communities, ["64512:42", "65535:65281"]);
        assert_eq!(route.originator_id, Some("10.0.1.10".parse().unwrap()));
        assert_eq!(
            route.cluster_list,
            ["10.0.0.9".parse::<std::net::Ipv4Addr>().unwrap()]
        );
    }
}
