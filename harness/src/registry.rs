//! Who owns what: every harness run registers a directory `<registry_dir>/<id>/`
//! holding its owner's pid, so a later [`sweep`] can tell leftovers of crashed runs
//! (owner dead) from the work of tests running right now.
//!
//! Namespaces are found by their name (`tb-<id>-*`); processes in them die with the
//! namespace. Processes in the host namespace (etcd) are recorded as `pids/<pid>`.
//! Container runtimes' leftovers (pods' cgroups, mounts and directories) are named
//! `tb-<id>-*` too (see [`crate::cri::leftovers`]).
//! Pids are stored with their start time so a recycled pid is never mistaken.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::names;
use crate::netns;

/// Where runs register: `/run/tabby-tests` as root. Without root a run makes no
/// namespaces, only host processes (etcd), and registers where it may write.
pub fn registry_dir() -> PathBuf {
    let uid = nix::unistd::geteuid();
    match uid.is_root() {
        true => PathBuf::from("/run/tabby-tests"),
        false => std::env::temp_dir().join(format!("tabby-tests-{uid}")),
    }
}

/// A live registration; removing it (on drop) says "nothing of mine is left".
#[derive(Debug)]
pub struct Registration {
    id: String,
    dir: PathBuf,
}

impl Registration {
    /// Registers a new run under a fresh unique id.
    pub fn new() -> Result<Self> {
        let registry = registry_dir();
        fs::create_dir_all(&registry)
            .with_context(|| format!("creating {}", registry.display()))?;
        loop {
            let id = names::unique_id();
            let dir = registry.join(&id);
            match fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
            }
            fs::create_dir(dir.join("pids"))?;
            let me = std::process::id();
            fs::write(dir.join("owner"), process_identity(me)?)?;
            return Ok(Self { id, dir });
        }
    }

    /// The run's unique id (6 hex digits).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Records a host-namespace process so a sweep can kill it if this run crashes.
    pub fn record_pid(&self, pid: u32) -> Result<()> {
        fs::write(
            self.dir.join("pids").join(pid.to_string()),
            process_identity(pid)?,
        )
        .context("recording a pid in the registry")
    }

    /// Forgets a process that has been reaped.
    pub fn forget_pid(&self, pid: u32) {
        let _ = fs::remove_file(self.dir.join("pids").join(pid.to_string()));
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// What a sweep removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub namespaces: Vec<String>,
    pub processes: Vec<u32>,
    pub registrations: Vec<String>,
    /// What container runtimes' sandboxes left: cgroups, mounts, directories.
    pub runtime_leftovers: Vec<String>,
}

/// Removes leftovers of runs whose owner is dead: their processes, namespaces and
/// registrations, and harness namespaces no registration claims. Cheap when there is
/// nothing to do (two directory listings). Errors of individual removals are ignored:
/// a concurrent sweep may have removed the same thing.
pub fn sweep() -> Swept {
    let mut swept = Swept::default();
    let namespaces = netns::list();
    let registry = registry_dir();
    let entries = match fs::read_dir(&registry) {
        Ok(entries) => entries.flatten().collect(),
        Err(_) => Vec::new(),
    };
    for entry in entries {
        let dir = entry.path();
        let id = entry.file_name().to_string_lossy().into_owned();
        if owner_alive(&dir) {
            continue;
        }
        for pid in recorded_pids(&dir) {
            if kill_if_same(pid, &dir.join("pids").join(pid.to_string())) {
                swept.processes.push(pid);
            }
        }
        let prefix = names::netns_prefix(&id);
        for name in namespaces.iter().filter(|n| n.starts_with(&prefix)) {
            netns::delete(name);
            swept.namespaces.push(name.clone());
        }
        swept
            .runtime_leftovers
            .extend(crate::cri::leftovers::sweep(&id));
        let _ = fs::remove_dir_all(&dir);
        swept.registrations.push(id);
    }
    // A namespace is created after its registration and removed before it, so a
    // harness namespace without a registration belongs to no live run.
    for name in &namespaces {
        if let Some(id) = harness_id(name)
            && !registry.join(id).exists()
            && !swept.namespaces.contains(name)
        {
            netns::delete(name);
            swept.namespaces.push(name.clone());
        }
    }
    swept
}

/// The id in a harness namespace name `tb-<6 hex>-<role>`.
fn harness_id(netns: &str) -> Option<&str> {
    let rest = netns.strip_prefix("tb-")?;
    let (id, role) = rest.split_once('-')?;
    (id.len() == 6 && id.chars().all(|c| c.is_ascii_hexdigit()) && !role.is_empty()).then_some(id)
}

fn owner_alive(dir: &Path) -> bool {
    let Ok(owner) = fs::read_to_string(dir.join("owner")) else {
        // Being created right now, or broken: judge it by age.
        return fs::metadata(dir)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() < 60));
    };
    matches_identity(&owner)
}

fn recorded_pids(dir: &Path) -> Vec<u32> {
    fs::read_dir(dir.join("pids"))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn kill_if_same(pid: u32, record: &Path) -> bool {
    let Ok(identity) = fs::read_to_string(record) else {
        return false;
    };
    if !matches_identity(&identity) {
        return false;
    }
    let pid = nix::unistd::Pid::from_raw(pid as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).is_ok()
}

/// `<pid> <start time>`: a process's identity that survives pid reuse.
fn process_identity(pid: u32) -> Result<String> {
    let start = start_time(pid).with_context(|| format!("reading /proc/{pid}/stat"))?;
    Ok(format!("{pid} {start}"))
}

fn matches_identity(identity: &str) -> bool {
    let mut words = identity.split_whitespace();
    let (Some(pid), Some(start)) = (words.next(), words.next()) else {
        return false;
    };
    pid.parse()
        .ok()
        .and_then(start_time)
        .is_some_and(|now| now.to_string() == start)
}

/// The process's start time in clock ticks since boot (field 22 of `/proc/<pid>/stat`).
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields after it are plain.
    let after_comm = &stat[stat.rfind(')')? + 2..];
    after_comm.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harness_namespaces_are_recognised_by_name() {
        assert_eq!(harness_id("tb-0a1b2c-n1"), Some("0a1b2c"));
        assert_eq!(harness_id("tb-0a1b2c-pod-x"), Some("0a1b2c"));
        assert_eq!(harness_id("tb-dp-0a1b2c3d"), None);
        assert_eq!(harness_id("tb-0a1b2c"), None);
        assert_eq!(harness_id("other"), None);
    }

    #[test]
    fn own_process_identity_matches_and_a_changed_start_time_does_not() {
        let me = std::process::id();
        let identity = process_identity(me).unwrap();
        assert!(matches_identity(&identity));
        assert!(!matches_identity(&format!("{me} 1")));
        assert!(!matches_identity("garbage"));
    }
}
