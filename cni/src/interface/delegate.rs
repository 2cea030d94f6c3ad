//! IPAM the standard CNI way: run the `ipam.type` binary from `CNI_PATH` with the
//! same stdin and environment, `CNI_COMMAND` set to the operation wanted.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};

use serde::Deserialize;

use crate::error::{CniError, code};
use crate::spec::env::Command;
use crate::spec::result::CniResult;

/// The first executable `plugin` in the `CNI_PATH` directories.
pub fn find(plugin: &str, path: &[PathBuf]) -> Result<PathBuf, CniError> {
    path.iter()
        .map(|dir| dir.join(plugin))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| CniError::Delegate {
            plugin: plugin.to_owned(),
            command: "lookup",
            code: code::NOT_AVAILABLE,
            msg: format!(
                "no executable {plugin:?} in CNI_PATH ({}): install the IPAM plugin there or fix ipam.type",
                path.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":")
            ),
            details: String::new(),
        })
}

/// Runs `plugin` for ADD and returns the addresses it allocated.
pub fn add(plugin: &str, path: &[PathBuf], stdin: &[u8]) -> Result<CniResult, CniError> {
    let stdout = exec(plugin, path, Command::Add, stdin)?;
    serde_json::from_slice(&stdout).map_err(|e| CniError::Delegate {
        plugin: plugin.to_owned(),
        command: "ADD",
        code: code::DECODE,
        msg: format!("unreadable result: {e}"),
        details: String::new(),
    })
}

/// Runs `plugin` for a command that answers with success or an error only (DEL,
/// CHECK, STATUS, GC).
pub fn run(plugin: &str, path: &[PathBuf], command: Command, stdin: &[u8]) -> Result<(), CniError> {
    exec(plugin, path, command, stdin).map(drop)
}

/// Runs `plugin` with `CNI_COMMAND=command` and `stdin`; its stdout on success.
fn exec(
    plugin: &str,
    path: &[PathBuf],
    command: Command,
    stdin: &[u8],
) -> Result<Vec<u8>, CniError> {
    let binary = find(plugin, path)?;
    let failed = |msg: String| CniError::Delegate {
        plugin: plugin.to_owned(),
        command: command.name(),
        code: code::IO,
        msg,
        details: String::new(),
    };
    let mut child = Process::new(&binary)
        .env("CNI_COMMAND", command.name())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot start {}: {e}", binary.display())))?;
    if let Some(mut input) = child.stdin.take() {
        // A plugin that exits without reading is judged by its exit status below.
        let _ = input.write_all(stdin);
    }
    let output = child
        .wait_with_output()
        .map_err(|e| failed(format!("waiting for {}: {e}", binary.display())))?;
    if !output.status.success() {
        return Err(match serde_json::from_slice::<WireError>(&output.stdout) {
            Ok(error) => CniError::Delegate {
                plugin: plugin.to_owned(),
                command: command.name(),
                code: error.code,
                msg: error.msg,
                details: error.details,
            },
            Err(_) => failed(format!(
                "exited with {} without a CNI error: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )),
        });
    }
    Ok(output.stdout)
}

/// A plugin's error JSON.
#[derive(Debug, Deserialize)]
struct WireError {
    code: u32,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    details: String,
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake IPAM plugin: a shell script in a temporary CNI_PATH directory.
    fn plugin(dir: &Path, name: &str, script: &str) {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn add_returns_the_delegates_result_and_passes_the_command() {
        let dir = tempfile::tempdir().unwrap();
        plugin(
            dir.path(),
            "fake-ipam",
            r#"cat >/dev/null; [ "$CNI_COMMAND" = ADD ] || exit 1
echo '{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.3/32"}]}'"#,
        );
        let result = add("fake-ipam", &[dir.path().into()], b"{}").unwrap();
        assert_eq!(result.ips[0].address.to_string(), "10.0.0.3/32");
    }

    #[test]
    fn a_delegates_error_json_is_passed_on() {
        let dir = tempfile::tempdir().unwrap();
        plugin(
            dir.path(),
            "full-ipam",
            r#"echo '{"cniVersion":"1.0.0","code":11,"msg":"pool exhausted","details":"10.0.0.0/30"}'; exit 1"#,
        );
        let error = add("full-ipam", &[dir.path().into()], b"{}").unwrap_err();
        assert_eq!(error.code(), 11);
        assert_eq!(
            error.to_string(),
            "IPAM plugin full-ipam (ADD): pool exhausted"
        );
    }

    #[test]
    fn a_missing_plugin_names_the_search_path() {
        let error = find(
            "tabby-ipam",
            &["/nonexistent/a".into(), "/nonexistent/b".into()],
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("CNI_PATH (/nonexistent/a:/nonexistent/b)"),
            "{error}"
        );
    }
}
