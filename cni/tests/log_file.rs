//! The plugins' log file, written by the real binaries: a successful call and a
//! failed one both leave their lines there, as the config names it, and the
//! file is rotated when over its cap. No root needed: neither call reaches the
//! kernel.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

fn call(plugin: &str, command: &str, conf: &Value) -> Output {
    let mut child = Command::new(plugin)
        .env_clear()
        .envs([
            ("CNI_COMMAND", command),
            ("CNI_CONTAINERID", "c-log"),
            ("CNI_NETNS", "/nonexistent/netns"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_PATH", "/nonexistent"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(conf.to_string().as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn observability_both_plugins_log_successful_and_failed_calls_to_the_configured_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tabby/cni.log");
    let conf = json!({"cniVersion": "1.0.0", "name": "k8s-pod-network", "type": "tabby-cni",
                      "log_file_path": path, "ipam": {"type": "tabby-ipam"}});
    let version = call(env!("CARGO_BIN_EXE_tabby-cni"), "VERSION", &conf);
    assert!(version.status.success());
    let mut bad = conf.clone();
    bad["mtu"] = json!(20);
    let failed = call(env!("CARGO_BIN_EXE_tabby-cni"), "ADD", &bad);
    assert!(!failed.status.success());
    let ipam = call(env!("CARGO_BIN_EXE_tabby-ipam"), "VERSION", &conf);
    assert!(ipam.status.success());
    let log = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 6, "{log}");
    for (line, wanted) in lines.iter().zip([
        "tabby-cni",
        "CNI call succeeded",
        "command=\"ADD\"",
        "mtu: 20 is outside 68..=65535",
        "tabby-ipam",
        "CNI call succeeded",
    ]) {
        assert!(line.contains(wanted), "{wanted:?} not in {line:?}\n{log}");
    }
    assert!(lines[0].contains("command=\"VERSION\"") && lines[0].contains("container=\"c-log\""));
    // No colours in a file.
    assert!(!log.contains('\u{1b}'), "{log}");
}

#[test]
fn observability_a_log_file_over_its_cap_is_rotated_by_the_next_call() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cni.log");
    std::fs::write(&path, vec![b'x'; 1024 * 1024]).unwrap();
    let conf = json!({"cniVersion": "1.0.0", "name": "n", "type": "tabby-cni",
                      "log_file_path": path, "log_file_max_size": 1, "log_file_max_count": 1,
                      "ipam": {"type": "tabby-ipam"}});
    assert!(
        call(env!("CARGO_BIN_EXE_tabby-cni"), "VERSION", &conf)
            .status
            .success()
    );
    let rotated = dir.path().join("cni.log.1");
    assert_eq!(std::fs::metadata(rotated).unwrap().len(), 1024 * 1024);
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("CNI call succeeded")
    );
}
