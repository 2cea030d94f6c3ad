//! tabby-agent, run as its binary on a lab node, against etcd as production clusters
//! set it up: TLS with client certificates, and authentication with a user that may
//! touch tabby's keys only. The agent registers its Node through either.

use std::time::Duration;

use harness::etcd::Etcd;
use harness::{Lab, Node};

const USER: &str = "tabby";
const PASSWORD: &str = "a-long-etcd-password";

fn lab(test: &str) -> Lab {
    Lab::new(test)
        .subnet("a", "10.0.1.0/24")
        .node("n1", "a")
        .build()
        .unwrap()
}

/// Starts the agent on `node` with `datastore` flags (and `env`) and waits until
/// its Node is in etcd; the agent is killed on return.
fn registers(node: &Node, etcd: &Etcd, datastore: &[String], env: &[(&str, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    let path = |file: &str| dir.path().join(file).display().to_string();
    let mut command = node.command(env!("CARGO_BIN_EXE_tabby-agent"));
    command
        .arg("--node-name=n1")
        .arg(format!("--ip={}/24", node.address()))
        .arg(format!("--socket={}", path("agent.sock")))
        .arg(format!("--mtu-file={}", path("mtu")))
        .arg(format!("--nodename-file={}", path("nodename")))
        .args(datastore)
        .envs(env.iter().copied());
    let mut agent = harness::process::Process::spawn(command, node.logs(), "tabby-agent").unwrap();
    let node_key = "/tabby/v1/nodes/n1";
    harness::wait_until(Duration::from_secs(30), "the agent's Node in etcd", || {
        agent.check_running()?;
        let value = etcd.etcdctl(&["get", node_key, "--print-value-only"])?;
        Ok(Some(value).filter(|v| !v.is_empty()))
    })
    .and_then(|value| {
        anyhow::ensure!(value.contains("10.0.1."), "{value}");
        Ok(())
    })
    .unwrap();
    agent.kill();
}

#[test]
#[ignore = "needs root"]
fn agent_registers_over_etcd_with_tls_client_certificates() {
    harness::require_root();
    let lab = lab("agent_etcd_tls");
    let node = lab.node("n1");
    let etcd = Etcd::start_local_in(lab.logs(), node.netns(), true).unwrap();
    let files = etcd.tls().unwrap();
    let (cert, key) = files.client();
    let flags = [
        "--datastore-type=etcdv3".to_owned(),
        format!("--etcd-endpoints={}", etcd.endpoint()),
        format!("--etcd-ca-cert-file={}", files.ca().display()),
        format!("--etcd-cert-file={}", cert.display()),
        format!("--etcd-key-file={}", key.display()),
    ];
    registers(node, &etcd, &flags, &[]);
}

#[test]
#[ignore = "needs root"]
fn agent_registers_over_etcd_with_a_user_and_password() {
    harness::require_root();
    let lab = lab("agent_etcd_auth");
    let node = lab.node("n1");
    let mut etcd = Etcd::start_local_in(lab.logs(), node.netns(), false).unwrap();
    etcd.enable_auth(USER, PASSWORD, "/tabby").unwrap();
    // calico-node's variables, as a Calico DaemonSet's env block sets them.
    let endpoint = etcd.endpoint();
    let env = [
        ("DATASTORE_TYPE", "etcdv3"),
        ("ETCD_ENDPOINTS", endpoint.as_str()),
        ("ETCD_USERNAME", USER),
        ("ETCD_PASSWORD", PASSWORD),
    ];
    registers(node, &etcd, &[], &env);
}
