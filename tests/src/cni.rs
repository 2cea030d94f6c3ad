//! Running a CNI plugin binary as a container runtime does: a clean environment with
//! only the `CNI_*` variables, the network configuration on standard input, the
//! result (or error) on standard output.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use anyhow::{Context, Result};

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
pub fn run(plugin: &Path, call: CniCall<'_>, conf: &serde_json::Value) -> Result<Output> {
    start(plugin, call, conf)?
        .wait_with_output()
        .context("waiting for the plugin")
}

/// Starts `plugin` for `call` with `conf` written to its standard input; its standard
/// output and error are pipes.
pub fn start(plugin: &Path, call: CniCall<'_>, conf: &serde_json::Value) -> Result<Child> {
    let mut child = Command::new(plugin)
        .env_clear()
        .env("CNI_COMMAND", call.command)
        .env("CNI_CONTAINERID", call.container)
        .env("CNI_NETNS", call.netns)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", "/opt/cni/bin")
        .env("CNI_ARGS", call.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", plugin.display()))?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(conf.to_string().as_bytes())
        .context("writing the network configuration")?;
    Ok(child)
}
