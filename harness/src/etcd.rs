//! A throwaway etcd: in the host namespace on loopback, or inside a lab namespace
//! on one of its addresses (so that lab nodes reach it, as nodes reach a real
//! cluster's etcd); ports picked free, a temporary data directory; killed and
//! removed on drop.
//!
//! ```no_run
//! let logs = harness::logs::LogDir::new("my_test")?;
//! let etcd = harness::etcd::Etcd::start(&logs)?;
//! etcd.etcdctl(&["put", "k", "v"])?;
//! let endpoint: String = etcd.endpoint(); // "http://127.0.0.1:<port>"
//!
//! // Clients only over TLS, with certificates signed by this run's CA:
//! let secure = harness::etcd::Etcd::start_tls(&logs)?;
//! let files = secure.tls().expect("started with TLS");
//! let (cert, key) = files.client();
//! # let _ = (files.ca(), cert, key);
//!
//! // A crash and a return on the same data (clients' connections break):
//! # let mut etcd = etcd;
//! etcd.stop();
//! etcd.restart()?;
//!
//! // Authentication on: user "tabby" may read and write under /tabby only.
//! let mut guarded = harness::etcd::Etcd::start(&logs)?;
//! guarded.enable_auth("tabby", "its-password", "/tabby")?;
//! # anyhow::Ok(())
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use tempfile::TempDir;

use crate::netns::Netns;
use crate::process::{self, Process};
use crate::registry::Registration;
use crate::tls::TlsFiles;
use crate::wait::wait_until;

/// Attempts when another process grabs a port between picking and binding it.
const START_ATTEMPTS: usize = 5;
const HEALTHY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running single-member etcd cluster.
#[derive(Debug)]
pub struct Etcd {
    // Drop order: the process dies before its data directory and registration go.
    process: Process,
    _data: TempDir,
    client: SocketAddr,
    /// The namespace it runs in; the host's when `None`.
    netns: Option<String>,
    registration: Registration,
    tls: Option<TlsFiles>,
    /// `user:password` of etcd's root user, once authentication is on.
    root: Option<String>,
    /// How it was started, to start it again on the same data ([`Etcd::restart`]).
    argv: Vec<std::ffi::OsString>,
    log_dir: std::path::PathBuf,
    health: SocketAddr,
}

/// Where and how etcd listens.
#[derive(Debug, Clone, Copy)]
struct Placement<'a> {
    netns: Option<&'a str>,
    address: IpAddr,
    tls: bool,
}

impl Etcd {
    /// Starts etcd logging to `<log_dir>/etcd-<port>.log` and waits until it is healthy.
    pub fn start(log_dir: impl AsRef<Path>) -> Result<Self> {
        Self::start_at(
            log_dir.as_ref(),
            Placement {
                netns: None,
                address: Ipv4Addr::LOCALHOST.into(),
                tls: false,
            },
        )
    }

    /// Starts etcd inside `netns`, listening on `address` (one of the namespace's),
    /// e.g. a lab's router, which every node has a route to.
    pub fn start_in(log_dir: impl AsRef<Path>, netns: &Netns, address: IpAddr) -> Result<Self> {
        Self::start_at(
            log_dir.as_ref(),
            Placement {
                netns: Some(netns.name()),
                address,
                tls: false,
            },
        )
    }

    /// Starts etcd on the loopback of `netns` (brought up): for a daemon under test
    /// in that namespace, which reaches it at `127.0.0.1` as the certificate of
    /// `tls` names it.
    pub fn start_local_in(log_dir: impl AsRef<Path>, netns: &Netns, tls: bool) -> Result<Self> {
        netns.ip("link set lo up")?;
        Self::start_at(
            log_dir.as_ref(),
            Placement {
                netns: Some(netns.name()),
                address: Ipv4Addr::LOCALHOST.into(),
                tls,
            },
        )
    }

    /// As [`Etcd::start`], but clients speak TLS (`https://`) and must present a
    /// certificate signed by the CA in [`Etcd::tls`] (etcd's `--client-cert-auth`),
    /// as production clusters are set up. Health is read from a plain-HTTP metrics
    /// listener.
    pub fn start_tls(log_dir: impl AsRef<Path>) -> Result<Self> {
        Self::start_at(
            log_dir.as_ref(),
            Placement {
                netns: None,
                address: Ipv4Addr::LOCALHOST.into(),
                tls: true,
            },
        )
    }

    fn start_at(log_dir: &Path, placement: Placement<'_>) -> Result<Self> {
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(log_dir, placement) {
                Ok(etcd) => return Ok(etcd),
                Err(e) if format!("{e:#}").contains("address already in use") => {
                    last_error = Some(e)
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.expect("at least one attempt"))
            .context("starting etcd: ports kept colliding")
    }

    fn try_start(log_dir: &Path, placement: Placement<'_>) -> Result<Self> {
        let Placement {
            netns,
            address,
            tls,
        } = placement;
        let registration = Registration::new()?;
        let data = tempfile::Builder::new()
            .prefix("tabby-etcd-")
            .tempdir()
            .context("creating etcd's data directory")?;
        let (client_port, peer_port) = (free_port()?, free_port()?);
        let tls = match tls {
            true => Some(TlsFiles::generate("tabby-test-etcd-ca")?),
            false => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let client_address = SocketAddr::new(address, client_port);
        let client = format!("{scheme}://{client_address}");
        let peer = format!("http://{}", SocketAddr::new(address, peer_port));
        let mut command = match netns {
            Some(name) => crate::netns::command_in(name, "etcd"),
            None => Command::new("etcd"),
        };
        command
            .arg("--name=tabby-test")
            .arg(format!("--data-dir={}", data.path().join("data").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=tabby-test={peer}"))
            .arg("--logger=zap")
            .arg("--log-outputs=stderr");
        let health = match &tls {
            None => client_address,
            Some(files) => {
                let metrics = SocketAddr::new(address, free_port()?);
                let (cert, key) = files.server();
                command
                    .arg(format!("--cert-file={}", cert.display()))
                    .arg(format!("--key-file={}", key.display()))
                    .arg(format!("--trusted-ca-file={}", files.ca().display()))
                    .arg("--client-cert-auth")
                    .arg(format!("--listen-metrics-urls=http://{metrics}"));
                metrics
            }
        };
        let argv = std::iter::once(command.get_program())
            .chain(command.get_args())
            .map(ToOwned::to_owned)
            .collect();
        let mut process = Process::spawn(command, log_dir, &format!("etcd-{client_port}"))?;
        registration.record_pid(process.pid())?;
        wait_healthy(&mut process, netns, health)?;
        Ok(Self {
            process,
            _data: data,
            client: client_address,
            netns: netns.map(str::to_owned),
            registration,
            tls,
            root: None,
            argv,
            log_dir: log_dir.to_owned(),
            health,
        })
    }

    /// SIGKILLs etcd, as a crash or a lost machine stops it: its clients' connections
    /// break. Its data stays for [`Etcd::restart`].
    pub fn stop(&mut self) {
        self.process.kill();
        self.registration.forget_pid(self.process.pid());
    }

    /// Starts etcd again on the same data, address and ports, and waits until it is
    /// healthy.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        let mut command = Command::new(&self.argv[0]);
        command.args(&self.argv[1..]);
        let label = format!("etcd-{}", self.client.port());
        let mut process = Process::spawn(command, &self.log_dir, &label)?;
        self.registration.record_pid(process.pid())?;
        wait_healthy(&mut process, self.netns.as_deref(), self.health)?;
        self.process = process;
        Ok(())
    }

    /// The client URL, `http://<address>:<port>` (`https://` with TLS).
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.client)
    }

    /// The address clients connect to.
    pub fn client_address(&self) -> SocketAddr {
        self.client
    }

    /// tabby's flags for a daemon of this etcd: `--datastore-type=etcdv3`, the
    /// endpoint, and with TLS the CA and the client certificate.
    pub fn daemon_flags(&self) -> Vec<String> {
        let mut flags = vec![
            "--datastore-type=etcdv3".to_owned(),
            format!("--etcd-endpoints={}", self.endpoint()),
        ];
        if let Some(files) = &self.tls {
            let (cert, key) = files.client();
            flags.extend([
                format!("--etcd-ca-cert-file={}", files.ca().display()),
                format!("--etcd-cert-file={}", cert.display()),
                format!("--etcd-key-file={}", key.display()),
            ]);
        }
        flags
    }

    /// The CA and certificates of an etcd started with [`Etcd::start_tls`].
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// Turns on etcd's authentication, as a production cluster has it: `user` with
    /// `password` may read and write keys under `prefix` and nothing else. etcd
    /// needs a root user for that; [`Etcd::etcdctl`] acts as root from then on.
    pub fn enable_auth(&mut self, user: &str, password: &str, prefix: &str) -> Result<()> {
        let root = format!("root:{}", rand::random::<u64>());
        let role = format!("{user}-role");
        let steps: [&[&str]; 7] = [
            &["user", "add", &root, "--interactive=false"],
            &["user", "grant-role", "root", "root"],
            &["role", "add", &role],
            &[
                "role",
                "grant-permission",
                &role,
                "--prefix=true",
                "readwrite",
                prefix,
            ],
            &[
                "user",
                "add",
                &format!("{user}:{password}"),
                "--interactive=false",
            ],
            &["user", "grant-role", user, &role],
            &["auth", "enable"],
        ];
        for step in steps {
            self.etcdctl(step)
                .with_context(|| format!("etcdctl {}", step.join(" ")))?;
        }
        self.root = Some(root);
        Ok(())
    }

    /// Runs `etcdctl --endpoints <endpoint> <args>` (API v3) where etcd runs, with
    /// the client certificate when TLS is on and as root when authentication is;
    /// returns stdout.
    pub fn etcdctl(&self, args: &[&str]) -> Result<String> {
        let mut command = match &self.netns {
            Some(name) => crate::netns::command_in(name, "etcdctl"),
            None => Command::new("etcdctl"),
        };
        command
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint()));
        if let Some(files) = &self.tls {
            let (cert, key) = files.client();
            command
                .arg(format!("--cacert={}", files.ca().display()))
                .arg(format!("--cert={}", cert.display()))
                .arg(format!("--key={}", key.display()));
        }
        if let Some(root) = &self.root {
            command.arg(format!("--user={root}"));
        }
        process::exec(command.args(args))
    }

    /// The etcd process (pid, log).
    pub fn process(&self) -> &Process {
        &self.process
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.process.kill();
        self.registration.forget_pid(self.process.pid());
    }
}

/// Waits until etcd answers healthy at `health` (from `netns`).
fn wait_healthy(process: &mut Process, netns: Option<&str>, health: SocketAddr) -> Result<()> {
    wait_until(HEALTHY_TIMEOUT, "etcd to become healthy", || {
        process.check_running()?;
        Ok(match netns {
            Some(name) => crate::netns::in_netns(name, || healthy(health))?,
            None => healthy(health),
        })
    })
    .map_err(|e| match process.check_running() {
        // Report the crash (with its log) rather than the timeout.
        Err(crash) => crash,
        Ok(()) => e,
    })
}

/// A loopback port the kernel considers free right now.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("picking a free port")?;
    Ok(listener.local_addr()?.port())
}

/// True when `GET /health` answers `"health":"true"` (asked from the calling
/// thread's namespace).
fn healthy(address: SocketAddr) -> bool {
    crate::http::get(address, "/health").is_ok_and(|r| r.contains(r#""health":"true""#))
}
