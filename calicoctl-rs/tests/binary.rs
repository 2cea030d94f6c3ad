//! The `calicoctl-rs` binary as a shell runs it: exit codes, help, environment and
//! configuration handling, and one-line errors.

use std::process::{Command, Output};

fn calicoctl(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_calicoctl-rs"));
    command.args(args);
    // Only what the test sets: the developer's own TABBY_* or KUBECONFIG must not leak in.
    for (name, _) in std::env::vars() {
        if name.starts_with("TABBY_") || name == "KUBECONFIG" {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().copied());
    command.output().expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_shows_examples_and_exit_codes_and_exits_zero() {
    let output = calicoctl(&["--help"], &[]);
    assert_eq!(output.status.code(), Some(0));
    let help = text(&output.stdout);
    for expected in [
        "Examples:",
        "Exit codes: 0 done",
        "--etcd-endpoints",
        "convert",
    ] {
        assert!(help.contains(expected), "{expected} missing from:\n{help}");
    }
    let get = text(&calicoctl(&["get", "--help"], &[]).stdout);
    assert!(get.contains("calicoctl-rs get bgppeers -l"), "{get}");
}

#[test]
fn a_wrong_command_line_exits_two() {
    for args in [
        &[][..],
        &["frobnicate"],
        &["get"],
        &["get", "ippols"],
        &["get", "ippools", "-o", "xml"],
    ] {
        let output = calicoctl(args, &[]);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&output.stderr)
        );
    }
    let from_env = calicoctl(&["get", "ippools"], &[("TABBY_DATASTORE_TYPE", "consul")]);
    assert_eq!(from_env.status.code(), Some(2));
    assert!(text(&from_env.stderr).contains("invalid value 'consul'"));
}

#[test]
fn a_missing_config_file_is_a_usage_error_naming_it() {
    let output = calicoctl(&["-c", "/nonexistent/tabby.yaml", "get", "ippools"], &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: config file /nonexistent/tabby.yaml: cannot read it"),
        "{stderr}"
    );
    let from_env = calicoctl(
        &["get", "ippools"],
        &[("TABBY_CONFIG", "/nonexistent/env.yaml")],
    );
    assert!(text(&from_env.stderr).contains("/nonexistent/env.yaml"));
}

#[test]
fn an_unreachable_datastore_is_one_line_and_exit_one() {
    let args = ["get", "ippools", "--etcd-endpoints", "http://127.0.0.1:9"];
    let output = calicoctl(&args, &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
}

#[test]
fn convert_needs_no_datastore_and_matches_the_golden_output() {
    let output = calicoctl(&["convert", "-f", "tests/fixtures/calico-v3.yaml"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let golden = std::fs::read_to_string("tests/golden/convert-calico-v3.yaml").unwrap();
    assert_eq!(text(&output.stdout), golden);
}

#[test]
fn a_bad_file_fails_before_any_connection_with_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pool.yaml");
    std::fs::write(
        &path,
        "apiVersion: tabby.dev/v1\nkind: IPPool\nmetadata: {name: p}\nspec:\n  cidr: 10.0.0.0/16\n  ipipMode: Sometimes\n",
    )
    .unwrap();
    let output = calicoctl(&["apply", "-f", path.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("IPPool \"p\": spec.ipipMode: unknown variant `Sometimes`, expected one of `Always`, `CrossSubnet`, `Never` at line 6 column 13"),
        "{stderr}"
    );
}

#[test]
fn completion_scripts_come_from_the_binary() {
    let output = calicoctl(&["completion", "bash"], &[]);
    assert_eq!(output.status.code(), Some(0));
    assert!(text(&output.stdout).contains("complete -F _calicoctl__rs"));
}

#[test]
fn etcd_tls_files_with_http_endpoints_or_mixed_schemes_are_usage_errors() {
    let cases = [
        (
            &[
                "--etcd-endpoints",
                "http://127.0.0.1:9",
                "--etcd-cacert",
                "ca.crt",
            ][..],
            "error: --etcd-ca-cert-file (TABBY_ETCD_CA_CERT_FILE) is given but the etcd \
             endpoints are http://: use https:// endpoints",
        ),
        (
            &["--etcd-endpoints", "https://127.0.0.1:9,http://127.0.0.1:8"],
            "error: --etcd-endpoints (TABBY_ETCD_ENDPOINTS) mixes http:// and https:// \
             endpoints: use one scheme",
        ),
        (
            &[
                "--etcd-endpoints",
                "https://127.0.0.1:9",
                "--etcd-cacert",
                "/nonexistent/ca",
            ],
            "error: etcd CA certificate /nonexistent/ca: No such file or directory (os error 2)",
        ),
        (
            &[
                "--etcd-endpoints",
                "https://127.0.0.1:9",
                "--etcd-cert",
                "c.crt",
            ],
            "error: --etcd-cert-file (TABBY_ETCD_CERT_FILE) needs its key: give the client key \
             too",
        ),
    ];
    for (flags, expected) in cases {
        let output = calicoctl(&[flags, &["get", "ippools"]].concat(), &[]);
        assert_eq!(output.status.code(), Some(2), "{flags:?}");
        assert_eq!(text(&output.stderr), format!("{expected}\n"), "{flags:?}");
    }
}

#[test]
fn version_prints_calicoctls_lines_without_connecting() {
    // Nothing listens on port 1: `version` must not need the datastore.
    let output = calicoctl(
        &["version"],
        &[
            ("DATASTORE_TYPE", "etcdv3"),
            ("ETCD_ENDPOINTS", "http://127.0.0.1:1"),
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        format!(
            "Client Version:    v{}\nCluster Version:   n/a (tabby keeps no ClusterInformation)\n\
             Cluster Type:      tabby,bgp,etcdv3\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}
