//! The `calicoctl-rs` binary against a real etcd (Debian's etcd-server, started on
//! free loopback ports by the harness): resources written, read back, changed and
//! refused as an operator would see it, with etcd's own view checked by etcdctl.

mod support;

use std::process::{Command, Output};

use harness::etcd::Etcd;
use harness::logs::LogDir;
use support::stdout_of;

struct Cluster {
    etcd: Etcd,
}

impl Cluster {
    fn start(test: &str) -> Self {
        let logs = LogDir::new(test).expect("a log directory");
        Self {
            etcd: Etcd::start(&logs).expect("etcd starts"),
        }
    }

    fn calicoctl(&self, args: &[&str]) -> Output {
        let endpoint = self.etcd.endpoint();
        let mut command = Command::new(env!("CARGO_BIN_EXE_calicoctl-rs"));
        command.args(["--etcd-endpoints", &endpoint]).args(args);
        command.output().expect("the binary runs")
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        stdout_of(self.calicoctl(args))
    }

    fn keys(&self, prefix: &str) -> Vec<String> {
        let listed = self
            .etcd
            .etcdctl(&["get", "--prefix", "--keys-only", prefix])
            .unwrap();
        listed
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

#[test]
fn etcd_holds_what_apply_wrote_and_get_reads_it_back() {
    let cluster = Cluster::start("etcd_holds_what_apply_wrote");
    let applied = cluster.ok(&["apply", "-f", "tests/fixtures/cluster.yaml"]);
    assert_eq!(applied.lines().count(), 14, "{applied}");
    assert_eq!(
        cluster.keys("/tabby/v1/ippools/"),
        [
            "/tabby/v1/ippools/default-ipv4-ippool",
            "/tabby/v1/ippools/rack-a",
            "/tabby/v1/ippools/v6"
        ]
    );
    let wide = cluster.ok(&["get", "ippools", "-o", "wide"]);
    let golden = std::fs::read_to_string("tests/golden/get-ippools-wide.txt").unwrap();
    assert_eq!(wide, golden);
    let nodes = cluster.ok(&["get", "nodes"]);
    assert_eq!(
        nodes,
        std::fs::read_to_string("tests/golden/get-nodes-table.txt").unwrap()
    );
    let again = cluster.ok(&["apply", "-f", "tests/fixtures/cluster.yaml"]);
    assert!(again.lines().all(|l| l.ends_with(" unchanged")), "{again}");
}

#[test]
fn etcd_sees_nothing_of_a_file_with_one_bad_document() {
    let cluster = Cluster::start("etcd_sees_nothing_of_a_bad_file");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pools.yaml");
    std::fs::write(
        &path,
        "apiVersion: tabby.dev/v1\nkind: IPPool\nmetadata: {name: a}\nspec: {cidr: 10.1.0.0/16}\n\
         ---\napiVersion: tabby.dev/v1\nkind: IPPool\nmetadata: {name: b}\nspec: {cidr: 10.2.0.0/16, natOutgoin: true}\n",
    )
    .unwrap();
    let output = cluster.calicoctl(&["create", "-f", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("did you mean `natOutgoing`?"), "{stderr}");
    assert!(cluster.keys("/tabby/v1/").is_empty());
}

#[test]
fn etcd_is_chosen_by_environment_and_by_a_calicoctl_config_file() {
    let cluster = Cluster::start("etcd_is_chosen_by_environment_and_file");
    let endpoint = cluster.etcd.endpoint();
    let pool = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: from-calico}\n\
                spec: {cidr: 10.5.0.0/16, ipipMode: Always, natOutgoing: true}\n";
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("pool.yaml");
    std::fs::write(&manifest, pool).unwrap();
    let by_env = Command::new(env!("CARGO_BIN_EXE_calicoctl-rs"))
        .args(["apply", "-f", manifest.to_str().unwrap()])
        .env("TABBY_ETCD_ENDPOINTS", &endpoint)
        .output()
        .unwrap();
    assert_eq!(by_env.status.code(), Some(0), "{by_env:?}");

    let config = dir.path().join("calicoctl.cfg");
    std::fs::write(
        &config,
        format!(
            "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata:\nspec:\n  \
             datastoreType: etcdv3\n  etcdEndpoints: {endpoint}\n"
        ),
    )
    .unwrap();
    let by_file = Command::new(env!("CARGO_BIN_EXE_calicoctl-rs"))
        .args([
            "-c",
            config.to_str().unwrap(),
            "get",
            "ippool",
            "from-calico",
            "-o",
            "wide",
        ])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&by_file.stdout);
    assert_eq!(by_file.status.code(), Some(0), "{by_file:?}");
    assert!(
        table.contains("from-calico   10.5.0.0/16   true   Always"),
        "{table}"
    );
}

#[test]
fn etcd_changes_made_by_patch_and_label_are_compare_and_swap_writes() {
    let cluster = Cluster::start("etcd_changes_by_patch_and_label");
    cluster.ok(&["apply", "-f", "tests/fixtures/cluster.yaml"]);
    let before: serde_json::Value =
        serde_json::from_str(&cluster.ok(&["get", "ippool", "v6", "-o", "json"])).unwrap();
    cluster.ok(&[
        "patch",
        "ippool",
        "v6",
        "-p",
        r#"{"spec":{"disabled":false}}"#,
    ]);
    cluster.ok(&["label", "ippool", "v6", "family=ipv6"]);
    let after: serde_json::Value =
        serde_json::from_str(&cluster.ok(&["get", "ippool", "v6", "-o", "json"])).unwrap();
    assert_eq!(after["spec"]["disabled"], false);
    assert_eq!(after["metadata"]["labels"]["family"], "ipv6");
    let revision = |v: &serde_json::Value| {
        v["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert!(revision(&after) > revision(&before));

    // A replace at the revision read before the changes is refused.
    let stale = cluster.ok(&["get", "ippool", "v6", "-o", "yaml"]).replace(
        &format!("resourceVersion: '{}'", revision(&after)),
        &format!("resourceVersion: '{}'", revision(&before)),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v6.yaml");
    std::fs::write(&path, stale).unwrap();
    let output = cluster.calicoctl(&["replace", "-f", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("changed since resourceVersion"), "{stderr}");

    cluster.ok(&["delete", "ippool", "v6"]);
    assert_eq!(cluster.keys("/tabby/v1/ippools/").len(), 2);
}

#[test]
fn calico_yaml_the_corpus_applied_to_etcd_reads_back_as_on_every_datastore() {
    let cluster = Cluster::start("calico_yaml_corpus_on_etcd");
    let applied = cluster.calicoctl(&["apply", "-f", support::CALICO_CORPUS]);
    let golden = |name: &str| std::fs::read_to_string(format!("tests/golden/{name}")).unwrap();
    assert_eq!(stdout_of(applied), golden("apply-calico-corpus.txt"));
    for kind in support::CORPUS_KINDS {
        let yaml = cluster.ok(&["get", kind, "-o", "yaml"]);
        assert_eq!(
            support::without_revisions(&yaml),
            golden(&format!("apply-calico-get-{kind}.yaml")),
            "{kind}"
        );
    }
    let keys = cluster.keys("/tabby/v1/");
    let refused = cluster.calicoctl(&["apply", "-f", support::CALICO_REFUSED]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.ends_with("problems in the files (above): nothing was done\n"),
        "{stderr}"
    );
    assert_eq!(
        cluster.keys("/tabby/v1/"),
        keys,
        "the refused file wrote nothing"
    );
}
