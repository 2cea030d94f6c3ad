//! NAT outgoing against a real kernel: tabby's nftables tables read back with
//! `nft -j list ruleset`, and a pod (plugged in by tabby-cni) pinging an
//! "internet" (the lab's router) that only knows the node's address. Needs root.

use agent::nat::{self, NAT_TABLE, NatPool};
use harness::Netns;
use harness::cni::{HostLocal as Runtime, one_node_lab as lab, v4_range};
use serde_json::Value;

fn pool(cidr: &str, nat_outgoing: bool) -> NatPool {
    NatPool {
        cidr: cidr.parse().unwrap(),
        nat_outgoing,
    }
}

/// Renders and applies `pools` inside `netns`.
fn apply(netns: &Netns, pools: &[NatPool]) {
    netns
        .run(|| nat::apply(&nat::render(pools)))
        .unwrap()
        .unwrap();
}

/// The objects of `nft -j list ruleset` in `netns`.
fn ruleset(netns: &Netns) -> Vec<Value> {
    let json: Value =
        serde_json::from_str(&netns.exec("nft", &["-j", "list", "ruleset"]).unwrap()).unwrap();
    json["nftables"].as_array().unwrap().clone()
}

/// Tables as "family name".
fn tables(ruleset: &[Value]) -> Vec<String> {
    ruleset
        .iter()
        .filter_map(|o| o.get("table"))
        .map(|t| {
            format!(
                "{} {}",
                t["family"].as_str().unwrap(),
                t["name"].as_str().unwrap()
            )
        })
        .collect()
}

/// The prefixes in set `name` of tabby's table of `family`, as "addr/len".
fn set_elements(ruleset: &[Value], family: &str, name: &str) -> Vec<String> {
    let set = ruleset
        .iter()
        .filter_map(|o| o.get("set"))
        .find(|s| s["family"] == family && s["table"] == NAT_TABLE && s["name"] == name)
        .unwrap_or_else(|| panic!("no set {family} {name}"));
    set["elem"]
        .as_array()
        .map(|elements| {
            elements
                .iter()
                .map(|e| {
                    format!(
                        "{}/{}",
                        e["prefix"]["addr"].as_str().unwrap(),
                        e["prefix"]["len"]
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
#[ignore = "needs root"]
fn nat_outgoing_tables_follow_the_pools_and_leave_other_tables_alone() {
    harness::require_root();
    let lab = lab("nat_tables");
    let node = lab.node("n1");
    node.exec("nft", &["add table inet firewall"]).unwrap();
    node.exec(
        "nft",
        &["add chain inet firewall input { type filter hook input priority 0 ; }"],
    )
    .unwrap();

    apply(
        node,
        &[
            pool("10.244.0.0/16", true),
            pool("10.96.0.0/12", false),
            pool("fd00:244::/48", true),
        ],
    );
    let rules = ruleset(node);
    assert_eq!(
        tables(&rules),
        ["inet firewall", "ip tabby-nat", "ip6 tabby-nat"]
    );
    assert_eq!(
        set_elements(&rules, "ip", "all-pools"),
        ["10.96.0.0/12", "10.244.0.0/16"]
    );
    assert_eq!(set_elements(&rules, "ip", "masq-pools"), ["10.244.0.0/16"]);
    assert_eq!(set_elements(&rules, "ip6", "masq-pools"), ["fd00:244::/48"]);
    let masquerades = rules
        .iter()
        .filter_map(|o| o.get("rule"))
        .filter(|r| r["table"] == NAT_TABLE && r["expr"].to_string().contains("masquerade"))
        .count();
    assert_eq!(masquerades, 2);

    // A changed pool list replaces the sets; nothing of the old ones lingers.
    apply(node, &[pool("10.250.0.0/16", true)]);
    let rules = ruleset(node);
    assert_eq!(tables(&rules), ["inet firewall", "ip tabby-nat"]);
    assert_eq!(set_elements(&rules, "ip", "all-pools"), ["10.250.0.0/16"]);

    // No NAT pool left: tabby's tables go, the firewall's stays.
    apply(node, &[pool("10.250.0.0/16", false)]);
    assert_eq!(tables(&ruleset(node)), ["inet firewall"]);
}

#[test]
#[ignore = "needs root"]
fn nat_outgoing_lets_a_pod_reach_a_network_that_only_knows_the_node() {
    harness::require_root();
    let lab = lab("nat_ping");
    let node = lab.node("n1");
    let router = lab.router().unwrap();
    let internet = router.address_in("a", node.address()).unwrap();
    // Replies come in on eth0 and are forwarded to the pod: the node-wide switch
    // (the agent's and the node's business, not the plugin's) must be on.
    node.sysctl("net.ipv4.ip_forward", "1").unwrap();
    let runtime = Runtime::new(
        &lab,
        node,
        v4_range(),
        harness::e2e::binary("tabby-cni").unwrap(),
    );
    let web = lab.pod("web").unwrap();
    runtime.add("web", &web);

    // The router has no route back to the pod's address.
    let ping_once = || {
        web.exec("ping", &["-c", "1", "-W", "1", &internet.to_string()])
            .is_ok()
    };
    assert!(!ping_once(), "the pod reached {internet} without NAT");

    apply(node, &[pool("10.244.0.0/16", true)]);
    web.ping(internet).unwrap();
}
