//! calico-node's address autodetection, as tabby-agent reads it from Calico's
//! variables, against a real kernel's interfaces: each test in a fresh network
//! namespace (the harness's one-node lab) with its own links and addresses, read
//! over rtnetlink exactly as the daemon reads them. Needs root.
//!
//! This kernel has no dummy devices, so veth pairs stand in for NICs.

#[path = "dataplane_support/mod.rs"]
mod support;

use agent::config::Flags;
use agent::dataplane::netlink::socket::Socket;
use agent::node::autodetect::{self, Detected};
use agent::node::interfaces;
use support::Host;

/// The node: `eth0` (192.0.2.10/24, fd00:ff::a/64, the lab's), a second NIC `ens5`
/// (10.1.0.5/24), and what first-found must skip: `docker0` (172.17.0.1/16) and a
/// pod's `cali1` (10.9.0.1/32).
fn node() -> Host {
    let host = Host::new(&harness::root::current_test_name());
    for (name, peer, address) in [
        ("ens5", "ens5p", "10.1.0.5/24"),
        ("docker0", "dockerp", "172.17.0.1/16"),
        ("cali1", "pod1", "10.9.0.1/32"),
    ] {
        host.veth(name, peer);
        host.ip(&format!("address add {address} dev {name}"));
    }
    host
}

/// The IPv4 (or IPv6) address the agent picks on `host` with calico-node's `vars`.
fn detect(host: &Host, vars: &[(&str, &str)], ipv4: bool) -> Option<Detected> {
    let vars = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
    let (flags, _) = Flags::with_calico_env(vec!["tabby-agent".into()], vars).unwrap();
    let options = flags.options(|| Some("n1".into())).unwrap();
    let choice = if ipv4 { options.ipv4 } else { options.ipv6 };
    host.run(async || {
        let mut socket = Socket::open().unwrap();
        let interfaces = interfaces::read(&mut socket).await.unwrap();
        autodetect::choose(&choice, ipv4, &interfaces, autodetect::source_towards)
            .unwrap_or_else(|e| panic!("{e}"))
    })
}

fn shown(detected: Option<Detected>) -> String {
    detected.map_or("none".into(), |d| {
        format!("{} on {}", d.address, d.interface)
    })
}

#[test]
#[ignore = "needs root"]
fn install_each_calico_autodetection_method_picks_its_address_from_the_nodes_interfaces() {
    harness::require_root();
    let host = node();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "192.0.2.10/24 on eth0"),
        (&[("IP", "autodetect")], "192.0.2.10/24 on eth0"),
        (
            &[("IP_AUTODETECTION_METHOD", "interface=ens.*")],
            "10.1.0.5/24 on ens5",
        ),
        (
            &[("IP_AUTODETECTION_METHOD", "skip-interface=eth.*")],
            "10.1.0.5/24 on ens5",
        ),
        (
            &[("IP_AUTODETECTION_METHOD", "cidr=10.1.0.0/16")],
            "10.1.0.5/24 on ens5",
        ),
        (
            &[("IP_AUTODETECTION_METHOD", "can-reach=10.1.0.77")],
            "10.1.0.5/24 on ens5",
        ),
        (
            &[("IP_AUTODETECTION_METHOD", "can-reach=192.0.2.2")],
            "192.0.2.10/24 on eth0",
        ),
        // An explicit address takes its length from the interface.
        (&[("IP", "10.1.0.5")], "10.1.0.5/24 on ens5"),
        (&[("IP", "none")], "none"),
    ];
    for (vars, expected) in cases {
        assert_eq!(&shown(detect(&host, vars, true)), expected, "{vars:?}");
    }
}

#[test]
#[ignore = "needs root"]
fn install_ip6_autodetect_finds_the_nodes_ipv6_address_and_none_is_the_default() {
    harness::require_root();
    let host = node();
    assert_eq!(shown(detect(&host, &[], false)), "none");
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("IP6", "autodetect")], "fd00:ff::a/64 on eth0"),
        (
            &[
                ("IP6", "autodetect"),
                ("IP6_AUTODETECTION_METHOD", "can-reach=fd00:ff::3"),
            ],
            "fd00:ff::a/64 on eth0",
        ),
    ];
    for (vars, expected) in cases {
        assert_eq!(&shown(detect(&host, vars, false)), expected, "{vars:?}");
    }
}

#[test]
#[ignore = "needs root"]
fn install_a_calico_method_that_finds_nothing_names_the_method_and_the_interfaces_seen() {
    harness::require_root();
    let host = node();
    let vars = [("IP_AUTODETECTION_METHOD", "interface=bond.*")]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let (flags, _) = Flags::with_calico_env(vec!["tabby-agent".into()], vars).unwrap();
    let choice = flags.options(|| Some("n1".into())).unwrap().ipv4;
    let error = host.run(async || {
        let mut socket = Socket::open().unwrap();
        let interfaces = interfaces::read(&mut socket).await.unwrap();
        autodetect::choose(&choice, true, &interfaces, autodetect::source_towards).unwrap_err()
    });
    let shown = error.to_string();
    assert!(shown.contains("interface=bond.*"), "{shown}");
    assert!(shown.contains("ens5 (up 10.1.0.5/24"), "{shown}");
}

/// `kubernetes-internal-ip` asks the API (the double: no kube-apiserver exists
/// here) for the Node's `InternalIP`, then finds it on the node's interfaces.
#[test]
#[ignore = "needs root"]
fn install_kubernetes_internal_ip_takes_the_nodes_internal_ip_and_finds_its_interface() {
    use api::datastore::{Backend, KubeStore};
    use harness::kube_api::{KubeApi, KubeApiOptions};

    harness::require_root();
    let host = node();
    let internal = harness::runtime().block_on(async {
        let api = KubeApi::start(KubeApiOptions::default()).await.unwrap();
        api.put_node(
            "n1",
            &["10.1.0.5".parse().unwrap(), "fd00:ff::a".parse().unwrap()],
        )
        .await
        .unwrap();
        let store = KubeStore::at(&api.url()).unwrap();
        let core = store.inventory().unwrap();
        assert!(core.internal_ips("absent").await.unwrap().is_empty());
        core.internal_ips("n1").await.unwrap()
    });
    let vars = [("IP_AUTODETECTION_METHOD", "kubernetes-internal-ip")]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let (flags, _) = Flags::with_calico_env(vec!["tabby-agent".into()], vars).unwrap();
    let options = flags.options(|| Some("n1".into())).unwrap();
    let choice = autodetect::internal_ip(&options.ipv4, true, &internal).unwrap();
    let detected = host.run(async || {
        let mut socket = Socket::open().unwrap();
        let interfaces = interfaces::read(&mut socket).await.unwrap();
        autodetect::choose(&choice, true, &interfaces, autodetect::source_towards).unwrap()
    });
    assert_eq!(shown(detected), "10.1.0.5/24 on ens5");
    // No IPv4 InternalIP: the error says what the Node has.
    let v6_only = ["fd00:ff::a".parse().unwrap()];
    let error = autodetect::internal_ip(&options.ipv4, true, &v6_only).unwrap_err();
    assert_eq!(
        error.to_string(),
        "kubernetes-internal-ip: the Kubernetes Node has no IPv4 InternalIP (it has: fd00:ff::a)"
    );
}
