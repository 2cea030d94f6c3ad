//! Fetching Debian's generic kernel package and caching it unpacked.
//!
//! The generic flavour (`linux-image-6.1.0-<N>-amd64`) is the one with ipip, 9p and
//! virtio modules; the `cloud` flavour lacks 9p and `rt` is a different kernel. `<N>`
//! moves with Debian's security updates, so the newest one apt knows is taken, once,
//! and kept under `target/vm/kernel/`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::cache_dir;

/// An unpacked kernel package: the image and its module tree.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// `uname -r` of the guest, e.g. `6.1.0-50-amd64`.
    pub version: String,
    pub vmlinuz: PathBuf,
    /// `lib/modules/<version>` inside the unpacked package, with `modules.dep`.
    pub modules: PathBuf,
}

impl Kernel {
    /// The cached kernel, fetching and unpacking it first when there is none.
    /// Callers hold the cache lock (see `boot::CacheLock`).
    pub fn cached_or_fetch() -> Result<Kernel> {
        let root = cache_dir().join("kernel");
        if let Some(kernel) = Self::find_ready(&root)? {
            return Ok(kernel);
        }
        let package = newest_package()?;
        let dir = root.join(&package);
        fetch_and_unpack(&package, &dir)?;
        Self::find_ready(&root)?.context("kernel unpacked but not found in the cache")
    }

    fn find_ready(root: &Path) -> Result<Option<Kernel>> {
        let Ok(entries) = fs::read_dir(root) else {
            return Ok(None);
        };
        for entry in entries {
            let dir = entry?.path();
            if dir.join("ready").exists() {
                return Self::from_unpacked(&dir).map(Some);
            }
        }
        Ok(None)
    }

    fn from_unpacked(dir: &Path) -> Result<Kernel> {
        let modules_root = dir.join("lib/modules");
        let version = fs::read_dir(&modules_root)
            .with_context(|| format!("reading {}", modules_root.display()))?
            .next()
            .context("kernel package has no module tree")??
            .file_name()
            .to_string_lossy()
            .into_owned();
        Ok(Kernel {
            vmlinuz: dir.join("boot").join(format!("vmlinuz-{version}")),
            modules: modules_root.join(&version),
            version,
        })
    }
}

/// The newest `linux-image-6.1.0-<N>-amd64` in apt's lists (updating them once if empty).
fn newest_package() -> Result<String> {
    let search = || -> Result<Option<String>> {
        let out = Command::new("apt-cache")
            .args([
                "search",
                "--names-only",
                r"^linux-image-6\.1\.0-[0-9]+-amd64$",
            ])
            .output()
            .context("running apt-cache (is this Debian?)")?;
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .max_by_key(|name| abi_number(name))
            .map(str::to_owned))
    };
    if let Some(name) = search()? {
        return Ok(name);
    }
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    search()?.context("apt knows no linux-image-6.1.0-<N>-amd64 package even after apt-get update")
}

/// The `<N>` of `linux-image-6.1.0-<N>-amd64`, for picking the newest.
fn abi_number(package: &str) -> u32 {
    package
        .trim_start_matches("linux-image-6.1.0-")
        .split('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn fetch_and_unpack(package: &str, dir: &Path) -> Result<()> {
    let download = dir.with_extension("download");
    fs::create_dir_all(&download)?;
    // apt drops privileges to `_apt` when it can; as root into a root-owned dir it
    // warns and downloads anyway, which is fine here.
    run(Command::new("apt-get")
        .args(["download", "-qq", package])
        .current_dir(&download))?;
    let deb = fs::read_dir(&download)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .with_context(|| format!("apt-get download {package} left no .deb"))?;
    fs::create_dir_all(dir)?;
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(dir))?;
    let kernel = Kernel::from_unpacked(dir)?;
    // The package ships no modules.dep (the postinst makes it); the guest needs it.
    run(Command::new("depmod")
        .arg("-b")
        .arg(dir)
        .arg(&kernel.version))?;
    fs::remove_dir_all(&download)?;
    fs::write(dir.join("ready"), package)?;
    Ok(())
}

/// Runs a command to completion, failing with its stderr.
pub(super) fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("starting {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_abi_number_wins_numerically() {
        let mut names = ["linux-image-6.1.0-9-amd64", "linux-image-6.1.0-50-amd64"];
        names.sort_by_key(|n| abi_number(n));
        assert_eq!(names[1], "linux-image-6.1.0-50-amd64");
    }
}
