//! Calling a CNI plugin exactly as a container runtime does: the `CNI_*`
//! variables in an otherwise empty environment, the network config on stdin, the
//! result (or error) as JSON on stdout.

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use serde_json::Value;

/// The plugin's answer to one call.
#[derive(Debug)]
pub struct Answer {
    pub json: Value,
    pub success: bool,
    pub stderr: String,
}

/// Runs `command` (the plugin) with `vars` and `conf` on stdin.
pub fn run_plugin(mut command: Command, vars: &[(&str, &str)], conf: &Value) -> Result<Answer> {
    let mut child = command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
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
        .context("writing the network config")?;
    let output = child.wait_with_output().context("waiting for the plugin")?;
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
