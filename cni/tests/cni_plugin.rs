//! tabby-cni run exactly as a container runtime runs it (environment, config on
//! stdin, result on stdout) on a lab node, with Debian's `host-local` as IPAM, and
//! checked with independent tools (`ip -j`, ping, host-local's state directory).
//! Needs root, except for the config errors.

use std::process::Command;

use harness::cni::{
    Answer, CNI_PATH, HostLocal as Runtime, has_link, ip_json, one_node_lab as lab, pod_ip,
    v4_range,
};
use serde_json::{Value, json};

/// Runs the plugin binary as a runtime does: `vars` in the environment, `conf`
/// on stdin, the answer from stdout.
fn run_plugin(command: Command, vars: &[(&str, &str)], conf: &Value) -> Answer {
    harness::cni::run_plugin(command, vars, conf).unwrap()
}

#[test]
#[ignore = "needs root"]
fn cni_two_pods_on_a_node_get_host_local_addresses_and_ping_each_other_and_the_node() {
    harness::require_root();
    let lab = lab("cni_two_pods");
    let node = lab.node("n1");
    let runtime = Runtime::new(&lab, node, v4_range(), env!("CARGO_BIN_EXE_tabby-cni"));
    let (web, db) = (lab.pod("web").unwrap(), lab.pod("db").unwrap());
    let web_result = runtime.add("web", &web);
    let db_result = runtime.add("db", &db);

    let web_ip = pod_ip(&web_result, 0);
    assert_eq!(web_result["ips"][0]["address"], format!("{web_ip}/32"));
    assert_eq!(
        web_result["interfaces"][0]["name"],
        runtime.host_veth("web")
    );
    assert_eq!(web_result["interfaces"][0]["mac"], "ee:ee:ee:ee:ee:ee");
    assert_eq!(
        web_result["interfaces"][1]["sandbox"],
        web.path().display().to_string()
    );
    assert_eq!(runtime.allocated(), ["10.244.0.2", "10.244.0.3"]);

    // The pod's side, Calico's way.
    let routes = ip_json(&web, "route show");
    assert_eq!(routes[0]["dst"], "default");
    assert_eq!(routes[0]["gateway"], "169.254.1.1");
    assert_eq!(routes[0]["flags"], json!(["onlink"]));
    assert_eq!(ip_json(&web, "link show eth0")[0]["mtu"], 1400);
    let host_link = ip_json(node, &format!("link show {}", runtime.host_veth("web")));
    assert_eq!(host_link[0]["mtu"], 1400);
    // The host's side: a /32 through the veth, tagged with tabby's protocol.
    let host_route = ip_json(node, &format!("route show {web_ip}/32"));
    assert_eq!(host_route[0]["dev"], runtime.host_veth("web"));
    assert_eq!(
        host_route[0]["protocol"],
        agent::dataplane::TABBY_PROTOCOL.to_string()
    );

    web.ping(pod_ip(&db_result, 0)).unwrap();
    db.ping(web_ip).unwrap();
    web.ping(node.address()).unwrap();
}

#[test]
#[ignore = "needs root"]
fn cni_del_removes_the_veth_and_host_route_and_releases_the_address_and_repeats_harmlessly() {
    harness::require_root();
    let lab = lab("cni_del");
    let node = lab.node("n1");
    let runtime = Runtime::new(&lab, node, v4_range(), env!("CARGO_BIN_EXE_tabby-cni"));
    let web = lab.pod("web").unwrap();
    let ip = pod_ip(&runtime.add("web", &web), 0);
    assert_eq!(runtime.allocated(), [ip.to_string()]);

    for attempt in ["first", "second"] {
        let answer = runtime.del("web", Some(&web));
        assert!(answer.success, "{attempt} DEL: {}", answer.json);
        assert!(!has_link(node, &runtime.host_veth("web")), "{attempt} DEL");
        assert!(!has_link(&web, "eth0"), "{attempt} DEL");
        assert_eq!(ip_json(node, &format!("route show {ip}/32")), json!([]));
        assert_eq!(runtime.allocated(), Vec::<String>::new());
    }
    // A container the plugin never saw, without a namespace.
    let answer = runtime.del("ghost", None);
    assert!(
        answer.success,
        "DEL of an unknown container: {}",
        answer.json
    );
}

#[test]
#[ignore = "needs root"]
fn cni_del_after_the_pod_namespace_is_gone_releases_the_address() {
    harness::require_root();
    let lab = lab("cni_del_gone");
    let node = lab.node("n1");
    let runtime = Runtime::new(&lab, node, v4_range(), env!("CARGO_BIN_EXE_tabby-cni"));
    let web = lab.pod("web").unwrap();
    runtime.add("web", &web);
    drop(web);
    let answer = runtime.del("web", None);
    assert!(answer.success, "{}", answer.json);
    assert_eq!(runtime.allocated(), Vec::<String>::new());
}

#[test]
fn cni_bad_config_is_a_cni_error_that_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let vars = [
        ("CNI_COMMAND", "ADD"),
        ("CNI_CONTAINERID", "c1"),
        ("CNI_NETNS", "/nonexistent/netns"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", CNI_PATH),
    ];
    let run = |conf: &Value| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tabby-cni"));
        command.current_dir(dir.path());
        run_plugin(command, &vars, conf)
    };
    let base = json!({"cniVersion": "1.0.0", "name": "n", "type": "tabby-cni",
                      "ipam": {"type": "host-local"}});
    let cases = [
        ("mtu", json!(20), 7, "mtu: 20 is outside 68..=65535"),
        ("ipam", json!({}), 7, "ipam.type: is missing"),
        (
            "cniVersion",
            json!("0.2.0"),
            1,
            "one of 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0",
        ),
    ];
    for (field, value, code, needle) in cases {
        let mut conf = base.clone();
        conf[field] = value;
        let answer = run(&conf);
        assert!(!answer.success, "{field}: {}", answer.json);
        assert_eq!(answer.json["code"], code, "{}", answer.json);
        let msg = answer.json["msg"].as_str().unwrap();
        assert!(msg.contains(needle), "{msg}");
    }
    // JSON that is not a config object; and a pod namespace that does not exist.
    let answer = run(&json!("not a config"));
    assert_eq!(answer.json["code"], 7, "{}", answer.json);
    let answer = run(&base);
    assert_eq!(answer.json["code"], 3, "{}", answer.json);
    assert!(
        answer.json["msg"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/netns")
    );
}

#[test]
#[ignore = "needs root"]
fn cni_a_failing_ipam_leaves_no_veth_and_no_allocation_behind() {
    harness::require_root();
    let lab = lab("cni_ipam_fails");
    let node = lab.node("n1");
    let web = lab.pod("web").unwrap();

    // IPAM itself fails: the plugin is not on CNI_PATH.
    let runtime = Runtime::new(&lab, node, v4_range(), env!("CARGO_BIN_EXE_tabby-cni"));
    let mut conf = runtime.conf.clone();
    conf["ipam"]["type"] = json!("tabby-ipam-not-installed");
    let answer = runtime.call("ADD", "web", Some(&web), &conf);
    assert!(!answer.success);
    assert!(
        answer.json["msg"].as_str().unwrap().contains("CNI_PATH"),
        "{}",
        answer.json
    );
    assert!(!has_link(node, &runtime.host_veth("web")));

    // IPAM succeeds, the pod cannot take the address (IPv6 off in the pod): the
    // veth is removed and the allocation released before the error returns.
    web.sysctl("net.ipv6.conf.all.disable_ipv6", "1").unwrap();
    web.sysctl("net.ipv6.conf.default.disable_ipv6", "1")
        .unwrap();
    let runtime = Runtime::new(
        &lab,
        node,
        json!([[{"subnet": "fd00:244::/64"}]]),
        env!("CARGO_BIN_EXE_tabby-cni"),
    );
    let answer = runtime.call("ADD", "web", Some(&web), &runtime.conf);
    assert!(!answer.success, "{}", answer.json);
    assert_eq!(
        answer.json["code"], 104,
        "the kernel refused: {}",
        answer.json
    );
    assert!(!has_link(node, &runtime.host_veth("web")));
    assert!(!has_link(&web, "eth0"));
    assert_eq!(runtime.allocated(), Vec::<String>::new());
}

#[test]
#[ignore = "needs root"]
fn cni_check_passes_on_a_good_pod_and_fails_after_its_host_route_is_deleted() {
    harness::require_root();
    let lab = lab("cni_check");
    let node = lab.node("n1");
    let runtime = Runtime::new(&lab, node, v4_range(), env!("CARGO_BIN_EXE_tabby-cni"));
    let web = lab.pod("web").unwrap();
    let result = runtime.add("web", &web);
    let answer = runtime.check("web", &web, &result);
    assert!(answer.success, "{}", answer.json);

    node.ip(&format!("route del {}/32", pod_ip(&result, 0)))
        .unwrap();
    let answer = runtime.check("web", &web, &result);
    assert!(!answer.success);
    let msg = answer.json["msg"].as_str().unwrap();
    assert!(msg.contains("is missing on the host"), "{msg}");
}

#[test]
#[ignore = "needs root"]
fn cni_dual_stack_pods_ping_each_other_over_ipv4_and_ipv6() {
    harness::require_root();
    let lab = lab("cni_dual_stack");
    let node = lab.node("n1");
    // IPv6 forwards only with the node-wide switch on (the agent's job on a node).
    node.sysctl("net.ipv6.conf.all.forwarding", "1").unwrap();
    let runtime = Runtime::new(
        &lab,
        node,
        json!([[{"subnet": "10.244.0.0/24"}], [{"subnet": "fd00:244::/64"}]]),
        env!("CARGO_BIN_EXE_tabby-cni"),
    );
    let (web, db) = (lab.pod("web").unwrap(), lab.pod("db").unwrap());
    let web_result = runtime.add("web", &web);
    let db_result = runtime.add("db", &db);
    assert_eq!(
        web_result["ips"][1]["address"],
        format!("{}/128", pod_ip(&web_result, 1))
    );
    let routes = ip_json(&web, "-6 route show default");
    assert_eq!(routes[0]["gateway"], "fe80::ecee:eeff:feee:eeee");
    for index in [0, 1] {
        web.ping(pod_ip(&db_result, index)).unwrap();
    }
}

#[test]
#[ignore = "needs root"]
fn cni_a_0_4_0_config_gets_a_0_4_0_result_and_0_3_1_refuses_check() {
    harness::require_root();
    let lab = lab("cni_versions");
    let node = lab.node("n1");
    let mut runtime = Runtime::new(&lab, node, v4_range(), env!("CARGO_BIN_EXE_tabby-cni"));
    let web = lab.pod("web").unwrap();
    runtime.conf["cniVersion"] = json!("0.4.0");
    let result = runtime.add("web", &web);
    assert_eq!(result["cniVersion"], "0.4.0");
    assert_eq!(result["ips"][0]["version"], "4");
    assert!(runtime.check("web", &web, &result).success);

    runtime.conf["cniVersion"] = json!("0.3.1");
    let answer = runtime.check("web", &web, &result);
    assert_eq!(answer.json["code"], 1, "{}", answer.json);
    assert!(runtime.del("web", Some(&web)).success);
}

#[test]
#[ignore = "needs root"]
fn cni_add_replaces_a_host_veth_left_behind_by_an_earlier_attempt() {
    harness::require_root();
    let lab = lab("cni_stale_veth");
    let node = lab.node("n1");
    let runtime = Runtime::new(&lab, node, v4_range(), env!("CARGO_BIN_EXE_tabby-cni"));
    let web = lab.pod("web").unwrap();
    let stale = runtime.host_veth("web");
    node.ip(&format!("link add {stale} type veth peer name stale-peer"))
        .unwrap();

    let result = runtime.add("web", &web);
    assert!(!has_link(node, "stale-peer"));
    web.ping(node.address()).unwrap();
    assert!(runtime.check("web", &web, &result).success);
}

#[test]
#[ignore = "needs root"]
fn cni_a_pod_is_recorded_as_a_workload_endpoint_in_etcd_and_forgotten_by_its_del() {
    harness::require_root();
    let lab = lab("cni_workload_endpoint");
    let node = lab.node("n1");
    let router = lab.router().unwrap();
    let etcd =
        harness::etcd::Etcd::start_in(lab.logs(), router, "10.0.1.1".parse().unwrap()).unwrap();
    let mut runtime = Runtime::new(&lab, node, v4_range(), env!("CARGO_BIN_EXE_tabby-cni"));
    runtime.conf["datastore_type"] = json!("etcdv3");
    runtime.conf["etcd_endpoints"] = json!(etcd.endpoint());
    runtime.conf["nodename"] = json!("n1");
    let web = lab.pod("web").unwrap();
    let ip = pod_ip(&runtime.add("web", &web), 0);

    let key = format!("/tabby/v1/workloadendpoints/{}.web", runtime.namespace());
    let stored: Value =
        serde_json::from_str(&etcd.etcdctl(&["get", &key, "--print-value-only"]).unwrap()).unwrap();
    let spec = &stored["spec"];
    assert_eq!(spec["node"], "n1");
    assert_eq!(spec["containerID"], "ctr-web");
    assert_eq!(spec["interfaceName"], runtime.host_veth("web"));
    assert_eq!(spec["ipNetworks"], json!([format!("{ip}/32")]));

    assert!(runtime.del("web", Some(&web)).success);
    assert_eq!(etcd.etcdctl(&["get", &key]).unwrap(), "");
    // A second DEL finds nothing to forget, and succeeds.
    assert!(runtime.del("web", Some(&web)).success);
}

#[test]
#[ignore = "needs root"]
fn cni_add_with_an_unreachable_datastore_fails_with_try_again_and_leaves_nothing() {
    harness::require_root();
    let lab = lab("cni_datastore_down");
    let node = lab.node("n1");
    let mut runtime = Runtime::new(&lab, node, v4_range(), env!("CARGO_BIN_EXE_tabby-cni"));
    runtime.conf["datastore_type"] = json!("etcdv3");
    // The router's address, where no etcd listens.
    runtime.conf["etcd_endpoints"] = json!("http://10.0.1.1:2379");
    runtime.conf["nodename"] = json!("n1");
    let web = lab.pod("web").unwrap();
    let answer = runtime.call("ADD", "web", Some(&web), &runtime.conf);
    assert!(!answer.success);
    assert_eq!(answer.json["code"], 11, "{}", answer.json);
    assert!(!has_link(node, &runtime.host_veth("web")));
    assert_eq!(runtime.allocated(), Vec::<String>::new());
}
