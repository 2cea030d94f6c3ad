//! Booting the VM for one command and reading its outcome off the serial console.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::fcntl::{Flock, FlockArg};

use super::{IN_VM_ENV, cache_dir, initramfs, kernel::Kernel, workspace_root};

const QEMU: &str = "qemu-system-x86_64";
const EXIT_MARKER: &str = "TABBY-VM-EXIT ";
/// How long a guest that reported its exit status may take to power off.
const POWER_OFF: Duration = Duration::from_secs(20);
/// Environment passed from the host test into the guest command.
const PASSED_ENV: &[&str] = &["CI", "RUST_BACKTRACE", "RUST_LOG", "NEXTEST_RUN_ID"];

/// What a command run in the VM did.
#[derive(Debug)]
pub struct VmOutcome {
    pub exit_code: i32,
    /// Everything the guest printed on its console.
    pub console: String,
}

/// Boots a VM, runs `command` with `/bin/sh` in the workspace directory inside it,
/// and returns its exit status and console. Fails (never passes silently) when QEMU
/// cannot start, the guest cannot boot, or `timeout` passes; QEMU never outlives this.
pub fn run(command: &str, timeout: Duration) -> Result<VmOutcome> {
    which(QEMU).with_context(|| {
        format!("{QEMU} is not installed: install Debian's qemu-system-x86 (scripts/install-deps)")
    })?;
    let cache = cache_dir();
    fs::create_dir_all(cache.join("runs"))?;
    let (kernel, initrd, modprobe) = {
        // One process fetches and builds; the others wait and reuse the result.
        let lock = File::create(cache.join("lock"))?;
        let _guard = Flock::lock(lock, FlockArg::LockExclusive)
            .map_err(|(_, e)| e)
            .context("locking the VM cache")?;
        let kernel = Kernel::cached_or_fetch()?;
        let initrd = initramfs::build(&kernel, &cache)?;
        let modprobe = modprobe_wrapper(&kernel, &cache)?;
        (kernel, initrd, modprobe)
    };
    let script = RunScript::write(&cache, command)?;
    let workspace = workspace_root();
    let append = format!(
        "console=ttyS0 quiet panic=-1 tabby.work={} tabby.run={} tabby.modprobe={}",
        workspace.display(),
        script.0.display(),
        modprobe.display()
    );
    // setpriv: the kernel kills QEMU when the thread that started it dies, so a test
    // process killed by nextest's timeout leaves no VM behind.
    let mut qemu = Command::new("setpriv")
        .args(["--pdeathsig", "KILL", QEMU])
        .args([
            "-accel",
            "tcg",
            "-m",
            "2048",
            "-smp",
            "2",
            "-nodefaults",
            "-no-reboot",
        ])
        .args(["-display", "none", "-serial", "stdio", "-monitor", "none"])
        .arg("-kernel")
        .arg(&kernel.vmlinuz)
        .arg("-initrd")
        .arg(&initrd)
        .args(["-append", &append])
        .args(nine_p_share("hostroot", Path::new("/"), true))
        .args(nine_p_share("work", &workspace, false))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map(Qemu)
        .with_context(|| format!("starting {QEMU}"))?;

    let (lines_tx, lines) = mpsc::channel();
    let stdout = qemu.0.stdout.take().context("QEMU stdout")?;
    let stderr = qemu.0.stderr.take().context("QEMU stderr")?;
    for stream in [
        Box::new(stdout) as Box<dyn std::io::Read + Send>,
        Box::new(stderr),
    ] {
        let tx = lines_tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    drop(lines_tx);

    let mut deadline = Instant::now() + timeout;
    let mut console = String::new();
    let mut exit_code = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left.min(Duration::from_millis(200))) {
            Ok(line) => {
                // The serial console ends lines with \r\n.
                let line = line.trim_end_matches('\r');
                println!("vm| {line}");
                if let Some(code) = line.strip_prefix(EXIT_MARKER) {
                    exit_code = code.trim().parse().ok();
                    deadline = deadline.min(Instant::now() + POWER_OFF);
                }
                console.push_str(line);
                console.push('\n');
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            // The command is done and the guest failed to power off: its result stands.
            Err(mpsc::RecvTimeoutError::Timeout) if left.is_zero() && exit_code.is_some() => break,
            Err(mpsc::RecvTimeoutError::Timeout) if left.is_zero() => {
                drop(qemu);
                bail!(
                    "the VM did not finish within {timeout:?}, so QEMU was killed (a step \
                     hung, or the machine is too loaded for this timeout); console so far:\n\
                     {console}"
                );
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
    }
    // Reaped, and killed first if it has not powered off yet.
    drop(qemu);
    let Some(exit_code) = exit_code else {
        bail!(
            "the VM stopped without reporting the command's exit status (QEMU failed, \
             the guest did not boot, or its kernel panicked); console:\n{console}"
        );
    };
    Ok(VmOutcome { exit_code, console })
}

/// The QEMU process, killed (if still running) and reaped however `run` ends.
struct Qemu(Child);

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A 9p share: QEMU's `-fsdev` plus the virtio device the guest mounts by tag.
fn nine_p_share(tag: &str, path: &Path, readonly: bool) -> [String; 4] {
    // The host root spans several filesystems; remap keeps their inode numbers apart.
    let ro = if readonly {
        ",readonly=on,multidevs=remap"
    } else {
        ""
    };
    [
        "-fsdev".into(),
        format!(
            "local,id={tag},path={},security_model=none{ro}",
            path.display()
        ),
        "-device".into(),
        format!("virtio-9p-pci,fsdev={tag},mount_tag={tag}"),
    ]
}

/// The guest's `modprobe`: the host's kmod, pointed at the unpacked kernel package
/// (the host root the guest runs on has no module tree for the guest's kernel).
fn modprobe_wrapper(kernel: &Kernel, cache: &Path) -> Result<PathBuf> {
    let package_root = kernel
        .modules
        .ancestors()
        .nth(3)
        .context("module tree is not inside an unpacked package")?;
    let bin = cache.join("bin");
    fs::create_dir_all(&bin)?;
    let path = bin.join("modprobe");
    let text = format!(
        "#!/bin/sh\nexec /sbin/modprobe -d {} \"$@\"\n",
        package_root.display()
    );
    fs::write(&path, text)?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
    Ok(path)
}

/// The per-run script the guest's PID 1 runs; removed when the run ends.
struct RunScript(PathBuf);

impl RunScript {
    fn write(cache: &Path, command: &str) -> Result<RunScript> {
        let path = tempfile::Builder::new()
            .prefix("run-")
            .suffix(".sh")
            .tempfile_in(cache.join("runs"))?
            .into_temp_path()
            .keep()?;
        let mut env = format!("export {IN_VM_ENV}=1\n");
        for name in PASSED_ENV {
            if let Ok(value) = std::env::var(name) {
                env.push_str(&format!("export {name}={}\n", super::shell_quote(&value)));
            }
        }
        let mut file = File::create(&path)?;
        write!(
            file,
            "ip link set lo up\n\
             export PATH={bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n\
             export HOME=/root\n\
             {env}\
             cd {workspace}\n\
             ( {command} )\n\
             echo \"{EXIT_MARKER}$?\"\n\
             sync\n\
             echo o > /proc/sysrq-trigger\n\
             sleep 10\n",
            bin = cache.join("bin").display(),
            workspace = super::shell_quote(&workspace_root().to_string_lossy()),
        )?;
        Ok(RunScript(path))
    }
}

impl Drop for RunScript {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn which(program: &str) -> Result<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .with_context(|| format!("{program} not found in PATH"))
}
