//! Calling a CNI plugin exactly as a container runtime does: the `CNI_*`
//! variables in an otherwise empty environment, the network config on stdin, the
//! result (or error) as JSON on stdout.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

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
    let mut command = Command::new(plugin);
    command.env_clear().envs([
        ("CNI_COMMAND", call.command),
        ("CNI_CONTAINERID", call.container),
        ("CNI_NETNS", call.netns),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/opt/cni/bin"),
        ("CNI_ARGS", call.args),
    ]);
    feed(command, conf).with_context(|| format!("running {}", plugin.display()))
}

/// The plugin's answer to one call.
#[derive(Debug)]
pub struct Answer {
    pub json: Value,
    pub success: bool,
    pub stderr: String,
}

/// Runs `command` (the plugin) with `vars` (and `PATH`) and `conf` on stdin.
pub fn run_plugin(mut command: Command, vars: &[(&str, &str)], conf: &Value) -> Result<Answer> {
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(vars.iter().copied());
    let output = feed(command, conf)?;
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

/// Runs `command` with `conf` on stdin, to completion.
fn feed(mut command: Command, conf: &Value) -> Result<Output> {
    let mut child = command
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
        .context("writing the network config")?;
    child.wait_with_output().context("waiting for the plugin")
}
