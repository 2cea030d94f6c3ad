//! GoBGP: `gobgpd` from a TOML config, its gRPC API on the namespace's loopback, and
//! the `gobgp` CLI with `-j` (JSON) to query it. Originated routes are added through
//! the API after start (GoBGP's config file has no static routes).

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ipnet::IpNet;
use serde_json::Value;

use super::{BgpConfig, BgpPeer, Route, community, next_hop, role, write_config};
use crate::netns::{self, Netns};
use crate::process::{self, Process};
use crate::wait::wait_until;

/// The gRPC API port, on the namespace's own loopback (so it never collides).
pub const API_PORT: u16 = 50051;

/// `session_state` of an Established neighbour in the API's JSON.
const ESTABLISHED: i64 = 6;

/// A running gobgpd inside a namespace; killed on drop.
#[derive(Debug)]
pub struct GoBgp {
    process: Process,
    netns: String,
    /// Tags on the routes it originates.
    communities: Vec<String>,
}

impl GoBgp {
    /// Starts gobgpd in `netns` with `config`, waits for its API and adds the routes.
    pub fn start(netns: &Netns, config: &BgpConfig) -> Result<Self> {
        if let Some(n) = config.neighbors.iter().find(|n| n.next_hop_self) {
            bail!(
                "neighbour {}: next-hop-self is not rendered for GoBGP (it needs a policy)",
                n.address
            );
        }
        let file = write_config(
            netns,
            &format!("gobgpd-{}.toml", role(netns)),
            &render(config),
        )?;
        let mut command = netns.command("gobgpd");
        command
            .arg("-f")
            .arg(&file)
            .args(["-t", "toml", "-p", "--pprof-disable"])
            .arg(format!("--api-hosts=127.0.0.1:{API_PORT}"));
        let process = Process::spawn(command, netns.logs(), &format!("gobgpd-{}", role(netns)))?;
        let mut gobgp = Self {
            process,
            netns: netns.name().to_owned(),
            communities: config.communities.clone(),
        };
        wait_until(Duration::from_secs(10), "the gobgpd API answers", || {
            gobgp.process.check_running()?;
            gobgp.cli(&["global"]).map(|_| true)
        })?;
        for route in &config.routes {
            gobgp.add_route(*route)?;
        }
        Ok(gobgp)
    }

    /// Runs `gobgp -p <port> <args>` inside the namespace; returns stdout.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        process::exec(
            netns::command_in(&self.netns, "gobgp")
                .args(["-p", &API_PORT.to_string()])
                .args(args),
        )
    }

    /// Runs `gobgp -j ...` and parses the JSON.
    pub fn cli_json(&self, args: &[&str]) -> Result<Value> {
        let mut all = vec!["-j"];
        all.extend_from_slice(args);
        let output = self.cli(&all)?;
        serde_json::from_str(&output).with_context(|| format!("gobgp {}: {output}", args.join(" ")))
    }

    /// Originates `prefix` (`gobgp global rib add`).
    pub fn add_route(&self, prefix: IpNet) -> Result<()> {
        let family = if prefix.addr().is_ipv4() {
            "ipv4"
        } else {
            "ipv6"
        };
        let prefix = prefix.to_string();
        let mut args = vec!["global", "rib", "add", "-a", family, &prefix];
        let communities = self.communities.join(",");
        if !communities.is_empty() {
            args.extend(["community", &communities]);
        }
        self.cli(&args).map(drop)
    }

    /// Stops originating `prefix` (`gobgp global rib del`).
    pub fn del_route(&self, prefix: IpNet) -> Result<()> {
        let family = if prefix.addr().is_ipv4() {
            "ipv4"
        } else {
            "ipv6"
        };
        self.cli(&["global", "rib", "del", "-a", family, &prefix.to_string()])
            .map(drop)
    }

    /// The gobgpd process (pid, log).
    pub fn process(&self) -> &Process {
        &self.process
    }
}

impl BgpPeer for GoBgp {
    fn established(&self, neighbor: IpAddr) -> Result<bool> {
        let neighbors = self.cli_json(&["neighbor"])?;
        let address = neighbor.to_string();
        Ok(neighbors.as_array().is_some_and(|all| {
            all.iter().any(|n| {
                n["state"]["neighbor_address"] == address.as_str()
                    && n["state"]["session_state"].as_i64() == Some(ESTABLISHED)
            })
        }))
    }

    fn routes(&self) -> Result<Vec<Route>> {
        let mut routes = Vec::new();
        for family in ["ipv4", "ipv6"] {
            routes.extend(parse_routes(
                &self.cli_json(&["global", "rib", "-a", family])?,
            ));
        }
        Ok(routes)
    }

    fn withdraw(&self, prefix: IpNet) -> Result<()> {
        self.del_route(prefix)
    }
}

fn number(value: &Value) -> Option<u32> {
    value.as_u64().and_then(|v| u32::try_from(v).ok())
}

/// gobgpd's TOML for `config`.
fn render(config: &BgpConfig) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "[global.config]\n  as = {}\n  router-id = \"{}\"",
        config.asn, config.router_id
    );
    for n in &config.neighbors {
        let _ = writeln!(
            text,
            "\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{}\"\n    peer-as = {}",
            n.address, n.asn
        );
        if let Some(password) = &n.password {
            let _ = writeln!(text, "    auth-password = \"{password}\"");
        }
        if n.passive {
            text.push_str("  [neighbors.transport.config]\n    passive-mode = true\n");
        }
        if let Some(ttl) = n.multihop {
            let _ = writeln!(
                text,
                "  [neighbors.ebgp-multihop.config]\n    enabled = true\n    multihop-ttl = {ttl}"
            );
        }
        if let Some(time) = n.graceful_restart {
            let _ = writeln!(
                text,
                "  [neighbors.graceful-restart.config]\n    enabled = true\n    restart-time = {time}"
            );
        }
        if n.rr_client {
            let _ = writeln!(
                text,
                "  [neighbors.route-reflector.config]\n    route-reflector-client = true\n    route-reflector-cluster-id = \"{}\"",
                config.cluster_id.unwrap_or(config.router_id)
            );
        }
        let family = if n.address.is_ipv4() {
            "ipv4-unicast"
        } else {
            "ipv6-unicast"
        };
        let _ = writeln!(
            text,
            "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{family}\""
        );
        if n.graceful_restart.is_some() {
            text.push_str(
                "    [neighbors.afi-safis.mp-graceful-restart.config]\n      enabled = true\n",
            );
        }
    }
    text
}

/// Parses `gobgp -j global rib`: each prefix maps to its paths, whose attributes are
/// typed objects (2 AS_PATH, 3 NEXT_HOP, 14 MP_REACH_NLRI).
fn parse_routes(rib: &Value) -> Vec<Route> {
    let Some(prefixes) = rib.as_object() else {
        return Vec::new();
    };
    prefixes
        .iter()
        .filter_map(|(prefix, paths)| {
            let best = paths.as_array()?.iter().find(|p| p["best"] == true)?;
            let attributes = best["attrs"].as_array()?;
            let mut route = Route::new(prefix.parse().ok()?);
            for attribute in attributes {
                match attribute["type"].as_i64() {
                    Some(2) => {
                        route.as_path = attribute["as_paths"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .flat_map(|segment| {
                                segment["asns"].as_array().cloned().unwrap_or_default()
                            })
                            .filter_map(|asn| asn.as_u64().and_then(|a| u32::try_from(a).ok()))
                            .collect();
                    }
                    Some(3) => route.next_hop = attribute["nexthop"].as_str().and_then(next_hop),
                    Some(4) => route.med = number(&attribute["metric"]),
                    Some(5) => route.local_pref = number(&attribute["value"]),
                    Some(8) => {
                        route.communities = attribute["communities"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|c| community(&c.as_u64()?.to_string()))
                            .collect();
                        route.communities.sort();
                    }
                    Some(9) => {
                        route.originator_id =
                            attribute["value"].as_str().and_then(|a| a.parse().ok())
                    }
                    Some(10) => {
                        route.cluster_list = attribute["value"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|a| a.as_str()?.parse().ok())
                            .collect();
                    }
                    // GoBGP 3 writes "nexthop"; some versions "nexthops": [...].
                    Some(14) => {
                        route.next_hop = attribute["nexthop"]
                            .as_str()
                            .or_else(|| attribute["nexthops"][0].as_str())
                            .and_then(next_hop)
                    }
                    _ => {}
                }
            }
            Some(route)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::Neighbor;

    #[test]
    fn config_carries_every_neighbour_option() {
        let config = BgpConfig::new(65002, "192.0.2.2".parse().unwrap()).neighbor(
            Neighbor::new("192.0.2.1".parse().unwrap(), 65001)
                .passive()
                .password("pw")
                .multihop(2)
                .rr_client(),
        );
        let text = render(&config);
        for expected in [
            "as = 65002",
            "router-id = \"192.0.2.2\"",
            "neighbor-address = \"192.0.2.1\"",
            "peer-as = 65001",
            "auth-password = \"pw\"",
            "passive-mode = true",
            "multihop-ttl = 2",
            "route-reflector-client = true",
            "afi-safi-name = \"ipv4-unicast\"",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }

    #[test]
    fn rib_json_yields_best_paths_with_attributes() {
        let rib: Value = serde_json::from_str(
            r#"{"10.1.0.0/24": [{"best": true, "attrs": [
                    {"type": 1, "value": 0},
                    {"type": 2, "as_paths": [{"type": 2, "num": 2, "asns": [65001, 65005]}]},
                    {"type": 3, "nexthop": "10.0.1.10"}]}],
                "fd01::/64": [{"best": true, "attrs": [
                    {"type": 14, "nexthop": "fd00::a"}]}]}"#,
        )
        .unwrap();
        let mut routes = parse_routes(&rib);
        routes.sort_by_key(|r| r.prefix);
        assert_eq!(routes[0].as_path, [65001, 65005]);
        assert_eq!(routes[0].next_hop, Some("10.0.1.10".parse().unwrap()));
        assert_eq!(routes[1].next_hop, Some("fd00::a".parse().unwrap()));
    }
}
