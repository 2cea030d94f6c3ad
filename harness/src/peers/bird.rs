//! BIRD2, queried with `birdc` (text: BIRD has no JSON output).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Result, bail};
use bfd::State;
use tempfile::TempDir;

use ipnet::IpNet;

use super::{
    Bfd, BfdPeer, BgpConfig, BgpPeer, Route, community, next_hop, role, socket_dir, write_config,
};
use crate::netns::Netns;
use crate::process::{self, Process};
use crate::wait::wait_until;

/// How BIRD is started.
#[derive(Debug, Clone, Copy, Default)]
struct Mode {
    /// `bird -R`: restarting gracefully.
    restarting: bool,
    /// Best routes go to the kernel.
    kernel: bool,
}

/// Exports every best route to the kernel's main tables (BIRD's own protocol
/// number, 12), for both families.
const KERNEL_PROTOCOLS: &str = "protocol kernel {\n  ipv4 { export all; };\n}\n\
    protocol kernel {\n  ipv6 { export all; };\n}\n";

/// A running BIRD2 inside a namespace; killed on drop.
#[derive(Debug)]
pub struct Bird {
    process: Process,
    socket: PathBuf,
    /// Protocol name of each neighbour's session.
    protocols: BTreeMap<IpAddr, String>,
    /// The originated routes, each in its own static protocol.
    routes: Vec<IpNet>,
    _sockets: TempDir,
}

impl Bird {
    /// Starts BIRD in `netns` with `config` and waits for its control socket.
    pub fn start(netns: &Netns, config: &BgpConfig) -> Result<Self> {
        Self::spawn(netns, config, Mode::default())
    }

    /// Starts BIRD as a router: it also installs its best routes in the
    /// namespace's kernel (`protocol kernel`), so it forwards what it learns.
    pub fn start_routing(netns: &Netns, config: &BgpConfig) -> Result<Self> {
        let mode = Mode {
            kernel: true,
            ..Mode::default()
        };
        Self::spawn(netns, config, mode)
    }

    /// Starts BIRD as a speaker restarting gracefully (`bird -R`): it announces the
    /// restart bit and waits for its peers' End-of-RIB.
    pub fn start_restarting(netns: &Netns, config: &BgpConfig) -> Result<Self> {
        let mode = Mode {
            restarting: true,
            ..Mode::default()
        };
        Self::spawn(netns, config, mode)
    }

    /// Starts BIRD in `netns` from a configuration written by hand (protocols of
    /// the caller's own, as a benchmark needs), for [`Bird::birdc`]; waits for its
    /// control socket like [`Bird::start`].
    pub fn start_text(netns: &Netns, text: &str) -> Result<Self> {
        Self::launch(netns, text, BTreeMap::new(), Vec::new(), false)
    }

    fn spawn(netns: &Netns, config: &BgpConfig, mode: Mode) -> Result<Self> {
        let (mut text, protocols) = render(config);
        if mode.kernel {
            text.push_str(KERNEL_PROTOCOLS);
        }
        Self::launch(
            netns,
            &text,
            protocols,
            config.routes.clone(),
            mode.restarting,
        )
    }

    fn launch(
        netns: &Netns,
        text: &str,
        protocols: BTreeMap<IpAddr, String>,
        routes: Vec<IpNet>,
        restarting: bool,
    ) -> Result<Self> {
        let sockets = socket_dir()?;
        let socket = sockets.path().join("bird.ctl");
        let file = write_config(netns, &format!("bird-{}.conf", role(netns)), text)?;
        let mut command = netns.command("bird");
        command
            .arg("-f")
            .arg("-c")
            .arg(&file)
            .arg("-s")
            .arg(&socket)
            .arg("-P")
            .arg(sockets.path().join("bird.pid"));
        if restarting {
            command.arg("-R");
        }
        let process = Process::spawn(command, netns.logs(), &format!("bird-{}", role(netns)))?;
        let mut bird = Self {
            process,
            socket,
            protocols,
            routes,
            _sockets: sockets,
        };
        // The control socket comes after the configuration is read: a large one
        // (a benchmark's 100,000 routes) takes a while.
        wait_until(Duration::from_secs(60), "birdc answers", || {
            bird.process.check_running()?;
            bird.birdc("show status").map(|_| true)
        })?;
        Ok(bird)
    }

    /// Runs a `birdc` command; returns its output.
    pub fn birdc(&self, command: &str) -> Result<String> {
        let output = process::exec(
            Command::new("birdc")
                .arg("-s")
                .arg(&self.socket)
                .args(command.split_whitespace()),
        )?;
        if output.contains("syntax error") {
            bail!("birdc {command}: {output}");
        }
        Ok(output)
    }

    /// The routes BIRD took from `neighbor` (best or not), as `show route protocol`
    /// lists them.
    pub fn routes_from(&self, neighbor: IpAddr) -> Result<Vec<Route>> {
        let Some(protocol) = self.protocols.get(&neighbor) else {
            bail!("{neighbor} is not a configured neighbour");
        };
        Ok(parse_routes(
            &self.birdc(&format!("show route all protocol {protocol}"))?,
        ))
    }

    /// The name of the BGP protocol of the session with `neighbor`.
    pub fn protocol(&self, neighbor: IpAddr) -> Option<&str> {
        self.protocols.get(&neighbor).map(String::as_str)
    }

    /// `birdc show protocols`.
    pub fn show_protocols(&self) -> Result<String> {
        self.birdc("show protocols")
    }

    /// The BIRD process (pid, log).
    pub fn process(&self) -> &Process {
        &self.process
    }

    /// SIGKILLs BIRD: no NOTIFICATION, its sessions just drop (a crash).
    pub fn kill(&mut self) {
        self.process.kill();
    }
}

impl BfdPeer for Bird {
    fn bfd_state(&self, remote: IpAddr) -> Result<Option<State>> {
        let sessions = parse_bfd_sessions(&self.birdc("show bfd sessions")?);
        Ok(sessions
            .into_iter()
            .find(|(a, _)| *a == remote)
            .map(|(_, s)| s))
    }
}

impl BgpPeer for Bird {
    fn established(&self, neighbor: IpAddr) -> Result<bool> {
        let Some(protocol) = self.protocols.get(&neighbor) else {
            bail!("{neighbor} is not a configured neighbour");
        };
        let output = self.show_protocols()?;
        Ok(output.lines().any(|line| {
            let mut words = line.split_whitespace();
            words.next() == Some(protocol.as_str()) && words.any(|w| w == "Established")
        }))
    }

    fn routes(&self) -> Result<Vec<Route>> {
        Ok(parse_routes(&self.birdc("show route all primary")?))
    }

    fn withdraw(&self, prefix: IpNet) -> Result<()> {
        let Some(index) = self.routes.iter().position(|r| *r == prefix.trunc()) else {
            bail!("{prefix} is not one of BIRD's routes");
        };
        self.birdc(&format!("disable {}", static_name(index)))
            .map(drop)
    }
}

/// BIRD's config for `config`, and the protocol name of each neighbour.
fn render(config: &BgpConfig) -> (String, BTreeMap<IpAddr, String>) {
    let mut text = String::new();
    let mut protocols = BTreeMap::new();
    let _ = writeln!(
        text,
        "router id {};\nlog stderr all;\nprotocol device {{}}",
        config.router_id
    );
    // One static protocol per route, so that a route can be withdrawn alone.
    let tags: String = config
        .communities
        .iter()
        .filter_map(|c| c.split_once(':'))
        .map(|(asn, value)| format!(" bgp_community.add(({asn},{value}));"))
        .collect();
    for (index, route) in config.routes.iter().enumerate() {
        let channel = if route.addr().is_ipv4() {
            "ipv4"
        } else {
            "ipv6"
        };
        let _ = writeln!(
            text,
            "protocol static {} {{\n  {channel};\n  route {route} blackhole {{{tags} }};\n}}",
            static_name(index)
        );
    }
    for (index, n) in config.neighbors.iter().enumerate() {
        let name = format!("peer{index}");
        let _ = writeln!(text, "protocol bgp {name} {{");
        let _ = writeln!(
            text,
            "  local as {};\n  neighbor {} as {};",
            config.asn, n.address, n.asn
        );
        if n.passive {
            text.push_str("  passive on;\n");
        }
        if let Some(password) = &n.password {
            let _ = writeln!(text, "  password \"{password}\";");
        }
        if let Some(ttl) = n.multihop {
            let _ = writeln!(text, "  multihop {ttl};");
        }
        if n.rr_client {
            text.push_str("  rr client;\n");
            if let Some(id) = config.cluster_id {
                let _ = writeln!(text, "  rr cluster id {id};");
            }
        }
        if let Some(time) = n.graceful_restart {
            let _ = writeln!(
                text,
                "  graceful restart on;\n  graceful restart time {time};"
            );
        }
        if n.bfd {
            text.push_str("  bfd on;\n");
        }
        if n.asn == config.asn && n.multihop.is_none() {
            // iBGP on a shared subnet: next hops resolve without an IGP.
            text.push_str("  direct;\n");
        }
        let channels: &[&str] = match (n.both_families, n.address.is_ipv4()) {
            (true, _) => &["ipv4", "ipv6"],
            (false, true) => &["ipv4"],
            (false, false) => &["ipv6"],
        };
        let next_hop = if n.next_hop_self {
            " next hop self;"
        } else {
            ""
        };
        for channel in channels {
            let _ = writeln!(text, "  {channel} {{ import all; export all;{next_hop} }};");
        }
        text.push_str("}\n");
        protocols.insert(n.address, name);
    }
    if !config.bfd.sessions.is_empty() || config.neighbors.iter().any(|n| n.bfd) {
        text.push_str(&render_bfd(&config.bfd));
    }
    (text, protocols)
}

/// `protocol bfd` with a `neighbor` per session; the same timers for directly
/// connected and multihop neighbours.
fn render_bfd(bfd: &Bfd) -> String {
    let ms = bfd.interval.as_millis();
    let timers = format!(
        "min rx interval {ms} ms; min tx interval {ms} ms; multiplier {};",
        bfd.multiplier
    );
    let mut text =
        format!("protocol bfd {{\n  interface \"*\" {{ {timers} }};\n  multihop {{ {timers} }};\n");
    for session in &bfd.sessions {
        let multihop = if session.multihop { " multihop on" } else { "" };
        let _ = writeln!(
            text,
            "  neighbor {} local {}{multihop};",
            session.remote, session.local
        );
    }
    text.push_str("}\n");
    text
}

/// Parses `show bfd sessions`: a line per session starting with the peer's address,
/// its state among the columns.
fn parse_bfd_sessions(output: &str) -> Vec<(IpAddr, State)> {
    output
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let address = words.next()?.parse().ok()?;
            let state = words.find_map(|word| match word {
                "AdminDown" => Some(State::AdminDown),
                "Down" => Some(State::Down),
                "Init" => Some(State::Init),
                "Up" => Some(State::Up),
                _ => None,
            })?;
            Some((address, state))
        })
        .collect()
}

fn static_name(index: usize) -> String {
    format!("static{index}")
}

/// Parses `show route all primary`: a line per route starting with its prefix, then
/// indented attribute lines (`via <next hop> on <dev>`, `BGP.as_path: ...`).
fn parse_routes(output: &str) -> Vec<Route> {
    let mut routes: Vec<Route> = Vec::new();
    for line in output.lines() {
        let indented = line.starts_with(char::is_whitespace);
        let line = line.trim();
        if !indented {
            if let Some(prefix) = line.split_whitespace().next().and_then(|w| w.parse().ok()) {
                routes.push(Route::new(prefix));
            }
            continue;
        }
        let Some(route) = routes.last_mut() else {
            continue;
        };
        if let Some(rest) = line.strip_prefix("via ") {
            route.next_hop = rest.split_whitespace().next().and_then(next_hop);
        } else if let Some(path) = line.strip_prefix("BGP.as_path:") {
            route.as_path = path
                .split_whitespace()
                .filter_map(|a| a.parse().ok())
                .collect();
        } else if let Some(med) = line.strip_prefix("BGP.med:") {
            route.med = med.trim().parse().ok();
        } else if let Some(pref) = line.strip_prefix("BGP.local_pref:") {
            route.local_pref = pref.trim().parse().ok();
        } else if let Some(list) = line.strip_prefix("BGP.community:") {
            route.communities = list.split_whitespace().filter_map(community).collect();
            route.communities.sort();
        } else if let Some(id) = line.strip_prefix("BGP.originator_id:") {
            route.originator_id = id.trim().parse().ok();
        } else if let Some(list) = line.strip_prefix("BGP.cluster_list:") {
            route.cluster_list = list
                .split_whitespace()
                .filter_map(|a| a.parse().ok())
                .collect();
        }
    }
    routes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::{BfdSession, Neighbor};

    #[test]
    fn config_names_a_protocol_per_neighbour_with_its_options() {
        let config = BgpConfig::new(65001, "192.0.2.1".parse().unwrap())
            .neighbor(
                Neighbor::new("192.0.2.2".parse().unwrap(), 65002)
                    .passive()
                    .password("secret")
                    .multihop(3)
                    .rr_client()
                    .next_hop_self(),
            )
            .route("10.1.0.0/24".parse().unwrap());
        let (text, protocols) = render(&config);
        assert_eq!(protocols[&"192.0.2.2".parse::<IpAddr>().unwrap()], "peer0");
        for expected in [
            "router id 192.0.2.1;",
            "route 10.1.0.0/24 blackhole { };",
            "neighbor 192.0.2.2 as 65002;",
            "passive on;",
            "password \"secret\";",
            "multihop 3;",
            "rr client;",
            "ipv4 { import all; export all; next hop self; };",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }

    #[test]
    fn a_bgp_neighbor_with_bfd_asks_for_it_and_brings_protocol_bfd() {
        let neighbor = Neighbor::new("10.0.1.10".parse().unwrap(), 64512).bfd();
        let (text, _) =
            render(&BgpConfig::new(65000, "10.0.1.1".parse().unwrap()).neighbor(neighbor));
        assert!(text.contains("  bfd on;\n"), "{text}");
        assert!(text.contains("protocol bfd {"), "{text}");
    }

    #[test]
    fn bfd_sessions_get_a_neighbor_each_and_the_configured_timers() {
        let config = BgpConfig::new(65001, "10.0.1.10".parse().unwrap())
            .bfd_session(BfdSession::single_hop(
                "10.0.1.11".parse().unwrap(),
                "10.0.1.10".parse().unwrap(),
            ))
            .bfd_session(BfdSession::multihop(
                "fd00:2::10".parse().unwrap(),
                "fd00:1::10".parse().unwrap(),
            ));
        let (text, _) = render(&config);
        for expected in [
            "interface \"*\" { min rx interval 300 ms; min tx interval 300 ms; multiplier 3; };",
            "multihop { min rx interval 300 ms; min tx interval 300 ms; multiplier 3; };",
            "neighbor 10.0.1.11 local 10.0.1.10;",
            "neighbor fd00:2::10 local fd00:1::10 multihop on;",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }

    #[test]
    fn bfd_session_listing_yields_each_peer_and_its_state() {
        let output = "BIRD 2.0.12 ready.\nbfd1:\n\
            IP address                Interface  State      Since         Interval  Timeout\n\
            10.9.0.1                  eth0       Up         09:58:37.146    0.300    0.900\n\
            fd00:2::10                ---        Init       09:58:38.001    1.000    3.000\n";
        assert_eq!(
            parse_bfd_sessions(output),
            [
                ("10.9.0.1".parse().unwrap(), State::Up),
                ("fd00:2::10".parse().unwrap(), State::Init)
            ]
        );
    }

    #[test]
    fn route_listing_yields_prefix_next_hop_and_as_path() {
        let output = "BIRD 2.0.12 ready.\nTable master4:\n\
            10.2.0.0/24          unicast [peer0 18:50:03.123] * (100) [AS65002i]\n\
            \tvia 10.0.1.11 on eth0\n\
            \tType: BGP univ\n\
            \tBGP.as_path: 65002 65003\n\
            \tBGP.med: 5\n\
            \tBGP.community: (64512,42) (65535,65281)\n\
            \tBGP.cluster_list: 10.0.0.9\n\
            10.1.0.0/24          blackhole [static4 18:50:01.000] * (200)\n\
            \tType: static univ\n";
        let routes = parse_routes(output);
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].prefix, "10.2.0.0/24".parse::<IpNet>().unwrap());
        assert_eq!(routes[0].next_hop, Some("10.0.1.11".parse().unwrap()));
        assert_eq!(routes[0].as_path, [65002, 65003]);
        assert_eq!(routes[0].med, Some(5));
        assert_eq!(routes[0].communities, ["64512:42", "65535:65281"]);
        assert_eq!(
            routes[0].cluster_list,
            ["10.0.0.9".parse::<std::net::Ipv4Addr>().unwrap()]
        );
        assert_eq!(routes[1], Route::new("10.1.0.0/24".parse().unwrap()));
    }
}
