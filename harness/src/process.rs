//! Running programs: long-lived processes with their output in the test's log
//! directory, killed on drop, and one-shot commands whose errors carry stderr.
//!
//! No harness process may outlive the test process: children get
//! `PR_SET_PDEATHSIG(SIGKILL)`. That signal fires when the *thread* that forked the
//! child exits, not the process, so long-lived children are forked by one spawner
//! thread that lives as long as the process; a fixture shared between tests (and
//! started by whichever test thread came first) then survives that test's thread.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::logs;
use crate::wait::wait_until;

/// Lines of each log printed when a test panics.
const TAIL_LINES: usize = 40;

/// A running child process; killed (and reaped) on drop. When dropped during a panic it
/// prints the tail of its log.
#[derive(Debug)]
pub struct Process {
    label: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `command` with stdout and stderr appended to `<log_dir>/<label>.log`.
    pub fn spawn(mut command: Command, log_dir: &Path, label: &str) -> Result<Self> {
        let log = log_dir.join(format!("{label}.log"));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        let description = describe(&command);
        let child = spawn_on_spawner_thread(command)
            .with_context(|| format!("starting {label}: {description}"))?;
        Ok(Self {
            label: label.to_owned(),
            child,
            log,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// The file holding the process's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything the process has written so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Fails (with the log's tail) if the process has exited.
    pub fn check_running(&mut self) -> Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => bail!(
                "{} exited ({status}); log {}:\n{}",
                self.label,
                self.log.display(),
                logs::tail(&self.log, TAIL_LINES)
            ),
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit, then SIGKILLs.
    pub fn stop(&mut self, timeout: Duration) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).is_ok() {
            let _ = wait_until(timeout, "process exit", || {
                Ok(self.child.try_wait()?.is_some())
            });
        }
        self.kill();
    }

    /// SIGKILLs the process and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "---- last lines of {} ({}) ----\n{}\n---- end of {} ----",
                self.label,
                self.log.display(),
                logs::tail(&self.log, TAIL_LINES),
                self.label
            );
        }
    }
}

/// Runs `command` to completion; returns its stdout, or an error naming the command,
/// its exit status and its stderr.
pub fn exec(command: &mut Command) -> Result<String> {
    die_with_parent(command);
    let description = describe(command);
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {description}"))?;
    if !output.status.success() {
        bail!(
            "{description}: {}\nstderr: {}\nstdout: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            String::from_utf8_lossy(&output.stdout).trim()
        );
    }
    String::from_utf8(output.stdout).with_context(|| format!("{description}: stdout not UTF-8"))
}

/// A command line for messages.
pub fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

type SpawnRequest = (Command, Sender<io::Result<Child>>);

/// Forks `command` on the spawner thread (see the module comment).
fn spawn_on_spawner_thread(mut command: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<Sender<SpawnRequest>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (requests, incoming) = channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("tabby-test-spawner".into())
            .spawn(move || {
                for (mut command, reply) in incoming {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("starting the spawner thread");
        Mutex::new(requests)
    });
    die_with_parent(&mut command);
    let (reply, response) = channel();
    spawner
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .send((command, reply))
        .map_err(|_| io::Error::other("the spawner thread is gone"))?;
    response
        .recv()
        .map_err(|_| io::Error::other("the spawner thread is gone"))?
}

/// Makes the child receive SIGKILL when its parent thread dies.
#[allow(unsafe_code)]
fn die_with_parent(command: &mut Command) {
    let parent = std::process::id() as i32;
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
    // system calls (prctl, getppid, _exit); it allocates nothing and takes no locks.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
            // The parent may have died before prctl: then nobody would kill us.
            if nix::unistd::getppid().as_raw() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_errors_carry_stderr() {
        let error = exec(Command::new("sh").args(["-c", "echo oops >&2; exit 3"]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("oops"), "{error}");
        assert!(error.contains("sh -c"), "{error}");
    }

    #[test]
    fn exec_returns_stdout() {
        assert_eq!(exec(Command::new("echo").arg("hi")).unwrap(), "hi\n");
    }

    #[test]
    fn spawned_processes_log_and_die_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new("sh");
        command.args(["-c", "echo started; exec sleep 60"]);
        let mut process = Process::spawn(command, dir.path(), "sleeper").unwrap();
        let pid = process.pid();
        assert!(process.is_running());
        wait_until(Duration::from_secs(5), "sleeper logs", || {
            Ok(process.log().contains("started"))
        })
        .unwrap();
        drop(process);
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn a_crashed_process_reports_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new("sh");
        command.args(["-c", "echo dying words; exit 2"]);
        let mut process = Process::spawn(command, dir.path(), "crasher").unwrap();
        let error = wait_until(Duration::from_secs(5), "crasher exits", || {
            Ok(process.check_running().err())
        })
        .unwrap();
        assert!(error.to_string().contains("dying words"), "{error}");
    }
}
