//! One containerd per lab node, inside the node's network namespace, with
//! everything a node keeps on its disk in a directory of its own (see the module
//! documentation for why each setting is there):
//!
//! ```text
//! tb-<id>-containerd-<node>-XXXX/
//!   config.toml        containerd.sock(.ttrpc)
//!   root/  state/      containerd's; sandbox netns bind mounts under state/
//!   runc/              runc's state (the default is the host's /run/containerd/runc)
//!   opt/cni/bin/       the node's CNI bin dir
//!   etc/cni/net.d/     the node's CNI conf dir
//!   pods/              kubelet's /var/log/pods
//! ```
//!
//! Pods' cgroups go under `/tb-<id>-<node>/` in every hierarchy. Dropping a
//! [`Containerd`] stops and removes its sandboxes through the CRI (CNI DEL),
//! stops containerd, then kills whatever still runs in those cgroups and unmounts
//! whatever is still mounted under its directory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use tempfile::TempDir;

use super::client::{CriClient, PodSpec, Sandbox};
use super::{leftovers, pause};
use crate::netns::Netns;
use crate::process::{self, Process};
use crate::wait::wait_serving;

/// How long containerd may take to serve the CRI after starting.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a SIGTERMed containerd may take to exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A node's containerd with its CRI plugin; see the module documentation.
#[derive(Debug)]
pub struct Containerd {
    process: Option<Process>,
    label: String,
    netns: PathBuf,
    logs: PathBuf,
    /// Pods' cgroups go under it, in every hierarchy.
    cgroup_root: String,
    dir: TempDir,
}

impl Containerd {
    /// Prepares containerd for `node` of lab run `id` (its config, directories and
    /// the pause image archive) without starting it: install the CNI plugins and
    /// config first ([`Containerd::cni_bin_dir`], [`Containerd::cni_conf_dir`]).
    pub fn new(id: &str, node: &str, netns: &Netns) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(&format!(
                "{}containerd-{node}-",
                crate::names::netns_prefix(id)
            ))
            .tempdir()
            .context("creating containerd's directory")?;
        let containerd = Self {
            process: None,
            label: format!("containerd-{node}"),
            netns: netns.path(),
            logs: netns.logs().to_owned(),
            cgroup_root: format!("/{}{node}", crate::names::netns_prefix(id)),
            dir,
        };
        for sub in [
            "root",
            "state",
            "runc",
            "opt/cni/bin",
            "etc/cni/net.d",
            "pods",
        ] {
            std::fs::create_dir_all(containerd.path(sub))?;
        }
        std::fs::write(containerd.path("config.toml"), containerd.config())?;
        Ok(containerd)
    }

    fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    /// The node's `/opt/cni/bin`.
    pub fn cni_bin_dir(&self) -> PathBuf {
        self.path("opt/cni/bin")
    }

    /// The node's `/etc/cni/net.d`.
    pub fn cni_conf_dir(&self) -> PathBuf {
        self.path("etc/cni/net.d")
    }

    pub fn socket(&self) -> PathBuf {
        self.path("containerd.sock")
    }

    pub fn client(&self) -> CriClient {
        CriClient::new(&self.socket())
    }

    /// `config.toml` (containerd 1.6, config version 2).
    fn config(&self) -> String {
        let path = |sub: &str| toml_string(&self.path(sub));
        format!(
            r#"version = 2
root = {root}
state = {state}
# Snapshotters that need what this host lacks (or that only add noise), and the
# opt plugin, which installs into the host's /opt/containerd.
disabled_plugins = [
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = {socket}
[ttrpc]
  address = {ttrpc}
[debug]
  address = ""
[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{image}"
  # Sandbox network namespaces under state/, not the host's /var/run/netns.
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  # This host withholds CAP_SYS_RESOURCE even from root, so runc may not lower
  # oom_score_adj to the sandbox's -998: keep it no lower than containerd's.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = {bin_dir}
    conf_dir = {conf_dir}
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = {runc}
"#,
            root = path("root"),
            state = path("state"),
            socket = toml_string(&self.socket()),
            ttrpc = path("containerd.sock.ttrpc"),
            image = pause::IMAGE,
            bin_dir = toml_string(&self.cni_bin_dir()),
            conf_dir = toml_string(&self.cni_conf_dir()),
            runc = path("runc"),
        )
    }

    /// Starts containerd and waits until it serves the CRI; imports the pause image
    /// on the first start.
    pub fn start(&mut self) -> Result<()> {
        let mut command = Command::new("nsenter");
        // Not `ip netns exec`: it remounts /sys in a mount namespace of its own,
        // where runc finds no cgroups.
        command
            .arg(format!("--net={}", self.netns.display()))
            .arg("containerd")
            .arg("--config")
            .arg(self.path("config.toml"));
        let mut process = Process::spawn(command, &self.logs, &self.label)?;
        let client = self.client();
        let what = format!("{} to serve the CRI", self.label);
        wait_serving(Some(&mut process), START_TIMEOUT, &what, || {
            Ok(client.version().map(drop).map_err(|e| format!("{e:#}")))
        })?;
        self.process = Some(process);
        if !self.path("pause.tar").exists() {
            pause::write_archive(&self.path("pause.tar"))?;
            self.ctr(&[
                "images",
                "import",
                &self.path("pause.tar").display().to_string(),
            ])?;
        }
        Ok(())
    }

    /// Waits until the runtime and its network (the CNI config) are ready, as
    /// kubelet waits before it runs pods.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let client = self.client();
        let label = self.label.clone();
        let process = self.process.as_mut().context("containerd is not running")?;
        wait_serving(
            Some(process),
            timeout,
            &format!("{label} to be ready"),
            || client.ready(),
        )
    }

    /// Stops containerd (SIGTERM); sandboxes keep running, as on a real node.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop(STOP_TIMEOUT);
        }
    }

    /// Runs `ctr` against this containerd in kubelet's namespace `k8s.io`.
    pub fn ctr(&self, args: &[&str]) -> Result<String> {
        process::exec(
            Command::new("ctr")
                .arg("--address")
                .arg(self.socket())
                .args(["--namespace", "k8s.io"])
                .args(args),
        )
    }

    /// Runs `pod`'s sandbox as kubelet would and returns its status.
    pub fn run_pod(&self, pod: &PodSpec) -> Result<Sandbox> {
        let client = self.client();
        let id = client.run_pod_sandbox(pod, &self.cgroup_root, &self.path("pods"))?;
        client.pod_sandbox_status(&id)
    }

    /// Stops and removes every sandbox, as kubelet does when pods go.
    fn remove_all(&self) -> Result<()> {
        let client = self.client();
        for sandbox in client.list_pod_sandbox()? {
            client.stop_pod_sandbox(&sandbox.id)?;
            client.remove_pod_sandbox(&sandbox.id)?;
        }
        Ok(())
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if self.process.is_some()
            && let Err(error) = self.remove_all()
        {
            eprintln!("{}: removing the sandboxes: {error:#}", self.label);
        }
        self.stop();
        leftovers::remove_cgroups(&self.cgroup_root);
        leftovers::unmount_under(self.dir.path());
    }
}

/// A path as a TOML basic string (JSON's escapes are TOML's).
fn toml_string(path: &Path) -> String {
    serde_json::Value::String(path.display().to_string()).to_string()
}
