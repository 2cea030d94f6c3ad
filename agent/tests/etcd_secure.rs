//! tabby-agent, run as its binary on a lab node, against etcd as production clusters
//! set it up: TLS with client certificates, and authentication with a user that may
//! touch tabby's keys only. The agent registers its Node through either, and starts
//! from its last view when both are configured and etcd is down.

use std::path::Path;
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

/// Starts the agent on `node` with `datastore` flags (and `env`), its files in
/// `dir`, logging as `label`.
fn start(
    node: &Node,
    dir: &Path,
    datastore: &[String],
    env: &[(&str, &str)],
    label: &str,
) -> harness::process::Process {
    let path = |file: &str| dir.join(file).display().to_string();
    let mut command = node.command(env!("CARGO_BIN_EXE_tabby-agent"));
    command
        .arg("--node-name=n1")
        .arg(format!("--ip={}/24", node.address()))
        .arg(format!("--socket={}", path("agent.sock")))
        .arg(format!("--mtu-file={}", path("mtu")))
        .arg(format!("--nodename-file={}", path("nodename")))
        .arg(format!("--last-view-file={}", path("last-view.json")))
        .args(datastore)
        .envs(env.iter().copied());
    harness::process::Process::spawn(command, node.logs(), label).unwrap()
}

/// Starts the agent on `node` with `datastore` flags (and `env`) and waits until
/// its Node is in etcd; the agent is killed on return.
fn registers(node: &Node, etcd: &Etcd, datastore: &[String], env: &[(&str, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    let mut agent = start(node, dir.path(), datastore, env, "tabby-agent");
    wait_registered(&mut agent, etcd);
    agent.kill();
}

fn wait_registered(agent: &mut harness::process::Process, etcd: &Etcd) {
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
}

/// Whether the agent serving `socket` says it is ready.
fn ready(socket: &Path) -> anyhow::Result<bool> {
    harness::runtime().block_on(async {
        let channel = proto::client::connect_unix(socket).await?;
        let mut status = proto::agent::agent_status_client::AgentStatusClient::new(channel);
        let node = status.get_node(proto::agent::GetNodeRequest {}).await?;
        Ok(node.into_inner().ready)
    })
}

#[test]
#[ignore = "needs root"]
fn agent_registers_over_etcd_with_tls_client_certificates() {
    harness::require_root();
    let lab = lab("agent_etcd_tls");
    let node = lab.node("n1");
    let etcd = Etcd::start_local_in(lab.logs(), node.netns(), true).unwrap();
    registers(node, &etcd, &etcd.daemon_flags(), &[]);
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

/// etcd with TLS client certificates and a user: the agent registers and saves its
/// view, is SIGKILLed, and is started again while etcd is down. It starts from the
/// saved view (connecting asks etcd nothing then: the handshake and the login wait
/// for the first request that reaches it), and registers once etcd is back.
#[test]
#[ignore = "needs root"]
fn fault_an_agent_restarted_while_its_tls_etcd_with_a_user_is_down_starts_from_its_last_view() {
    harness::require_root();
    let lab = lab("agent_etcd_secure_down");
    let node = lab.node("n1");
    let mut etcd = Etcd::start_local_in(lab.logs(), node.netns(), true).unwrap();
    etcd.enable_auth(USER, PASSWORD, "/tabby").unwrap();
    let flags = etcd.daemon_flags();
    let env = [("ETCD_USERNAME", USER), ("ETCD_PASSWORD", PASSWORD)];
    let dir = tempfile::tempdir().unwrap();
    let mut agent = start(node, dir.path(), &flags, &env, "tabby-agent");
    wait_registered(&mut agent, &etcd);
    let view = dir.path().join("last-view.json");
    harness::wait_until(Duration::from_secs(30), "the saved view", || {
        agent.check_running()?;
        anyhow::Ok(view.exists())
    })
    .unwrap();
    agent.kill();

    etcd.stop();
    let mut again = start(node, dir.path(), &flags, &env, "tabby-agent-again");
    let socket = dir.path().join("agent.sock");
    harness::wait_until(
        Duration::from_secs(60),
        "the agent ready without etcd",
        || {
            again.check_running()?;
            ready(&socket)
        },
    )
    .unwrap();
    etcd.restart().unwrap();
    harness::wait_until(Duration::from_secs(60), "the agent to register", || {
        again.check_running()?;
        anyhow::Ok(again.log().contains("node registered"))
    })
    .unwrap();
}
