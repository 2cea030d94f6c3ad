//! The guest's initramfs: static busybox, the modules needed to reach the 9p root,
//! and an `/init` that mounts everything and runs the requested command.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::kernel::{Kernel, run};

/// Modules the guest needs before it can mount its root over virtio-9p.
const BOOT_MODULES: &[&str] = &["virtio_pci", "9pnet_virtio", "9p"];

const BUSYBOX: &str = "/bin/busybox";

/// `/init` of the guest. Parameters come on the kernel command line:
/// `tabby.work=<dir mounted read-write>`, `tabby.modprobe=<modprobe wrapper>` and
/// `tabby.run=<script>`. `switch_root` (rather than chroot) makes the 9p root the root
/// of the kernel's own helpers too, so module autoloading runs the wrapper.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
fail() { echo "tabby-vm: $*" > /dev/ttyS0; echo "TABBY-VM-EXIT 125" > /dev/ttyS0; echo o > /proc/sysrq-trigger; sleep 5; }
for m in $(cat /modules.order); do insmod "/modules/$m" || fail "insmod $m failed"; done
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    tabby.work=*) work="${arg#tabby.work=}" ;;
    tabby.run=*) script="${arg#tabby.run=}" ;;
    tabby.modprobe=*) modprobe="${arg#tabby.modprobe=}" ;;
  esac
done
r=/newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=524288 hostroot $r || fail "cannot mount the host root"
mount -t proc proc $r/proc
mount -t sysfs sys $r/sys
mount -t devtmpfs dev $r/dev
mkdir -p $r/dev/pts $r/dev/shm
mount -t devpts devpts $r/dev/pts
for d in tmp run var/tmp dev/shm; do mount -t tmpfs tmpfs "$r/$d"; done
# Last, so a workspace under /tmp is not hidden by the tmpfs (its mount point is then made there).
mkdir -p "$r$work" 2>/dev/null
mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 work "$r$work" || fail "cannot mount $work"
echo "$modprobe" > /proc/sys/kernel/modprobe
exec switch_root $r /bin/sh "$script"
"#;

/// Builds (once per kernel version) the initramfs and returns its path.
pub(super) fn build(kernel: &Kernel, cache: &Path) -> Result<PathBuf> {
    // Keyed by what goes in, so a changed `/init` never boots a stale image.
    let mut key = std::hash::DefaultHasher::new();
    (INIT, BOOT_MODULES, &kernel.version).hash(&mut key);
    let image = cache.join(format!(
        "initramfs-{}-{:016x}.cpio",
        kernel.version,
        key.finish()
    ));
    if image.exists() {
        return Ok(image);
    }
    if !Path::new(BUSYBOX).exists() {
        bail!("{BUSYBOX} is missing: install Debian's busybox-static (scripts/install-deps does)");
    }
    let tree = tempfile::tempdir_in(cache)?;
    let root = tree.path();
    for dir in ["bin", "proc", "sys", "dev", "modules", "newroot"] {
        fs::create_dir_all(root.join(dir))?;
    }
    fs::copy(BUSYBOX, root.join("bin/busybox"))?;
    write_executable(&root.join("init"), INIT)?;

    let order = load_order(&kernel.modules, BOOT_MODULES)?;
    let mut names = Vec::new();
    for path in &order {
        let name = path.file_name().context("module path without a name")?;
        fs::copy(kernel.modules.join(path), root.join("modules").join(name))?;
        names.push(name.to_string_lossy().into_owned());
    }
    fs::write(root.join("modules.order"), names.join("\n"))?;

    let partial = image.with_extension("partial");
    let cpio = format!(
        "cd {} && find . -print0 | cpio --null --quiet -o -H newc > {}",
        root.display(),
        partial.display()
    );
    run(Command::new("sh").arg("-c").arg(cpio))?;
    fs::rename(&partial, &image)?;
    Ok(image)
}

fn write_executable(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, text)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// The module files (relative to the module tree) to insert so that each of `wanted`
/// loads, dependencies first, as `modules.dep` describes them.
fn load_order(modules: &Path, wanted: &[&str]) -> Result<Vec<PathBuf>> {
    let dep_file = modules.join("modules.dep");
    let text =
        fs::read_to_string(&dep_file).with_context(|| format!("reading {}", dep_file.display()))?;
    let deps = parse_modules_dep(&text);
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    for name in wanted {
        let path = deps
            .keys()
            .find(|p| module_name(p) == *name)
            .with_context(|| format!("module {name} is not in {}", dep_file.display()))?;
        visit(path, &deps, &mut seen, &mut order);
    }
    Ok(order.into_iter().map(PathBuf::from).collect())
}

fn visit<'a>(
    path: &'a str,
    deps: &HashMap<&'a str, Vec<&'a str>>,
    seen: &mut HashSet<&'a str>,
    order: &mut Vec<&'a str>,
) {
    if !seen.insert(path) {
        return;
    }
    for dep in deps.get(path).into_iter().flatten() {
        visit(dep, deps, seen, order);
    }
    order.push(path);
}

/// `modules.dep` lines: `kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/netfs/netfs.ko`.
fn parse_modules_dep(text: &str) -> HashMap<&str, Vec<&str>> {
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(module, deps)| (module.trim(), deps.split_whitespace().collect()))
        .collect()
}

/// `kernel/net/9p/9pnet_virtio.ko` -> `9pnet_virtio`.
fn module_name(path: &str) -> &str {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.split('.').next().unwrap_or(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_load_before_the_modules_that_need_them() {
        let dep = "kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/netfs/netfs.ko\n\
                   kernel/net/9p/9pnet.ko:\n\
                   kernel/fs/netfs/netfs.ko: kernel/fs/fscache/fscache.ko\n\
                   kernel/fs/fscache/fscache.ko:\n";
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("modules.dep"), dep).unwrap();
        let order = load_order(dir.path(), &["9p"]).unwrap();
        let names: Vec<_> = order
            .iter()
            .map(|p| module_name(p.to_str().unwrap()))
            .collect();
        let pos = |n| names.iter().position(|x| *x == n).unwrap();
        assert_eq!(names.len(), 4);
        assert!(pos("fscache") < pos("netfs"));
        assert!(pos("netfs") < pos("9p") && pos("9pnet") < pos("9p"));
    }

    #[test]
    fn a_module_missing_from_the_tree_is_named() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("modules.dep"), "kernel/a.ko:\n").unwrap();
        let err = load_order(dir.path(), &["ipip"]).unwrap_err();
        assert!(err.to_string().contains("module ipip is not in"), "{err}");
    }
}
