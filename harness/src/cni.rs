//! Running a CNI plugin binary as a container runtime does: a clean environment with
//! only the `CNI_*` variables, the network configuration on standard input, the
//! result (or error) on standard output.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use anyhow::{Context, Result};
use serde_json::Value;

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
    let path = std::env::var("PATH").unwrap_or_default();
    let mut all = vec![("PATH", path.as_str())];
    all.extend_from_slice(vars);
    let output = spawn(command, &all, conf)?
        .wait_with_output()
        .context("waiting for the plugin")?;
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
