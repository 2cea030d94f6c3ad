use std::collections::BTreeMap;

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

fn usage_error(result: Result<Target, CliError>) -> String {
    match result {
        Err(CliError::Usage(message)) => message,
        other => panic!("expected a usage error, got {other:?}"),
    }
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
    let Target::Etcd(etcd) = resolve(&args, &env(&[])).unwrap() else {
        panic!("not etcd");
    };
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
        etcd_endpoints: vec!["https://etcd.example:2379".into()],
        ..DatastoreArgs::default()
    };
    let environment = env(&[("TABBY_ETCD_PASSWORD", "from-env")]);
    let Target::Etcd(etcd) = resolve(&args, &environment).unwrap() else {
        panic!("not etcd");
    };
    assert_eq!(etcd.endpoints, ["https://etcd.example:2379"]);
    assert_eq!(etcd.password.as_deref(), Some("from-env"));
}

#[test]
fn without_any_setting_the_kubernetes_datastore_uses_kubeconfig_then_home() {
    let args = DatastoreArgs::default();
    let from_env = resolve(&args, &env(&[("KUBECONFIG", "/a/config:/b/config")])).unwrap();
    assert_eq!(
        from_env,
        Target::Kubernetes(KubernetesTarget {
            kubeconfig: Kubeconfigs::Search(vec!["/a/config".into(), "/b/config".into()]),
            context: None,
        })
    );
    let from_home = resolve(&args, &env(&[("HOME", "/home/op")])).unwrap();
    let Target::Kubernetes(kube) = from_home else {
        panic!("not kubernetes");
    };
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
    let target = resolve(&args, &env(&[("KUBECONFIG", "/tmp/other")])).unwrap();
    assert_eq!(
        target,
        Target::Kubernetes(KubernetesTarget {
            kubeconfig: Kubeconfigs::Named("/etc/tabby/admin.conf".into()),
            context: Some("prod".into()),
        })
    );
}

#[test]
fn etcd_endpoints_alone_select_etcd() {
    let args = DatastoreArgs {
        etcd_endpoints: vec!["http://127.0.0.1:23790".into()],
        ..DatastoreArgs::default()
    };
    assert!(matches!(resolve(&args, &env(&[])), Ok(Target::Etcd(_))));
    let default_endpoint = DatastoreArgs {
        datastore: Some(DatastoreType::Etcd),
        ..DatastoreArgs::default()
    };
    let Ok(Target::Etcd(etcd)) = resolve(&default_endpoint, &env(&[])) else {
        panic!("not etcd");
    };
    assert_eq!(etcd.endpoints, [DEFAULT_ETCD_ENDPOINT]);
}

#[test]
fn flags_for_the_other_datastore_are_usage_errors() {
    let args = DatastoreArgs {
        datastore: Some(DatastoreType::Kubernetes),
        etcd_endpoints: vec!["http://127.0.0.1:2379".into()],
        ..DatastoreArgs::default()
    };
    assert_eq!(
        usage_error(resolve(&args, &env(&[]))),
        "--etcd-endpoints applies to the etcd datastore, but the kubernetes datastore is \
         selected: add --datastore etcd"
    );
    let args = DatastoreArgs {
        datastore: Some(DatastoreType::Etcd),
        context: Some("prod".into()),
        ..DatastoreArgs::default()
    };
    assert!(usage_error(resolve(&args, &env(&[]))).starts_with("--kubeconfig and --context"));
}

#[test]
fn bad_endpoints_and_half_a_client_certificate_are_refused() {
    let args = DatastoreArgs {
        etcd_endpoints: vec!["10.0.0.1:2379".into()],
        ..DatastoreArgs::default()
    };
    assert_eq!(
        usage_error(resolve(&args, &env(&[]))),
        "etcd endpoint \"10.0.0.1:2379\" is not a URL like http://10.0.0.1:2379"
    );
    let args = DatastoreArgs {
        datastore: Some(DatastoreType::Etcd),
        etcd_cert_file: Some("/etc/tabby/etcd.crt".into()),
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
         datastoreType: kubernetes\n  k8sAPIEndpoint: https://10.0.0.1:6443\n",
    );
    let args = DatastoreArgs {
        config: Some(file.path().to_owned()),
        ..DatastoreArgs::default()
    };
    let message = usage_error(resolve(&args, &env(&[])));
    assert!(
        message.ends_with(
            "spec.k8sAPIEndpoint is not supported: describe the API server in a kubeconfig \
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
