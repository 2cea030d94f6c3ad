//! The sandbox ("pause") image, made here because no registry is reachable: one
//! layer holding Debian's static busybox, whose `sleep` holds the pod's namespaces
//! as `pause` does (containerd stops a sandbox with SIGKILL, so no signal handling
//! is missed). It is written as a `docker save` archive — `manifest.json` naming
//! the config, the layer and the tag — which `ctr -n k8s.io images import` reads;
//! the CRI plugin's `sandbox_image` names that tag, so containerd never pulls.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::elf::{self, Linking};
use crate::process;

/// The tag the archive carries and the CRI config names.
pub const IMAGE: &str = "localhost/tabby-pause:busybox";

/// Debian's busybox-static.
const BUSYBOX: &str = "/bin/busybox";

/// Writes the image archive to `archive`.
pub fn write_archive(archive: &Path) -> Result<()> {
    match elf::linking(Path::new(BUSYBOX))? {
        Linking::Static => {}
        Linking::Dynamic(why) => bail!("{BUSYBOX} is not static ({why}): install busybox-static"),
    }
    let work = tempfile::tempdir()?;
    let at = |name: &str| work.path().join(name);
    std::fs::create_dir_all(at("rootfs/bin"))?;
    std::fs::create_dir(at("image"))?;
    std::fs::copy(BUSYBOX, at("rootfs/bin/busybox")).context("copying busybox")?;
    tar(&at("image/layer.tar"), &at("rootfs"))?;
    let config = json!({
        "architecture": architecture(),
        "os": "linux",
        "config": {"Cmd": ["/bin/busybox", "sleep", "2147483647"]},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", sha256(&at("image/layer.tar"))?)]},
    });
    std::fs::write(at("image/config.json"), config.to_string())?;
    let manifest = json!([{
        "Config": "config.json",
        "RepoTags": [IMAGE],
        "Layers": ["layer.tar"],
    }]);
    std::fs::write(at("image/manifest.json"), manifest.to_string())?;
    tar(archive, &at("image"))
}

/// `dir`'s contents as a tar owned by root, the same bytes on every run.
fn tar(archive: &Path, dir: &Path) -> Result<()> {
    process::exec(
        Command::new("tar")
            .args(["--create", "--sort=name", "--mtime=@0"])
            .args(["--owner=0", "--group=0", "--numeric-owner"])
            .arg("--file")
            .arg(archive)
            .arg("--directory")
            .arg(dir)
            .arg("."),
    )
    .map(drop)
}

fn sha256(file: &Path) -> Result<String> {
    let output = process::exec(Command::new("sha256sum").arg(file))?;
    output
        .split_whitespace()
        .next()
        .map(str::to_owned)
        .context("sha256sum printed nothing")
}

/// The OCI name of this machine's architecture.
fn architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}
