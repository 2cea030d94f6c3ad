//! Running a CNI plugin binary as a container runtime does: a clean environment with
//! only the `CNI_*` variables, the network configuration on standard input, the
//! result (or error) on standard output. [`HostLocal`] is a runtime on a lab node
//! calling tabby-cni with Debian's `host-local` as IPAM (for tests that need pods
//! but no datastore).

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::{Lab, Netns, Node};

/// One invocation's `CNI_*` variables; `CNI_IFNAME` is `eth0`, `CNI_PATH`
/// `/opt/cni/bin`.
#[derive(Debug, Clone, Copy)]
pub struct CniCall<'a> {
    /// `ADD`, `DEL`, `CHECK`, ...
    pub command: &'a str,
    pub container: &'a str,
    pub netns: &'a str,
    /// `CNI_ARGS`, e.g. `K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0`.
    pub args: &'a str,
}

/// Runs `plugin` for `call` with `conf` on standard input, to completion.
pub fn run(plugin: &Path, call: CniCall<'_>, conf: &Value) -> Result<Output> {
    start(plugin, call, conf)?
        .wait_with_output()
        .context("waiting for the plugin")
}

/// Starts `plugin` for `call` with `conf` written to its standard input; its standard
/// output and error are pipes.
pub fn start(plugin: &Path, call: CniCall<'_>, conf: &Value) -> Result<Child> {
    let vars = [
        ("CNI_COMMAND", call.command),
        ("CNI_CONTAINERID", call.container),
        ("CNI_NETNS", call.netns),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/opt/cni/bin"),
        ("CNI_ARGS", call.args),
    ];
    spawn(Command::new(plugin), &vars, conf)
        .with_context(|| format!("running {}", plugin.display()))
}

/// The plugin's answer to one call, its stdout parsed.
#[derive(Debug)]
pub struct Answer {
    pub json: Value,
    pub success: bool,
    pub stderr: String,
}

/// Runs `command` (the plugin, maybe entering a namespace first) with `vars` in
/// an environment otherwise holding only `PATH`, and `conf` on stdin.
pub fn run_plugin(command: Command, vars: &[(&str, &str)], conf: &Value) -> Result<Answer> {
    let output = start_plugin(command, vars, conf)?
        .wait_with_output()
        .context("waiting for the plugin")?;
    answer(&output)
}

/// Starts what [`run_plugin`] runs, for a test that stops it midway.
pub fn start_plugin(command: Command, vars: &[(&str, &str)], conf: &Value) -> Result<Child> {
    let path = std::env::var("PATH").unwrap_or_default();
    let mut all = vec![("PATH", path.as_str())];
    all.extend_from_slice(vars);
    spawn(command, &all, conf)
}

/// The answer in a finished plugin's output.
pub fn answer(output: &Output) -> Result<Answer> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json = if stdout.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&stdout).with_context(|| format!("the plugin's stdout {stdout:?}"))?
    };
    Ok(Answer {
        json,
        success: output.status.success(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// Starts `command` with only `vars` in its environment and `conf` written to its
/// stdin.
fn spawn(mut command: Command, vars: &[(&str, &str)], conf: &Value) -> Result<Child> {
    let mut child = command
        .env_clear()
        .envs(vars.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the plugin")?;
    child
        .stdin
        .take()
        .context("the plugin's stdin")?
        .write_all(conf.to_string().as_bytes())
        .context("writing the network configuration")?;
    Ok(child)
}

/// Where Debian's containernetworking-plugins puts `host-local`.
pub const CNI_PATH: &str = "/usr/lib/cni";
const HOST_LOCAL_NETWORK: &str = "tabby-test";

/// A network config and the runtime's side of tabby-cni calls on one node, with
/// `host-local` as IPAM.
#[derive(Debug)]
pub struct HostLocal<'a> {
    node: &'a Node,
    /// The tabby-cni binary.
    plugin: PathBuf,
    /// host-local's state: one file per allocated address under `<dir>/<network>/`.
    data_dir: tempfile::TempDir,
    pub conf: Value,
    /// Kubernetes namespace of the pods: unique per lab.
    namespace: String,
}

impl<'a> HostLocal<'a> {
    /// Calls to `plugin` (tabby-cni; its package's tests name their own build, others
    /// [`crate::e2e::binary`]) allocating from host-local `ranges`.
    pub fn new(lab: &Lab, node: &'a Node, ranges: Value, plugin: impl Into<PathBuf>) -> Self {
        let data_dir = tempfile::tempdir().expect("a directory for host-local");
        let conf = json!({
            "cniVersion": "1.0.0",
            "name": HOST_LOCAL_NETWORK,
            "type": "tabby-cni",
            "mtu": 1400,
            "ipam": {
                "type": "host-local",
                "ranges": ranges,
                "dataDir": data_dir.path(),
            },
        });
        Self {
            node,
            plugin: plugin.into(),
            data_dir,
            conf,
            namespace: format!("ns-{}", lab.id()),
        }
    }

    /// Calls tabby-cni with `command` for `pod` (netns `None`: already gone).
    pub fn call(&self, command: &str, pod: &str, netns: Option<&Netns>, conf: &Value) -> Answer {
        let netns = netns.map(|n| n.path()).unwrap_or_default();
        run_plugin(
            self.node.command(&self.plugin),
            &[
                ("CNI_COMMAND", command),
                ("CNI_CONTAINERID", &format!("ctr-{pod}")),
                ("CNI_NETNS", &netns.display().to_string()),
                ("CNI_IFNAME", "eth0"),
                (
                    "CNI_ARGS",
                    &format!(
                        "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={pod}",
                        self.namespace
                    ),
                ),
                ("CNI_PATH", CNI_PATH),
            ],
            conf,
        )
        .expect("tabby-cni runs")
    }

    pub fn add(&self, pod: &str, netns: &Netns) -> Value {
        let answer = self.call("ADD", pod, Some(netns), &self.conf);
        assert!(answer.success, "ADD {pod}: {}", answer.json);
        answer.json
    }

    pub fn del(&self, pod: &str, netns: Option<&Netns>) -> Answer {
        self.call("DEL", pod, netns, &self.conf)
    }

    pub fn check(&self, pod: &str, netns: &Netns, prev_result: &Value) -> Answer {
        let mut conf = self.conf.clone();
        conf["prevResult"] = prev_result.clone();
        self.call("CHECK", pod, Some(netns), &conf)
    }

    /// The Kubernetes namespace the pods are in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The host end of `pod`'s veth (Calico's name, computed independently).
    pub fn host_veth(&self, pod: &str) -> String {
        veth_name(&self.namespace, pod).expect("sha1sum runs")
    }

    /// Addresses host-local has handed out (its state directory's file names).
    pub fn allocated(&self) -> Vec<String> {
        let dir = self.data_dir.path().join(HOST_LOCAL_NETWORK);
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|name| name.parse::<IpAddr>().is_ok())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// A one-subnet lab whose node has a default route (via the router): proxy ARP
/// answers for 169.254.1.1 only when the node has a route to it.
pub fn one_node_lab(test: &str) -> Lab {
    Lab::new(test)
        .subnet("a", "10.0.1.0/24")
        .node("n1", "a")
        .router()
        .build()
        .expect("the lab builds")
}

/// host-local's one IPv4 range.
pub fn v4_range() -> Value {
    json!([[{"subnet": "10.244.0.0/24"}]])
}

/// The pod's address from an ADD result.
pub fn pod_ip(result: &Value, index: usize) -> IpAddr {
    let cidr = result["ips"][index]["address"]
        .as_str()
        .expect("an address in the result");
    cidr.split('/')
        .next()
        .unwrap_or_default()
        .parse()
        .expect("an IP address")
}

/// `ip -j <args>` in `netns`, parsed.
pub fn ip_json(netns: &Netns, args: &str) -> Value {
    serde_json::from_str(&netns.ip(&format!("-j {args}")).expect("ip runs")).expect("ip's JSON")
}

pub fn has_link(netns: &Netns, name: &str) -> bool {
    ip_json(netns, "link show")
        .as_array()
        .is_some_and(|links| links.iter().any(|link| link["ifname"] == name))
}

/// The host end of a pod's veth, as tabby-cni names it (Calico's scheme: `cali`
/// and 11 hex digits of SHA-1 of `<namespace>.<pod>`), computed with the
/// system's `sha1sum` so that tests check the plugin's and agent's names
/// independently.
pub fn veth_name(namespace: &str, pod: &str) -> Result<String> {
    use std::io::Write as _;
    let mut child = std::process::Command::new("sha1sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("running sha1sum")?;
    child
        .stdin
        .take()
        .context("sha1sum's stdin")?
        .write_all(format!("{namespace}.{pod}").as_bytes())?;
    let output = child.wait_with_output()?;
    let digest = String::from_utf8_lossy(&output.stdout);
    Ok(format!(
        "cali{}",
        digest.get(..11).context("sha1sum's output")?
    ))
}
