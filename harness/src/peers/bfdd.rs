//! FRR's bfdd, alone (without zebra: it runs the configured BFD peers and needs
//! nothing else) or beside bgpd, which reaches it through zebra (`Zebra`). Unlike bgpd it cannot keep root (its vty group check refuses
//! root), so it drops to Debian's `frr` user, which must own its socket directory.
//! No vty TCP port (`-P 0`); queried with `vtysh --vty_socket`, JSON output.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use bfd::State;
use serde_json::Value;
use tempfile::TempDir;

use super::{Bfd, BfdPeer, BgpConfig, role, socket_dir, vtysh, write_config};
use crate::netns::Netns;
use crate::process::{self, Process};
use crate::wait::wait_until;

/// Where Debian installs the daemon.
const BFDD: &str = "/usr/lib/frr/bfdd";
/// Where Debian installs zebra.
const ZEBRA: &str = "/usr/lib/frr/zebra";
/// The user bfdd and zebra run as after start-up.
const FRR_USER: &str = "frr";

/// A running FRR zebra inside a namespace, through which bgpd asks bfdd for
/// sessions (FRR has no other way); killed on drop. It also installs bgpd's
/// routes in the namespace's kernel.
#[derive(Debug)]
pub struct Zebra {
    _process: Process,
    sockets: TempDir,
}

impl Zebra {
    pub fn start(netns: &Netns) -> Result<Self> {
        let sockets = frr_socket_dir()?;
        let file = write_config(
            netns,
            &format!("zebra-{}.conf", role(netns)),
            &format!("hostname {}\n", netns.name()),
        )?;
        let mut command = netns.command(ZEBRA);
        command
            .args(["-P", "0", "--log", "stdout", "-f"])
            .arg(&file)
            .arg("-i")
            .arg(sockets.path().join("zebra.pid"))
            .arg("--vty_socket")
            .arg(sockets.path())
            .arg("-z")
            .arg(sockets.path().join("zserv.api"));
        let mut process = Process::spawn(command, netns.logs(), &format!("zebra-{}", role(netns)))?;
        let zserv = sockets.path().join("zserv.api");
        wait_until(Duration::from_secs(10), "zebra's zserv socket", || {
            process.check_running()?;
            anyhow::Ok(zserv.exists())
        })?;
        Ok(Self {
            _process: process,
            sockets,
        })
    }

    /// The socket bgpd and bfdd reach zebra on (`-z`).
    pub fn zserv(&self) -> std::path::PathBuf {
        self.sockets.path().join("zserv.api")
    }
}

/// A socket directory the `frr` user owns (bfdd and zebra drop to it).
fn frr_socket_dir() -> Result<TempDir> {
    let sockets = socket_dir()?;
    let frr = nix::unistd::User::from_name(FRR_USER)?
        .with_context(|| format!("no user {FRR_USER}: is frr installed?"))?;
    nix::unistd::chown(sockets.path(), Some(frr.uid), Some(frr.gid))
        .context("handing the socket directory to frr")?;
    Ok(sockets)
}

/// A running FRR bfdd inside a namespace; killed on drop.
#[derive(Debug)]
pub struct Bfdd {
    process: Process,
    sockets: TempDir,
}

impl Bfdd {
    /// Starts bfdd in `netns` with `config`'s BFD sessions and waits until vtysh
    /// reaches it.
    pub fn start(netns: &Netns, config: &BgpConfig) -> Result<Self> {
        Self::spawn(netns, config, None)
    }

    /// Starts bfdd connected to `zebra`, for bgpd's `neighbor X bfd`.
    pub fn start_beside(netns: &Netns, config: &BgpConfig, zebra: &Zebra) -> Result<Self> {
        Self::spawn(netns, config, Some(&zebra.zserv()))
    }

    fn spawn(netns: &Netns, config: &BgpConfig, zserv: Option<&std::path::Path>) -> Result<Self> {
        let sockets = frr_socket_dir()?;
        let file = write_config(
            netns,
            &format!("bfdd-{}.conf", role(netns)),
            &render(&config.bfd, netns.name()),
        )?;
        let mut command = netns.command(BFDD);
        command
            .args(["-P", "0", "--log", "stdout", "-f"])
            .arg(&file)
            .arg("-i")
            .arg(sockets.path().join("bfdd.pid"))
            .arg("--vty_socket")
            .arg(sockets.path())
            .arg("--bfdctl")
            .arg(sockets.path().join("bfdd.sock"));
        if let Some(zserv) = zserv {
            command.arg("-z").arg(zserv);
        }
        let process = Process::spawn(command, netns.logs(), &format!("bfdd-{}", role(netns)))?;
        let mut bfdd = Self { process, sockets };
        wait_until(Duration::from_secs(10), "vtysh reaches bfdd", || {
            bfdd.process.check_running()?;
            bfdd.vtysh("show bfd peers json").map(|_| true)
        })?;
        Ok(bfdd)
    }

    /// Runs one vtysh command against this bfdd; returns its output.
    pub fn vtysh(&self, command: &str) -> Result<String> {
        process::exec(vtysh(self.sockets.path(), "bfdd").args(["-c", command]))
    }

    fn vtysh_json(&self, command: &str) -> Result<Value> {
        let output = self.vtysh(command)?;
        serde_json::from_str(&output).with_context(|| format!("vtysh {command}: {output}"))
    }

    /// The peer's entry of `show bfd peers json`: status, diagnostic, timers, ids.
    pub fn peer(&self, remote: IpAddr) -> Result<Option<Value>> {
        Ok(find_peer(self.vtysh_json("show bfd peers json")?, remote))
    }

    /// How often the session with `remote` went down, by bfdd's counters.
    pub fn session_downs(&self, remote: IpAddr) -> Result<u64> {
        let counters = find_peer(self.vtysh_json("show bfd peers counters json")?, remote)
            .with_context(|| format!("bfdd has no session with {remote}"))?;
        counters["session-down"]
            .as_u64()
            .with_context(|| format!("no session-down counter in {counters}"))
    }

    /// The bfdd process (pid, log).
    pub fn process(&self) -> &Process {
        &self.process
    }

    /// SIGKILLs bfdd: its sessions fall silent (a crash).
    pub fn kill(&mut self) {
        self.process.kill();
    }
}

impl BfdPeer for Bfdd {
    fn bfd_state(&self, remote: IpAddr) -> Result<Option<State>> {
        Ok(self
            .peer(remote)?
            .and_then(|peer| parse_status(peer["status"].as_str()?)))
    }
}

/// The entry of a `show bfd peers [counters] json` list for `remote`.
fn find_peer(peers: Value, remote: IpAddr) -> Option<Value> {
    let Value::Array(peers) = peers else {
        return None;
    };
    peers
        .into_iter()
        .find(|p| p["peer"].as_str().and_then(|a| a.parse().ok()) == Some(remote))
}

fn parse_status(status: &str) -> Option<State> {
    Some(match status {
        "shutdown" => State::AdminDown,
        "down" => State::Down,
        "init" => State::Init,
        "up" => State::Up,
        _ => return None,
    })
}

/// bfdd's config: a `peer` per session.
fn render(bfd: &Bfd, hostname: &str) -> String {
    let ms = bfd.interval.as_millis();
    let mut lines = vec![
        "frr defaults traditional".to_owned(),
        format!("hostname {hostname}"),
        "log stdout informational".to_owned(),
        "bfd".to_owned(),
    ];
    for session in &bfd.sessions {
        let multihop = if session.multihop { " multihop" } else { "" };
        lines.push(format!(
            " peer {}{multihop} local-address {}",
            session.remote, session.local
        ));
        lines.push(format!("  receive-interval {ms}"));
        lines.push(format!("  transmit-interval {ms}"));
        lines.push(format!("  detect-multiplier {}", bfd.multiplier));
        lines.push(" exit".to_owned());
    }
    lines.push("exit".to_owned());
    lines.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::BfdSession;

    #[test]
    fn config_has_a_peer_per_session_with_the_timers() {
        let config = BgpConfig::new(65001, "10.0.1.10".parse().unwrap())
            .bfd_session(BfdSession::single_hop(
                "10.0.1.11".parse().unwrap(),
                "10.0.1.10".parse().unwrap(),
            ))
            .bfd_session(BfdSession::multihop(
                "10.0.2.10".parse().unwrap(),
                "10.0.1.10".parse().unwrap(),
            ));
        let text = render(&config.bfd, "n1");
        for expected in [
            " peer 10.0.1.11 local-address 10.0.1.10\n  receive-interval 300\n  \
             transmit-interval 300\n  detect-multiplier 3\n exit",
            " peer 10.0.2.10 multihop local-address 10.0.1.10",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }

    #[test]
    fn peer_lists_yield_the_entry_and_state_of_one_peer() {
        let peers: Value = serde_json::from_str(
            r#"[{"multihop": true, "peer": "10.0.2.10", "status": "init"},
                {"multihop": false, "peer": "10.0.1.11", "status": "shutdown",
                 "session-down": 2}]"#,
        )
        .unwrap();
        let peer = find_peer(peers, "10.0.1.11".parse().unwrap()).unwrap();
        assert_eq!(peer["session-down"], 2);
        assert_eq!(
            parse_status(peer["status"].as_str().unwrap()),
            Some(State::AdminDown)
        );
        assert_eq!(parse_status("up"), Some(State::Up));
    }
}
