//! What containers leave outside a runtime's own bookkeeping when a test ends
//! before removing them, or crashes: processes in the pods' cgroups, the cgroups
//! themselves, and mounts (overlay root filesystems, network namespace bind
//! mounts) under a node's directory. [`sweep`] removes a crashed run's.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::wait::wait_until;

/// How long killed processes may take to leave their cgroups.
const EMPTY_TIMEOUT: Duration = Duration::from_secs(5);

/// A mount point and its filesystem type, from `/proc/self/mountinfo`.
fn mounts() -> Vec<(PathBuf, String)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (fields, filesystem) = line.split_once(" - ")?;
            let point = fields.split(' ').nth(4)?;
            let kind = filesystem.split(' ').next()?;
            Some((PathBuf::from(unescape(point)), kind.to_owned()))
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let mut out = String::new();
    let mut rest = field;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let code = rest
            .get(at + 1..at + 4)
            .and_then(|digits| u8::from_str_radix(digits, 8).ok());
        match code {
            Some(byte) => {
                out.push(char::from(byte));
                rest = &rest[at + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Every cgroup hierarchy's mount point (v1's one per controller, or v2's one).
fn hierarchies() -> Vec<PathBuf> {
    mounts()
        .into_iter()
        .filter(|(_, kind)| kind == "cgroup" || kind == "cgroup2")
        .map(|(point, _)| point)
        .collect()
}

/// Kills every process in cgroup `root` (e.g. `/tb-0a1b2c-n1`) and below, in every
/// hierarchy, and removes the cgroups. Errors are ignored: this runs in
/// destructors and sweeps.
pub fn remove_cgroups(root: &str) {
    let dirs: Vec<PathBuf> = hierarchies()
        .into_iter()
        .map(|hierarchy| hierarchy.join(root.trim_start_matches('/')))
        .filter(|dir| dir.is_dir())
        .collect();
    for dir in &dirs {
        for cgroup in subtree(dir) {
            let procs = std::fs::read_to_string(cgroup.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|p| p.trim().parse().ok()) {
                let pid = nix::unistd::Pid::from_raw(pid);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
    for dir in &dirs {
        // A cgroup is removable once its killed processes are gone; deepest first.
        let _ = wait_until(
            EMPTY_TIMEOUT,
            "killed processes to leave their cgroups",
            || {
                let mut cgroups = subtree(dir);
                cgroups.sort_by_key(|c| std::cmp::Reverse(c.components().count()));
                Ok(cgroups
                    .iter()
                    .all(|cgroup| std::fs::remove_dir(cgroup).is_ok() || !cgroup.exists()))
            },
        );
    }
}

/// `dir` and every cgroup below it.
fn subtree(dir: &Path) -> Vec<PathBuf> {
    let mut all = vec![dir.to_owned()];
    let mut i = 0;
    while let Some(next) = all.get(i).cloned() {
        if let Ok(entries) = std::fs::read_dir(&next) {
            all.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
        }
        i += 1;
    }
    all
}

/// Detaches every mount at or under `dir`, deepest first.
pub fn unmount_under(dir: &Path) {
    let mut points: Vec<PathBuf> = mounts()
        .into_iter()
        .map(|(point, _)| point)
        .filter(|point| point.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for point in points {
        let _ = nix::mount::umount2(&point, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Removes what the containerds of the crashed run `id` left: cgroups
/// `/tb-<id>-*`, and mounts under and the directories `<tmp>/tb-<id>-*`.
/// Returns what it removed.
pub fn sweep(id: &str) -> Vec<String> {
    let prefix = crate::names::netns_prefix(id);
    let mut removed = Vec::new();
    let named = |dir: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut roots: Vec<String> = hierarchies()
        .iter()
        .flat_map(|hierarchy| named(hierarchy))
        .filter_map(|dir| Some(format!("/{}", dir.file_name()?.to_string_lossy())))
        .collect();
    roots.sort();
    roots.dedup();
    for root in roots {
        remove_cgroups(&root);
        removed.push(format!("cgroup {root}"));
    }
    for dir in named(&std::env::temp_dir()) {
        unmount_under(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        removed.push(dir.display().to_string());
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape(r"/tmp/back\134slash"), r"/tmp/back\slash");
        assert_eq!(unescape(r"/tmp/odd\x"), r"/tmp/odd\x");
    }
}
