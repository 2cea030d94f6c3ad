//! The benchmark targets: each started in the target namespace as an iBGP route
//! reflector, passive, with every client session a route-reflector client and no
//! policy beyond accepting and sending everything; and the figures `/proc` gives
//! about its process.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::str::FromStr;

use std::fmt::Write as _;

use anyhow::{Context, Result};
use tempfile::TempDir;

use harness::netns::Netns;
use harness::peers::{BgpConfig, Bird, Frr, GoBgp, Neighbor};
use harness::process::Process;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TargetKind {
    Tabby,
    Bird,
    Frr,
    GoBgp,
}

impl TargetKind {
    pub const ALL: [TargetKind; 4] = [
        TargetKind::Tabby,
        TargetKind::Bird,
        TargetKind::Frr,
        TargetKind::GoBgp,
    ];
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TargetKind::Tabby => "tabby",
            TargetKind::Bird => "bird",
            TargetKind::Frr => "frr",
            TargetKind::GoBgp => "gobgp",
        })
    }
}

impl FromStr for TargetKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        TargetKind::ALL
            .into_iter()
            .find(|t| t.to_string() == s.to_ascii_lowercase())
            .ok_or_else(|| format!("unknown target {s:?} (tabby, bird, frr, gobgp)"))
    }
}

/// A running target; stopped when dropped.
#[derive(Debug)]
pub enum Target {
    Tabby(Tabby),
    Bird(Bird),
    Frr(Frr),
    GoBgp(GoBgp),
}

impl Target {
    /// Starts `kind` in `netns` as the route reflector of `clients`, all in `asn`.
    pub fn start(
        kind: TargetKind,
        netns: &Netns,
        router_id: Ipv4Addr,
        asn: u32,
        clients: &[Ipv4Addr],
    ) -> Result<Self> {
        let config = clients.iter().fold(BgpConfig::new(asn, router_id), |c, a| {
            c.neighbor(Neighbor::new((*a).into(), asn).passive().rr_client())
        });
        Ok(match kind {
            TargetKind::Tabby => Target::Tabby(Tabby::start(netns, router_id, asn, clients)?),
            TargetKind::Bird => Target::Bird(Bird::start(netns, &config)?),
            TargetKind::Frr => Target::Frr(Frr::start(netns, &config)?),
            TargetKind::GoBgp => Target::GoBgp(GoBgp::start(netns, &config)?),
        })
    }

    pub fn pid(&self) -> u32 {
        match self {
            Target::Tabby(tabby) => tabby.process.pid(),
            Target::Bird(bird) => bird.process().pid(),
            Target::Frr(frr) => frr.process().pid(),
            Target::GoBgp(gobgp) => gobgp.process().pid(),
        }
    }

    pub fn usage(&self) -> Result<Usage> {
        Usage::of(self.pid())
    }
}

/// `tabby-reflector`, from next to this binary (`cargo build --release -p reflector`)
/// or `$TABBY_REFLECTOR`.
#[derive(Debug)]
pub struct Tabby {
    process: Process,
    _sockets: TempDir,
}

impl Tabby {
    fn start(netns: &Netns, router_id: Ipv4Addr, asn: u32, clients: &[Ipv4Addr]) -> Result<Self> {
        let binary = std::env::var_os("TABBY_REFLECTOR")
            .map(PathBuf::from)
            .or_else(|| {
                Some(
                    std::env::current_exe()
                        .ok()?
                        .with_file_name("tabby-reflector"),
                )
            })
            .context("cannot tell where tabby-reflector is")?;
        let sockets = tempfile::Builder::new().prefix("tabby-bgperf-").tempdir()?;
        let mut config = format!(
            "asNumber: {asn}\nrouterId: {router_id}\napi: {{socket: {}}}\npeers:\n",
            sockets.path().join("api.sock").display()
        );
        for client in clients {
            let _ = writeln!(
                config,
                "- {{address: {client}, asNumber: {asn}, passive: true}}"
            );
        }
        let file = netns.logs().join("tabby-reflector.yaml");
        std::fs::write(&file, config)?;
        let mut command = netns.command(&binary);
        command.arg("--config").arg(&file).env("TABBY_LOG", "warn");
        let process = Process::spawn(command, netns.logs(), "tabby-reflector")
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Self {
            process,
            _sockets: sockets,
        })
    }
}

/// A process's resource use so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// User and system CPU time, seconds.
    pub cpu_seconds: f64,
    /// Resident set now and at its peak (VmHWM), bytes.
    pub rss: u64,
    pub peak_rss: u64,
}

impl Usage {
    pub fn of(pid: u32) -> Result<Self> {
        let dir = PathBuf::from(format!("/proc/{pid}"));
        let stat = std::fs::read_to_string(dir.join("stat"))
            .with_context(|| format!("reading /proc/{pid}/stat"))?;
        let status = std::fs::read_to_string(dir.join("status"))
            .with_context(|| format!("reading /proc/{pid}/status"))?;
        let ticks = ticks_per_second();
        let (utime, stime) = cpu_ticks(&stat).context("parsing /proc/<pid>/stat")?;
        Ok(Self {
            cpu_seconds: (utime + stime) as f64 / ticks,
            rss: status_kib(&status, "VmRSS:").context("VmRSS")? * 1024,
            peak_rss: status_kib(&status, "VmHWM:").context("VmHWM")? * 1024,
        })
    }
}

/// utime and stime: fields 14 and 15, counted after the `(comm)` that may hold
/// spaces.
fn cpu_ticks(stat: &str) -> Option<(u64, u64)> {
    let after = &stat[stat.rfind(')')? + 2..];
    let mut fields = after.split_whitespace().skip(11);
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}

fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn ticks_per_second() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |t| t as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_figures_parse_even_with_spaces_in_the_command_name() {
        let stat = "1234 (bgp d) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0 100 200 300";
        assert_eq!(cpu_ticks(stat), Some((250, 50)));
        let status = "Name:\tbird\nVmHWM:\t   16000 kB\nVmRSS:\t   12000 kB\n";
        assert_eq!(status_kib(status, "VmHWM:"), Some(16_000));
        let own = Usage::of(std::process::id()).unwrap();
        assert!(own.peak_rss >= own.rss && own.rss > 0);
    }
}
