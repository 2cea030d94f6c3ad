//! The `calicoctl-rs` binary on the kubernetes datastore, against the in-repo API
//! double (a real kube-apiserver cannot be installed on these machines; the double
//! follows the API's semantics, see `harness::kube_api`). The kubeconfig handling is
//! kube's own, as on a real cluster.

mod support;

use std::process::{Command, Output};

use harness::conformance::KubeFixture;
use support::stdout_of;

/// The double on a runtime of its own, and a kubeconfig whose current context points
/// nowhere while context `double` points at it.
struct Cluster {
    _fixture: KubeFixture,
    _runtime: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn start(test: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let fixture = runtime.block_on(KubeFixture::start(test));
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n\
             - name: double\n  cluster: {{server: '{}'}}\n\
             - name: nowhere\n  cluster: {{server: 'http://127.0.0.1:9'}}\n\
             users:\n- name: anonymous\n  user: {{}}\n\
             contexts:\n\
             - name: double\n  context: {{cluster: double, user: anonymous}}\n\
             - name: nowhere\n  context: {{cluster: nowhere, user: anonymous}}\n\
             current-context: nowhere\n",
            fixture.api().url()
        );
        std::fs::write(dir.path().join("kubeconfig"), kubeconfig).unwrap();
        Self {
            _fixture: fixture,
            _runtime: runtime,
            dir,
        }
    }

    fn kubeconfig(&self) -> String {
        self.dir.path().join("kubeconfig").display().to_string()
    }

    fn calicoctl(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_calicoctl-rs"));
        command.args(args).env_remove("KUBECONFIG");
        command.envs(env.iter().copied());
        command.output().expect("the binary runs")
    }
}

#[test]
fn kubernetes_is_reached_through_the_kubeconfig_context_asked_for() {
    let cluster = Cluster::start("kubernetes_is_reached_through_the_context");
    let kubeconfig = cluster.kubeconfig();
    let with_context = ["--kubeconfig", &kubeconfig, "--context", "double"];
    let apply = [
        &with_context[..],
        &["apply", "-f", "tests/fixtures/cluster.yaml"],
    ]
    .concat();
    let applied = stdout_of(cluster.calicoctl(&apply, &[]));
    assert_eq!(applied.lines().count(), 14, "{applied}");
    let get = [&with_context[..], &["get", "ippools", "-o", "wide"]].concat();
    let golden = std::fs::read_to_string("tests/golden/get-ippools-wide.txt").unwrap();
    assert_eq!(stdout_of(cluster.calicoctl(&get, &[])), golden);

    // The same through KUBECONFIG (a list with a missing file, as kubectl allows) and
    // TABBY_CONTEXT.
    let list = format!("/nonexistent/config:{kubeconfig}");
    let env = [("KUBECONFIG", list.as_str()), ("TABBY_CONTEXT", "double")];
    let table = stdout_of(cluster.calicoctl(&["get", "bgppeers"], &env));
    let golden = std::fs::read_to_string("tests/golden/get-bgppeers-table.txt").unwrap();
    assert_eq!(table, golden);
}

#[test]
fn kubernetes_in_the_wrong_context_is_one_line_and_exit_one() {
    let cluster = Cluster::start("kubernetes_in_the_wrong_context");
    let kubeconfig = cluster.kubeconfig();
    let output = cluster.calicoctl(&["--kubeconfig", &kubeconfig, "get", "ippools"], &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");

    let output = cluster.calicoctl(
        &["--kubeconfig", "/nonexistent/kubeconfig", "get", "nodes"],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("error: kubeconfig /nonexistent/kubeconfig:"),
        "{stderr}"
    );

    let unknown = [
        "--kubeconfig",
        &kubeconfig,
        "--context",
        "prod",
        "get",
        "nodes",
    ];
    let output = cluster.calicoctl(&unknown, &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("prod"), "{stderr}");
}

#[test]
fn calico_yaml_the_corpus_applied_to_the_api_reads_back_as_on_every_datastore() {
    let cluster = Cluster::start("calico_yaml_corpus_on_kubernetes");
    let kubeconfig = cluster.kubeconfig();
    let with_context = ["--kubeconfig", kubeconfig.as_str(), "--context", "double"];
    let run = |args: &[&str]| cluster.calicoctl(&[&with_context[..], args].concat(), &[]);
    let golden = |name: &str| std::fs::read_to_string(format!("tests/golden/{name}")).unwrap();
    let applied = stdout_of(run(&["apply", "-f", support::CALICO_CORPUS]));
    assert_eq!(applied, golden("apply-calico-corpus.txt"));
    for kind in support::CORPUS_KINDS {
        let yaml = stdout_of(run(&["get", kind, "-o", "yaml"]));
        assert_eq!(
            support::without_revisions(&yaml),
            golden(&format!("apply-calico-get-{kind}.yaml")),
            "{kind}"
        );
    }
    let before = stdout_of(run(&["get", "ippools", "-o", "yaml"]));
    let refused = run(&["apply", "-f", support::CALICO_REFUSED]);
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(stdout_of(run(&["get", "ippools", "-o", "yaml"])), before);
}
