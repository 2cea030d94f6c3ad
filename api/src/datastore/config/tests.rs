use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn etcd_settings() -> Settings {
    Settings {
        datastore_type: setting(DatastoreType::Etcd, "--datastore-type"),
        ..Settings::default()
    }
}

fn etcd(settings: Settings) -> EtcdConfig {
    match settings.resolve(&no_env) {
        Ok(DatastoreConfig::Etcd(etcd)) => etcd,
        other => panic!("not etcd: {other:?}"),
    }
}

#[test]
fn etcd_without_endpoints_uses_calicos_default_and_tabbys_prefix() {
    let config = etcd(etcd_settings());
    assert_eq!(config.endpoints, [DEFAULT_ETCD_ENDPOINT]);
    assert_eq!(config.prefix, ETCD_DEFAULT_PREFIX);
    let endpoints_alone = Settings {
        etcd_endpoints: setting(vec!["http://10.0.0.1:2379".into()], "etcd_endpoints"),
        etcd_prefix: setting("/lab/v1/".into(), "etcd_prefix"),
        ..Settings::default()
    };
    let config = etcd(endpoints_alone);
    assert_eq!(config.endpoints, ["http://10.0.0.1:2379"]);
    assert_eq!(config.prefix, "/lab/v1");
}

#[test]
fn an_explicit_setting_for_the_other_datastore_is_an_error_naming_it_but_calicos_are_not() {
    let explicit = Settings {
        datastore_type: setting(DatastoreType::Kubernetes, "datastore_type"),
        etcd_cert_file: setting("/etc/etcd.crt".into(), "etcd_cert_file"),
        ..Settings::default()
    };
    assert_eq!(
        explicit.resolve(&no_env).unwrap_err(),
        "etcd_cert_file applies to the etcd datastore, but the kubernetes datastore is \
         selected: set the datastore type to etcdv3"
    );
    let calico = Settings::calico_env(&|name| {
        (name == "ETCD_CERT_FILE").then(|| "/etc/etcd.crt".to_owned())
    })
    .unwrap();
    let kubernetes = Settings {
        datastore_type: setting(DatastoreType::Kubernetes, "datastore_type"),
        ..Settings::default()
    };
    assert!(kubernetes.or(calico).resolve(&no_env).is_ok());
    let mut on_etcd = etcd_settings();
    on_etcd.kubeconfig = setting("/kc".into(), "--kubeconfig");
    assert!(
        on_etcd
            .resolve(&no_env)
            .unwrap_err()
            .starts_with("--kubeconfig applies")
    );
}

#[test]
fn tls_and_credentials_are_checked_before_anything_is_dialled() {
    let https = |edit: &dyn Fn(&mut Settings)| {
        let mut settings = etcd_settings();
        settings.etcd_endpoints = setting(vec!["https://10.0.0.1:2379".into()], "ETCD_EP");
        settings.etcd_ca_cert_file = setting("/ca.pem".into(), "CA");
        edit(&mut settings);
        settings.resolve(&no_env)
    };
    assert!(https(&|_| {}).is_ok());
    let errors = [
        (
            https(&|s| s.etcd_ca_cert_file = None).unwrap_err(),
            "need the CA",
        ),
        (
            https(&|s| s.etcd_cert_file = setting("/c.pem".into(), "CERT")).unwrap_err(),
            "CERT needs its key",
        ),
        (
            https(&|s| {
                s.etcd_endpoints = setting(
                    vec!["https://a:2379".into(), "http://b:2379".into()],
                    "ETCD_EP",
                )
            })
            .unwrap_err(),
            "ETCD_EP mixes http:// and https://",
        ),
        (
            https(&|s| s.etcd_endpoints = setting(vec!["http://a:2379".into()], "EP")).unwrap_err(),
            "CA is given but the etcd endpoints are http://",
        ),
        (
            https(&|s| s.etcd_username = setting("tabby".into(), "USER")).unwrap_err(),
            "USER needs a password",
        ),
        (
            https(&|s| s.etcd_endpoints = setting(vec!["10.0.0.1:2379".into()], "EP")).unwrap_err(),
            "EP: \"10.0.0.1:2379\" is not a URL",
        ),
        (
            https(&|s| s.etcd_prefix = setting("tabby".into(), "PREFIX")).unwrap_err(),
            "PREFIX \"tabby\" does not start with '/'",
        ),
    ];
    for (error, expected) in errors {
        assert!(error.contains(expected), "{error:?} lacks {expected:?}");
    }
}

#[test]
fn the_kubernetes_search_is_kubeconfigs_list_else_home() {
    let resolve = |vars: &'static [(&'static str, &'static str)]| {
        let env = move |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        };
        match Settings::default().resolve(&env) {
            Ok(DatastoreConfig::Kubernetes(kube)) => kube.kubeconfig,
            other => panic!("not kubernetes: {other:?}"),
        }
    };
    assert_eq!(
        resolve(&[("KUBECONFIG", "/a/config:/b/config"), ("HOME", "/h")]),
        Kubeconfigs::Search(vec!["/a/config".into(), "/b/config".into()])
    );
    assert_eq!(
        resolve(&[("HOME", "/home/op")]),
        Kubeconfigs::Search(vec!["/home/op/.kube/config".into()])
    );
}
