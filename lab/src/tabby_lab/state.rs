//! The state file of a running `tabby-lab up`, and `tabby-lab down`.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// The file `tabby-lab up` holds while it runs: its pid, so that a second `up` is
/// refused and `down` knows whom to stop.
pub const STATE_FILE: &str = "/run/tabby-lab.pid";

/// The pid of a running `tabby-lab up`, if any (a stale file is ignored).
pub fn running() -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(STATE_FILE)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
    alive.then_some(pid)
}

/// Claims [`STATE_FILE`] for this process, refusing when another `up` runs.
pub fn claim() -> Result<()> {
    if let Some(pid) = running() {
        bail!("a lab is already up (tabby-lab up, pid {pid}): run `tabby-lab down` first");
    }
    std::fs::write(STATE_FILE, std::process::id().to_string())
        .with_context(|| format!("writing {STATE_FILE}"))
}

/// Stops a running `up` (it tears its lab down as it exits), then removes what a
/// crashed one left (namespaces, processes).
pub fn down(timeout: Duration) -> Result<String> {
    let mut said = String::new();
    if let Some(pid) = running() {
        let pid = nix::unistd::Pid::from_raw(pid);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)
            .context("stopping tabby-lab up")?;
        harness::wait_until(timeout, "tabby-lab up to tear its lab down", || {
            anyhow::Ok(nix::sys::signal::kill(pid, None).is_err())
        })?;
        let _ = writeln!(said, "stopped tabby-lab up (pid {pid}); its lab is gone");
    }
    let _ = std::fs::remove_file(STATE_FILE);
    let swept = harness::sweep();
    for name in &swept.namespaces {
        let _ = writeln!(said, "removed leftover namespace {name}");
    }
    for pid in &swept.processes {
        let _ = writeln!(said, "killed leftover process {pid}");
    }
    if said.is_empty() {
        said.push_str("no lab was up; nothing left over\n");
    }
    Ok(said)
}
