use api::datastore::config::{EtcdConfig, Kubeconfigs, KubernetesConfig};
use serde_json::json;

use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn etcd(conf: &NetConf) -> EtcdConfig {
    match conf.datastore_config() {
        Ok(DatastoreConfig::Etcd(etcd)) => etcd,
        other => panic!("not etcd: {other:?}"),
    }
}

fn kubernetes(conf: &NetConf) -> KubernetesConfig {
    match conf.datastore_config() {
        Ok(DatastoreConfig::Kubernetes(kube)) => kube,
        other => panic!("not kubernetes: {other:?}"),
    }
}

/// A network config as containerd passes it to the plugin, after it has
/// merged `runtimeConfig` and (for CHECK) `prevResult` in.
fn containerd_check() -> Value {
    json!({
        "cniVersion": "1.0.0",
        "name": "k8s-pod-network",
        "type": "tabby-cni",
        "mtu": 1440,
        "ipam": {"type": "tabby-ipam", "assign_ipv4": "true"},
        "runtimeConfig": {"portMappings": [], "bandwidth": {}},
        "args": {"cni": {"labels": []}},
        "prevResult": {
            "cniVersion": "1.0.0",
            "interfaces": [{"name": "cali8ce18e28dcb", "mac": "ee:ee:ee:ee:ee:ee"}],
            "ips": [{"address": "10.244.0.5/32", "interface": 1}]
        }
    })
}

fn parse(value: &Value) -> Result<NetConf, CniError> {
    NetConf::parse(value.to_string().as_bytes())
}

#[test]
fn a_containerd_config_parses_with_its_extra_keys() {
    let conf = parse(&containerd_check()).unwrap();
    assert_eq!(conf.ipam_plugin, "tabby-ipam");
    assert_eq!(conf.mtu().unwrap(), Some(1440));
    assert_eq!(
        conf.prev_result().unwrap().ips[0].address.to_string(),
        "10.244.0.5/32"
    );
}

/// The network configuration example of the CNI spec 1.0.0 (SPEC.md,
/// "Example configuration"), one plugin of the list.
#[test]
fn the_specs_example_config_parses() {
    let conf = parse(&json!({
        "cniVersion": "1.0.0",
        "name": "dbnet",
        "type": "bridge",
        "bridge": "cni0",
        "keyA": ["some more", "plugin specific", "configuration"],
        "ipam": {"type": "host-local", "subnet": "10.1.0.0/16", "gateway": "10.1.0.1"},
        "dns": {"nameservers": ["10.1.0.1"]}
    }))
    .unwrap();
    assert_eq!(conf.ipam_plugin, "host-local");
    assert_eq!(conf.mtu, None);
    assert!(!conf.has_datastore());
    assert_eq!(conf.prev_result, None);
}

#[test]
fn older_spec_versions_runtimes_still_send_are_accepted() {
    for version in ["0.3.1", "0.4.0"] {
        let mut value = containerd_check();
        value["cniVersion"] = json!(version);
        assert_eq!(parse(&value).unwrap().cni_version, version);
    }
}

#[test]
fn mistakes_name_the_field_and_the_fix() {
    let cases = [
        (
            "cniVersion",
            json!("0.2.0"),
            1,
            "0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0",
        ),
        ("mtu", json!(70000), 7, "mtu: 70000 is outside"),
        ("ipam", json!({"type": "../evil"}), 7, "ipam.type"),
        (
            "ipam",
            Value::Null,
            7,
            "\"ipam\": {\"type\": \"tabby-ipam\"}",
        ),
        ("mtu", json!("1500"), 7, "invalid type"),
    ];
    for (key, value, code, needle) in cases {
        let mut conf = containerd_check();
        conf[key] = value;
        let error = parse(&conf).unwrap_err();
        assert_eq!(error.code(), code, "{error}");
        assert!(error.to_string().contains(needle), "{error}");
    }
}

#[test]
fn calicos_datastore_keys_configure_etcd_and_the_node() {
    let mut conf = containerd_check();
    conf["datastore_type"] = json!("etcdv3");
    conf["etcd_endpoints"] = json!("https://10.0.1.1:2379, https://10.0.1.2:2379");
    conf["etcd_ca_cert_file"] = json!("/etc/tabby/etcd-ca.pem");
    conf["etcd_cert_file"] = json!("/etc/tabby/etcd.pem");
    conf["etcd_key_file"] = json!("/etc/tabby/etcd-key.pem");
    conf["etcd_username"] = json!("tabby");
    conf["etcd_password"] = json!("secret");
    conf["nodename"] = json!("n1");
    let parsed = parse(&conf).unwrap();
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    let etcd = etcd(&parsed);
    assert_eq!(
        etcd.endpoints,
        ["https://10.0.1.1:2379", "https://10.0.1.2:2379"]
    );
    assert_eq!(etcd.key_file, Some("/etc/tabby/etcd-key.pem".into()));
    assert_eq!(etcd.username.as_deref(), Some("tabby"));
    assert_eq!(etcd.password.as_deref(), Some("secret"));
    assert_eq!(parsed.node(&no_env).unwrap(), "n1");
}

#[test]
fn the_ipam_sections_datastore_keys_serve_when_the_top_level_has_none() {
    let mut conf = containerd_check();
    conf["ipam"] = json!({
        "type": "tabby-ipam",
        "datastore_type": "etcdv3",
        "etcd_endpoints": "http://10.0.1.1:2379",
        "etcd_prefix": "/lab/v1",
        "nodename": "n2",
    });
    let parsed = parse(&conf).unwrap();
    let etcd = etcd(&parsed);
    assert_eq!(etcd.endpoints, ["http://10.0.1.1:2379"]);
    assert_eq!(etcd.prefix, "/lab/v1");
    assert_eq!(parsed.node(&no_env).unwrap(), "n2");
    assert_eq!(
        parsed.warnings,
        [
            "ipam.datastore_type is deprecated: use datastore_type at the top level of the \
             plugin's config",
            "ipam.etcd_endpoints is deprecated: use etcd_endpoints at the top level of the \
             plugin's config",
            "ipam.etcd_prefix is deprecated: use etcd_prefix at the top level of the plugin's \
             config",
            "ipam.nodename is deprecated: use nodename at the top level of the plugin's config",
        ]
    );
}

#[test]
fn the_kubernetes_datastore_takes_the_ipam_sections_kubeconfig() {
    let mut conf = containerd_check();
    conf["ipam"] = json!({
        "type": "tabby-ipam",
        "datastore_type": "kubernetes",
        "kubeconfig": "/etc/cni/net.d/tabby/kubeconfig",
        "nodename": "n3",
    });
    let parsed = parse(&conf).unwrap();
    assert_eq!(
        kubernetes(&parsed),
        KubernetesConfig {
            kubeconfig: Kubeconfigs::Named("/etc/cni/net.d/tabby/kubeconfig".into()),
            context: None,
            api_endpoint: None,
        }
    );
    conf["datastore_type"] = json!("consul");
    let error = parse(&conf).unwrap_err();
    assert!(error.to_string().contains("\"kubernetes\""), "{error}");
}

#[test]
fn calicos_kubernetes_object_names_the_kubeconfig_and_the_api_root() {
    let mut conf = containerd_check();
    conf["datastore_type"] = json!("kubernetes");
    conf["kubernetes"] = json!({
        "kubeconfig": "/etc/cni/net.d/calico-kubeconfig",
        "k8s_api_root": "https://10.96.0.1:443",
    });
    let parsed = parse(&conf).unwrap();
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    let kube = kubernetes(&parsed);
    assert_eq!(
        kube.kubeconfig,
        Kubeconfigs::Named("/etc/cni/net.d/calico-kubeconfig".into())
    );
    assert_eq!(kube.api_endpoint.as_deref(), Some("https://10.96.0.1:443"));
    // An etcd key beside the kubernetes datastore was meant for something.
    conf["etcd_endpoints"] = json!("http://10.0.0.1:2379");
    let error = parse(&conf).unwrap().datastore_config().unwrap_err();
    assert_eq!(error.code(), 7);
    assert!(
        error
            .to_string()
            .contains("etcd_endpoints applies to the etcd datastore"),
        "{error}"
    );
}

#[test]
fn the_node_name_and_mtu_come_from_the_agents_files_when_not_given() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("nodename"), "n7\n").unwrap();
    std::fs::write(dir.path().join("mtu"), "1450\n").unwrap();
    let mut conf = containerd_check();
    conf.as_object_mut().unwrap().remove("mtu");
    conf["datastore_type"] = json!("etcdv3");
    conf["etcd_endpoints"] = json!("http://10.0.1.1:2379");
    conf["nodename_file"] = json!(dir.path().join("nodename"));
    conf["mtu_file"] = json!(dir.path().join("mtu"));
    let parsed = parse(&conf).unwrap();
    assert_eq!(parsed.node(&no_env).unwrap(), "n7");
    assert_eq!(parsed.mtu().unwrap(), Some(1450));
    conf["nodename_file"] = json!("/nonexistent/nodename");
    let error = parse(&conf).unwrap().node(&no_env).unwrap_err();
    assert!(
        error.to_string().contains("is tabby-agent running"),
        "{error}"
    );
}

#[test]
fn broken_json_is_a_decode_error() {
    assert_eq!(NetConf::parse(b"{\"cniVersion\":").unwrap_err().code(), 6);
}

#[test]
fn check_without_prev_result_says_what_is_missing() {
    let mut conf = containerd_check();
    conf.as_object_mut().unwrap().remove("prevResult");
    let error = parse(&conf).unwrap().prev_result().unwrap_err();
    assert!(
        error.to_string().contains("prevResult: is missing"),
        "{error}"
    );
}
