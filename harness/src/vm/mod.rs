//! Running tests inside a QEMU virtual machine with Debian's kernel.
//!
//! This host's kernel has no IPIP, so `tunl0` cannot exist here. Debian's generic
//! kernel has it, and boots under QEMU with software emulation (TCG; KVM exists on
//! these machines but crashes this guest) in a couple of seconds. The guest needs no
//! disk image: a small busybox initramfs loads the virtio and 9p modules, mounts the
//! host's `/` read-only over 9p as its root, mounts the workspace read-write at the
//! same path (so test binaries, their compiled-in paths and their logs all work), binds
//! the kernel's own module tree over `/lib/modules` (so `ip link add type ipip` loads
//! modules as on a normal machine), and runs one command. Its exit status comes back on
//! the serial console; the VM powers off and QEMU is killed if it overstays.
//!
//! A test uses [`run_test_in_vm`]: on the host it boots a VM that re-runs that same test
//! binary with the same test name; inside the VM ([`in_vm`] is true) the test does the
//! real work.

mod boot;
mod initramfs;
mod kernel;

pub use boot::{VmOutcome, run};
pub use kernel::Kernel;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Set in the guest's environment for the command the VM runs.
pub const IN_VM_ENV: &str = "TABBY_IN_VM";

/// True when this process runs inside the test VM.
pub fn in_vm() -> bool {
    std::env::var_os(IN_VM_ENV).is_some()
}

/// Where kernels, initramfs images and run scripts are cached: `<workspace>/target/vm`.
pub fn cache_dir() -> PathBuf {
    workspace_root().join("target").join("vm")
}

/// The workspace root, the directory the guest mounts read-write.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the harness crate lives inside the workspace")
        .to_path_buf()
}

/// This machine's `MemTotal` and `MemAvailable`, for a test to report how much of
/// the VM's memory (`-m` in boot.rs) its heaviest moment leaves.
pub fn memory() -> String {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    meminfo
        .lines()
        .filter(|l| l.starts_with("MemTotal:") || l.starts_with("MemAvailable:"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs the test `name` of the current test binary inside a VM and fails unless it
/// passed there. Call it from the test itself when [`in_vm`] is false. The test may
/// be ignored (it needs root, as every VM test does): it was asked for by name.
pub fn run_test_in_vm(name: &str, timeout: Duration) -> Result<()> {
    let exe = std::env::current_exe().context("locating the test binary")?;
    let command = format!(
        "{} --exact {} --include-ignored --nocapture --test-threads 1",
        shell_quote(&exe.to_string_lossy()),
        shell_quote(name)
    );
    let outcome = run(&command, timeout)?;
    if outcome.exit_code != 0 {
        bail!(
            "test {name} failed inside the VM (exit {}); console:\n{}",
            outcome.exit_code,
            outcome.console
        );
    }
    ran_exactly_one_test(name, &outcome.console)
}

/// libtest exits 0 when `--exact` matches nothing: a misspelt name must not pass.
fn ran_exactly_one_test(name: &str, console: &str) -> Result<()> {
    if !console.lines().any(|l| l.trim() == "running 1 test") {
        bail!("inside the VM, no test is named {name} (the run ran none); console:\n{console}");
    }
    Ok(())
}

/// Quotes `s` for a POSIX shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_survives_single_quotes() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn a_vm_run_that_ran_no_test_is_a_failure() {
        let none = "running 0 tests\n\ntest result: ok. 0 passed; 0 failed\n";
        let err = ran_exactly_one_test("vm_typo", none).unwrap_err();
        assert!(
            err.to_string().contains("no test is named vm_typo"),
            "{err}"
        );
        let one = "vm| x\nrunning 1 test\ntest vm_x ... ok\n";
        ran_exactly_one_test("vm_x", one).unwrap();
    }
}
