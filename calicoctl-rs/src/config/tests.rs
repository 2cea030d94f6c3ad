use std::collections::BTreeMap;

use api::datastore::config::{DEFAULT_ETCD_ENDPOINT, EtcdConfig, Kubeconfigs, KubernetesConfig};

use super::*;

/// A fake environment: only the variables given exist.
fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| vars.get(name).cloned()
}

fn config_file(text: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), text).unwrap();
    file
}

fn usage_error(result: Result<(DatastoreConfig, Vec<String>), CliError>) -> String {
    match result {
        Err(CliError::Usage(message)) => message,
        other => panic!("expected a usage error, got {other:?}"),
    }
}

fn etcd(result: Result<(DatastoreConfig, Vec<String>), CliError>) -> EtcdConfig {
    match result {
        Ok((DatastoreConfig::Etcd(etcd), _)) => etcd,
        other => panic!("not etcd: {other:?}"),
    }
}

fn kubernetes(result: Result<(DatastoreConfig, Vec<String>), CliError>) -> KubernetesConfig {
    match result {
        Ok((DatastoreConfig::Kubernetes(kube), _)) => kube,
        other => panic!("not kubernetes: {other:?}"),
    }
}

/// The flags as clap gives them for `args`.
fn flags(args: &[&str]) -> api::datastore::args::DatastoreArgs {
    <crate::Cli as clap::Parser>::try_parse_from(
        ["calicoctl-rs"].iter().chain(args).chain(&["get", "nodes"]),
    )
    .unwrap()
    .datastore
    .datastore
}

const CALICO_ETCD: &str = "apiVersion: projectcalico.org/v3
kind: CalicoAPIConfig
metadata:
spec:
  datastoreType: etcdv3
  etcdEndpoints: http://10.0.0.1:2379, http://10.0.0.2:2379
  etcdUsername: root
  etcdPassword: from-file
";

#[test]
fn a_calicoctl_config_file_selects_etcd_and_its_endpoints() {
    let file = config_file(CALICO_ETCD);
    let args = DatastoreArgs {
        config: Some(file.path().to_owned()),
        ..DatastoreArgs::default()
    };
    let etcd = etcd(resolve(&args, &env(&[])));
    assert_eq!(
        etcd.endpoints,
        ["http://10.0.0.1:2379", "http://10.0.0.2:2379"]
    );
    assert_eq!(etcd.username.as_deref(), Some("root"));
    assert_eq!(etcd.password.as_deref(), Some("from-file"));
}

#[test]
fn flags_and_the_password_variable_beat_the_file() {
    let file = config_file(CALICO_ETCD);
    let args = DatastoreArgs {
        config: Some(file.path().to_owned()),
        datastore: flags(&["--etcd-endpoints", "http://etcd.example:2379"]),
    };
    let environment = env(&[("TABBY_ETCD_PASSWORD", "from-env")]);
    let etcd = etcd(resolve(&args, &environment));
    assert_eq!(etcd.endpoints, ["http://etcd.example:2379"]);
    assert_eq!(etcd.password.as_deref(), Some("from-env"));
}

#[test]
fn without_any_setting_the_kubernetes_datastore_uses_kubeconfig_then_home() {
    let args = DatastoreArgs::default();
    let from_env = kubernetes(resolve(
        &args,
        &env(&[("KUBECONFIG", "/a/config:/b/config")]),
    ));
    assert_eq!(
        from_env,
        KubernetesConfig {
            kubeconfig: Kubeconfigs::Search(vec!["/a/config".into(), "/b/config".into()]),
            context: None,
            api_endpoint: None,
        }
    );
    let kube = kubernetes(resolve(&args, &env(&[("HOME", "/home/op")])));
    assert_eq!(
        kube.kubeconfig,
        Kubeconfigs::Search(vec![PathBuf::from("/home/op/.kube/config")])
    );
}

#[test]
fn the_config_file_kubeconfig_beats_the_generic_variable() {
    let file = config_file(
        "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nspec:\n  \
         datastoreType: kubernetes\n  kubeconfig: /etc/tabby/admin.conf\n  context: prod\n",
    );
    let args = DatastoreArgs {
        config: Some(file.path().to_owned()),
        ..DatastoreArgs::default()
    };
    let target = kubernetes(resolve(&args, &env(&[("KUBECONFIG", "/tmp/other")])));
    assert_eq!(
        target,
        KubernetesConfig {
            kubeconfig: Kubeconfigs::Named("/etc/tabby/admin.conf".into()),
            context: Some("prod".into()),
            api_endpoint: None,
        }
    );
}

#[test]
fn etcd_endpoints_alone_select_etcd() {
    let args = DatastoreArgs {
        datastore: flags(&["--etcd-endpoints", "http://127.0.0.1:23790"]),
        ..DatastoreArgs::default()
    };
    assert_eq!(
        etcd(resolve(&args, &env(&[]))).endpoints,
        ["http://127.0.0.1:23790"]
    );
    let default_endpoint = DatastoreArgs {
        datastore: flags(&["--datastore-type", "etcdv3"]),
        ..DatastoreArgs::default()
    };
    let etcd = etcd(resolve(&default_endpoint, &env(&[])));
    assert_eq!(etcd.endpoints, [DEFAULT_ETCD_ENDPOINT]);
}

#[test]
fn flags_for_the_other_datastore_are_usage_errors() {
    let args = DatastoreArgs {
        datastore: flags(&[
            "--datastore-type",
            "kubernetes",
            "--etcd-endpoints",
            "http://127.0.0.1:2379",
        ]),
        ..DatastoreArgs::default()
    };
    assert_eq!(
        usage_error(resolve(&args, &env(&[]))),
        "--etcd-endpoints (TABBY_ETCD_ENDPOINTS) applies to the etcd datastore, but the \
         kubernetes datastore is selected: set the datastore type to etcdv3"
    );
    let args = DatastoreArgs {
        datastore: flags(&["--datastore-type", "etcdv3", "--context", "prod"]),
        ..DatastoreArgs::default()
    };
    assert!(usage_error(resolve(&args, &env(&[]))).starts_with("--context (TABBY_CONTEXT)"));
}

#[test]
fn bad_endpoints_and_half_a_client_certificate_are_refused() {
    let args = DatastoreArgs {
        datastore: flags(&["--etcd-endpoints", "10.0.0.1:2379"]),
        ..DatastoreArgs::default()
    };
    assert_eq!(
        usage_error(resolve(&args, &env(&[]))),
        "--etcd-endpoints (TABBY_ETCD_ENDPOINTS): \"10.0.0.1:2379\" is not a URL like \
         http://10.0.0.1:2379"
    );
    let args = DatastoreArgs {
        datastore: flags(&[
            "--datastore-type",
            "etcdv3",
            "--etcd-cert-file",
            "/etc/tabby/etcd.crt",
        ]),
        ..DatastoreArgs::default()
    };
    assert!(usage_error(resolve(&args, &env(&[]))).contains("needs its key"));
}

#[test]
fn a_missing_or_foreign_config_file_is_named_in_the_error() {
    let args = DatastoreArgs {
        config: Some("/nonexistent/calicoctl.yaml".into()),
        ..DatastoreArgs::default()
    };
    let message = usage_error(resolve(&args, &env(&[])));
    assert!(
        message.starts_with("config file /nonexistent/calicoctl.yaml: cannot read it"),
        "{message}"
    );

    let file = config_file(
        "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nspec:\n  \
         datastoreType: kubernetes\n  k8sAPIToken: secret\n",
    );
    let args = DatastoreArgs {
        config: Some(file.path().to_owned()),
        ..DatastoreArgs::default()
    };
    let message = usage_error(resolve(&args, &env(&[])));
    assert!(
        message.ends_with(
            "spec.k8sAPIToken is not supported: describe the API server in a kubeconfig \
             and set spec.kubeconfig (and spec.context)"
        ),
        "{message}"
    );

    let file = config_file("apiVersion: v1\nkind: Config\n");
    let args = DatastoreArgs {
        config: Some(file.path().to_owned()),
        ..DatastoreArgs::default()
    };
    let message = usage_error(resolve(&args, &env(&[])));
    assert!(message.contains("kind CalicoAPIConfig"), "{message}");
}

#[test]
fn calicos_variables_rank_below_the_file_and_old_flag_names_warn() {
    let file = config_file(CALICO_ETCD);
    let calico = env(&[
        ("ETCD_ENDPOINTS", "http://10.9.9.9:2379"),
        ("ETCD_USERNAME", "calico"),
    ]);
    let args = DatastoreArgs {
        config: Some(file.path().to_owned()),
        ..DatastoreArgs::default()
    };
    let from_file = etcd(resolve(&args, &calico));
    assert_eq!(from_file.endpoints[0], "http://10.0.0.1:2379");
    assert_eq!(from_file.username.as_deref(), Some("root"));
    let without_file = DatastoreArgs::default();
    let from_env = etcd(resolve(
        &without_file,
        &env(&[
            ("DATASTORE_TYPE", "etcdv3"),
            ("ETCD_ENDPOINTS", "http://10.9.9.9:2379"),
        ]),
    ));
    assert_eq!(from_env.endpoints, ["http://10.9.9.9:2379"]);
    let old = DatastoreArgs {
        datastore: flags(&["--datastore", "etcd"]),
        ..DatastoreArgs::default()
    };
    let (_, warnings) = resolve(&old, &env(&[])).unwrap();
    assert_eq!(
        warnings,
        [
            "--datastore (TABBY_DATASTORE) is deprecated: use --datastore-type (TABBY_DATASTORE_TYPE)"
        ]
    );
}
