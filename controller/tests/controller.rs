//! tabby-ipam-controller run as its binary: against etcd as production clusters set
//! it up (TLS with client certificates; authentication with a user limited to
//! tabby's keys), and stopped as its Deployment stops it (SIGTERM to PID 1).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use api::datastore::config::EtcdConfig;
use api::datastore::{Backend, Datastore, DatastoreConfig};
use api::resources::{Cidr, IPPool, IPPoolSpec};
use harness::etcd::Etcd;
use harness::logs::LogDir;
use ipam::{Allocator, AssignRequest};
use serde_json::Value;

const USER: &str = "tabby";
const PASSWORD: &str = "a-long-etcd-password";

fn controller() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tabby-ipam-controller"))
}

/// A pool and an address of node n1, which does not exist (nor does the pod): the
/// controller reclaims them.
async fn leak(store: Arc<dyn Backend>) {
    let mut spec = IPPoolSpec::new("10.244.0.0/24".parse::<Cidr>().unwrap());
    spec.block_size = Some(28);
    store.create(&IPPool::new("p", spec)).await.unwrap();
    let mut request = AssignRequest::new("net.gone", 1, 0);
    request.attrs = BTreeMap::from([
        ("namespace".to_owned(), "default".to_owned()),
        ("pod".to_owned(), "gone".to_owned()),
        ("node".to_owned(), "n1".to_owned()),
    ]);
    Allocator::new(store, "n1")
        .auto_assign(&request)
        .await
        .unwrap();
}

/// Passes with no grace until one reclaims something; what it reclaimed.
fn reclaim(command: impl Fn() -> Command) -> Vec<Value> {
    for _ in 0..4 {
        let output = command()
            .args(["--once", "--grace", "0s"])
            .output()
            .unwrap();
        let report = report_of(&output);
        let reclaimed = report["reclaimed"].as_array().unwrap();
        if !reclaimed.is_empty() {
            return reclaimed.clone();
        }
    }
    panic!("nothing reclaimed in four passes");
}

fn report_of(output: &Output) -> Value {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        report["errors"].as_array().unwrap().is_empty(),
        "{report:#}"
    );
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_reclaims_over_etcd_with_tls_client_certificates() {
    let etcd = tokio::task::block_in_place(|| {
        Etcd::start_tls(LogDir::new("controller_etcd_tls").unwrap()).unwrap()
    });
    let files = etcd.tls().unwrap();
    let (ca, (cert, key)) = (files.ca(), files.client());
    let mut config = EtcdConfig::new(vec![etcd.endpoint()]);
    config.ca_cert_file = Some(ca.clone());
    config.cert_file = Some(cert.clone());
    config.key_file = Some(key.clone());
    let store = api::datastore::connect(&DatastoreConfig::Etcd(config))
        .await
        .unwrap();
    leak(store).await;
    // Calico's variables, as a calico-kube-controllers Deployment sets them.
    tokio::task::block_in_place(|| {
        reclaim(|| {
            let mut command = controller();
            command
                .env("DATASTORE_TYPE", "etcdv3")
                .env("ETCD_ENDPOINTS", etcd.endpoint())
                .env("ETCD_CA_CERT_FILE", &ca)
                .env("ETCD_CERT_FILE", &cert)
                .env("ETCD_KEY_FILE", &key);
            command
        })
    });
    // Without the client certificate etcd refuses, and the error says what to give.
    let refused = tokio::task::block_in_place(|| {
        controller()
            .args(["--etcd-endpoints", &etcd.endpoint()])
            .arg("--etcd-ca-cert-file")
            .arg(&ca)
            .args(["--once"])
            .output()
            .unwrap()
    });
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("give --etcd-cert-file"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_reclaims_over_etcd_with_a_user_and_password() {
    let etcd = tokio::task::block_in_place(|| {
        let mut etcd = Etcd::start(LogDir::new("controller_etcd_auth").unwrap()).unwrap();
        etcd.enable_auth(USER, PASSWORD, "/tabby").unwrap();
        etcd
    });
    let mut config = EtcdConfig::new(vec![etcd.endpoint()]);
    config.username = Some(USER.into());
    config.password = Some(PASSWORD.into());
    let store = api::datastore::connect(&DatastoreConfig::Etcd(config))
        .await
        .unwrap();
    leak(store).await;
    let with_password = |password: &str| {
        let mut command = controller();
        command
            .args([
                "--etcd-endpoints",
                &etcd.endpoint(),
                "--etcd-username",
                USER,
            ])
            .env("TABBY_ETCD_PASSWORD", password);
        command
    };
    tokio::task::block_in_place(|| reclaim(|| with_password(PASSWORD)));
    let refused =
        tokio::task::block_in_place(|| with_password("wrong").arg("--once").output().unwrap());
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("refused user \"tabby\"") && stderr.contains("password"),
        "{stderr}"
    );
}

/// In its image the controller is PID 1, where a signal without a handler does
/// nothing: a Deployment's rollout would wait out the grace period, then SIGKILL.
#[test]
fn hardening_the_controller_exits_cleanly_on_sigterm() {
    let etcd = Etcd::start(LogDir::new("controller_sigterm").unwrap()).unwrap();
    let mut child = controller()
        .args(["--etcd-endpoints", &etcd.endpoint()])
        .args(["--metrics-address", "127.0.0.1:0", "--interval", "1s"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, seen) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    // After a pass the controller is in its loop, where the handler lives.
    let mut log = Vec::new();
    while !log
        .iter()
        .any(|l: &String| l.contains("IPAM garbage-collection pass"))
    {
        log.push(
            seen.recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no pass logged: {log:#?}")),
        );
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = harness::wait_until(Duration::from_secs(10), "the controller to exit", || {
        Ok(child.try_wait()?.ok_or("still running"))
    })
    .unwrap();
    log.extend(seen.try_iter());
    assert!(status.success(), "{status:?}: {log:#?}");
    assert!(
        log.iter().any(|l| l.contains("SIGTERM: exiting")),
        "{log:#?}"
    );
}
