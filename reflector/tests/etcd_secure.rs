//! tabby-reflector discovering its peers from etcd as production clusters set it up:
//! TLS with client certificates, and authentication with a user that may touch
//! tabby's keys only. Through either, it takes its AS from the cluster's
//! BGPConfiguration and peers with the other Node.

mod support;

use harness::etcd::Etcd;
use harness::{Lab, Node};
use serde_json::json;

const USER: &str = "tabby";
const PASSWORD: &str = "a-long-etcd-password";

fn lab(test: &str) -> Lab {
    Lab::new(test)
        .subnet("a", "10.0.1.0/24")
        .node("rr", "a")
        .build()
        .unwrap()
}

/// The cluster's AS, the reflector's own Node and one client Node, written with
/// etcdctl as an operator bootstraps a cluster.
fn cluster(etcd: &Etcd) {
    let put = |key: &str, value: serde_json::Value| {
        etcd.etcdctl(&["put", key, &value.to_string()]).unwrap();
    };
    put(
        "/tabby/v1/bgpconfigurations/default",
        json!({"apiVersion": "tabby.dev/v1", "kind": "BGPConfiguration",
               "metadata": {"name": "default"}, "spec": {"asNumber": support::AS}}),
    );
    for (name, address) in [("rr-node", "10.0.1.1/24"), ("client", "10.0.1.77/24")] {
        put(
            &format!("/tabby/v1/nodes/{name}"),
            json!({"apiVersion": "tabby.dev/v1", "kind": "Node", "metadata": {"name": name},
                   "spec": {"bgp": {"ipv4Address": address}}}),
        );
    }
}

/// Starts the reflector with `datastore` flags (and `env`) and waits until it
/// lists the client Node as its peer.
fn discovers(rr: &Node, datastore: &[String], env: &[(&str, &str)]) {
    let mut args = datastore.to_vec();
    args.push("--node-name=rr-node".into());
    let reflector =
        support::Reflector::start_env(rr, &format!("routerId: {}\n", rr.address()), &args, env);
    harness::wait_until(support::TIMEOUT, "the client Node as a peer", || {
        let peers = reflector.peers()?;
        Ok(peers.iter().any(|p| p.address == "10.0.1.77"))
    })
    .unwrap();
}

#[test]
#[ignore = "needs root"]
fn reflector_discovers_peers_over_etcd_with_tls_client_certificates() {
    harness::require_root();
    let lab = lab("reflector_etcd_tls");
    let rr = lab.node("rr");
    let etcd = Etcd::start_local_in(lab.logs(), rr.netns(), true).unwrap();
    cluster(&etcd);
    discovers(rr, &etcd.daemon_flags(), &[]);
}

#[test]
#[ignore = "needs root"]
fn reflector_discovers_peers_over_etcd_with_a_user_and_password() {
    harness::require_root();
    let lab = lab("reflector_etcd_auth");
    let rr = lab.node("rr");
    let mut etcd = Etcd::start_local_in(lab.logs(), rr.netns(), false).unwrap();
    etcd.enable_auth(USER, PASSWORD, "/tabby").unwrap();
    cluster(&etcd);
    let flags = [
        format!("--etcd-endpoints={}", etcd.endpoint()),
        format!("--etcd-username={USER}"),
    ];
    discovers(rr, &flags, &[("TABBY_ETCD_PASSWORD", PASSWORD)]);
}
