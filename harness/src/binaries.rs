//! The workspace's binaries (tabby-agent, tabby-cni, tabby-ipam, tabby-reflector,
//! ...) for tests and tools of another package, which cargo gives no
//! `CARGO_BIN_EXE_*` for: built once per process with the cargo that runs the tests,
//! found in the target directory next to the running executable.
//!
//! The build asks for the whole workspace's binaries with one test target, so that
//! cargo resolves features as `cargo nextest run --workspace` does (dev-dependencies
//! included): in CI that run has just built them and this build is a no-op; a
//! narrower `-p agent` build would resolve features differently and rebuild the
//! whole dependency tree. It runs in a plain environment (the test runner's
//! `CARGO_*` and library-path variables would mark build scripts dirty), so after
//! a build from the shell it is a no-op too.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow, bail};

/// Variables the build keeps: where the toolchain and the target directory are,
/// and what changes how code is built.
const KEPT: &[&str] = &[
    "PATH",
    "HOME",
    "CARGO_HOME",
    "RUSTUP_HOME",
    "RUSTUP_TOOLCHAIN",
    "CARGO_TARGET_DIR",
    "CARGO_INCREMENTAL",
    "RUSTFLAGS",
];

/// The directory holding the built binaries, once they are built.
static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// The path of the workspace binary `bin`, building the binaries if this process
/// has not yet.
pub fn binary(bin: &str) -> Result<PathBuf> {
    let dir = BUILT
        .get_or_init(|| build().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow!("{e}"))?;
    let path = dir.join(bin);
    if !path.exists() {
        bail!("{} was not built", path.display());
    }
    Ok(path)
}

/// Gives `command` (a cargo build, or a script running one) only the variables in
/// [`KEPT`], so that it builds as a build from the shell does.
pub fn plain_environment(command: &mut Command) -> &mut Command {
    command
        .env_clear()
        .envs(KEPT.iter().filter_map(|k| Some((k, std::env::var_os(k)?))))
}

fn build() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the running executable")?;
    // target/<profile>/deps/<test> or target/<profile>/<bin> → target/<profile>
    let mut dir = exe.parent().context("the executable has no directory")?;
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent().context("deps has no parent")?;
    }
    // In the test VM, what the host built before booting it is used as it is: cargo
    // under emulation would take minutes.
    if crate::vm::in_vm() {
        return Ok(dir.to_owned());
    }
    let release = dir.file_name().is_some_and(|n| n == "release");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    plain_environment(&mut command)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--quiet", "--workspace", "--bins"])
        .args(["--test", "harness_sweep"])
        .stdin(std::process::Stdio::null());
    if release {
        command.arg("--release");
    }
    let status = command
        .status()
        .context("running cargo build --workspace --bins")?;
    if !status.success() {
        bail!("cargo build --workspace --bins failed ({status})");
    }
    Ok(dir.to_owned())
}
