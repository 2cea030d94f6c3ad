//! Network namespaces: created with `ip netns add`, removed (with every process in
//! them) on drop, and ways to run programs or Rust code inside.

use std::ffi::OsStr;
use std::fs::File;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::process::{self, Process};

/// Where `ip netns` keeps its namespaces.
const NETNS_DIR: &str = "/run/netns";

/// A named network namespace with the log directory of the test that owns it. Deleted
/// on drop, after killing every process inside.
#[derive(Debug)]
pub struct Netns {
    name: String,
    logs: PathBuf,
}

impl Netns {
    /// Creates namespace `name` with `lo` up; programs started in it log to `logs`.
    pub fn create(name: &str, logs: &Path) -> Result<Self> {
        process::exec(Command::new("ip").args(["netns", "add", name]))?;
        let netns = Self {
            name: name.to_owned(),
            logs: logs.to_owned(),
        };
        netns.ip("link set dev lo up")?;
        Ok(netns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace's file, e.g. for `CNI_NETNS` or `setns`.
    pub fn path(&self) -> PathBuf {
        Path::new(NETNS_DIR).join(&self.name)
    }

    /// The owning test's log directory.
    pub fn logs(&self) -> &Path {
        &self.logs
    }

    /// Runs `ip <args>` in the namespace (`args` split on whitespace); returns stdout.
    pub fn ip(&self, args: &str) -> Result<String> {
        process::exec(
            Command::new("ip")
                .args(["-n", &self.name])
                .args(args.split_whitespace()),
        )
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        command_in(&self.name, program)
    }

    /// Runs `program args` inside the namespace to completion; returns stdout or an
    /// error carrying stderr.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<String> {
        process::exec(self.command(program).args(args))
    }

    /// Starts `program args` inside the namespace, logging to `<logs>/<label>.log`.
    pub fn spawn(&self, label: &str, program: &str, args: &[&str]) -> Result<Process> {
        let mut command = self.command(program);
        command.args(args);
        Process::spawn(command, &self.logs, label)
    }

    /// Sets a sysctl inside the namespace, e.g. `("net.ipv4.ip_forward", "1")`.
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        self.exec("sysctl", &["-q", "-w", &format!("{key}={value}")])
            .map(drop)
    }

    /// Pings `address` once a second and fails unless a reply comes within five
    /// seconds (the first echo may wait on ARP or neighbour discovery).
    pub fn ping(&self, address: IpAddr) -> Result<()> {
        self.exec("ping", &["-c", "1", "-w", "5", &address.to_string()])
            .map(drop)
            .with_context(|| format!("ping {address} from {}", self.name))
    }

    /// Runs `f` on a thread that has entered the namespace, so sockets it opens live
    /// there. A panic in `f` is resumed in the caller.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        in_netns(&self.name, f)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        delete(&self.name);
    }
}

/// A command that runs `program` inside namespace `name` (`ip netns exec`).
pub fn command_in(name: &str, program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", name]).arg(program);
    command
}

/// Runs `f` on a thread inside namespace `name` (see [`Netns::run`]).
pub fn in_netns<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> Result<T> {
    in_netns_at(&Path::new(NETNS_DIR).join(name), f)
}

/// Runs `f` on a thread inside the namespace bound at `path` (one `ip netns` did not
/// make, e.g. a container runtime's sandbox).
pub fn in_netns_at<T: Send>(path: &Path, f: impl FnOnce() -> T + Send) -> Result<T> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    std::thread::scope(|scope| {
        let thread = scope.spawn(move || -> Result<T> {
            nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET)
                .with_context(|| format!("entering namespace {}", path.display()))?;
            Ok(f())
        });
        thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// The names of all namespaces `ip netns` knows.
pub fn list() -> Vec<String> {
    std::fs::read_dir(NETNS_DIR)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Kills every process in namespace `name`, then deletes it. Errors are ignored: this
/// runs in destructors and sweeps, where the namespace may already be gone.
pub fn delete(name: &str) {
    if let Ok(pids) = process::exec(Command::new("ip").args(["netns", "pids", name])) {
        for pid in pids.split_whitespace().filter_map(|p| p.parse().ok()) {
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
    let _ = process::exec(Command::new("ip").args(["netns", "delete", name]));
}
