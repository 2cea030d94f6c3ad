use std::collections::BTreeMap;

use harness::kube_api::KubeApi;

use super::*;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| vars.get(name).cloned()
}

#[test]
fn install_the_default_pools_are_made_from_calicos_daemonset_variables() {
    let pools = from_env(&env(&[
        ("CALICO_IPV4POOL_CIDR", "10.244.0.0/16"),
        ("CALICO_IPV4POOL_BLOCK_SIZE", "24"),
        ("CALICO_IPV4POOL_IPIP", "CrossSubnet"),
        ("CALICO_IPV4POOL_NODE_SELECTOR", "rack == \"r1\""),
        ("CALICO_IPV6POOL_CIDR", "fd00:10:244::/48"),
        ("CALICO_IPV6POOL_BLOCK_SIZE", "120"),
        ("CALICO_IPV6POOL_NAT_OUTGOING", "false"),
    ]))
    .unwrap();
    let [v4, v6] = &pools[..] else {
        panic!("{pools:?}")
    };
    assert_eq!(v4.metadata.name, "default-ipv4-ippool");
    assert_eq!(v4.spec.cidr.0.to_string(), "10.244.0.0/16");
    assert_eq!(v4.spec.block_size, Some(24));
    assert_eq!(v4.spec.ipip_mode, EncapsulationMode::CrossSubnet);
    assert_eq!(v4.spec.vxlan_mode, EncapsulationMode::Never);
    assert!(v4.spec.nat_outgoing, "calico-node's default");
    assert_eq!(v4.spec.node_selector.to_string(), "rack == \"r1\"");
    assert_eq!(v6.metadata.name, "default-ipv6-ippool");
    assert_eq!(v6.spec.block_size, Some(120));
    assert_eq!(v6.spec.vxlan_mode, EncapsulationMode::Never);
    assert!(!v6.spec.nat_outgoing);
}

#[test]
fn install_no_default_pools_or_no_cidr_makes_none() {
    assert!(from_env(&env(&[])).unwrap().is_empty());
    let off = from_env(&env(&[
        ("NO_DEFAULT_POOLS", "true"),
        ("CALICO_IPV4POOL_CIDR", "10.244.0.0/16"),
    ]))
    .unwrap();
    assert!(off.is_empty());
}

#[test]
fn install_a_pool_variable_that_makes_no_valid_pool_is_named_with_its_value() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("CALICO_IPV4POOL_CIDR", "10.244.0.0/33")],
            "CALICO_IPV4POOL_CIDR \"10.244.0.0/33\"",
        ),
        (
            &[
                ("CALICO_IPV4POOL_CIDR", "10.244.0.0/16"),
                ("CALICO_IPV4POOL_IPIP", "Sometimes"),
            ],
            "CALICO_IPV4POOL_IPIP \"Sometimes\": is not Always, CrossSubnet or Never",
        ),
        (
            &[
                ("CALICO_IPV4POOL_CIDR", "10.244.0.0/16"),
                ("CALICO_IPV4POOL_NAT_OUTGOING", "yes"),
            ],
            "CALICO_IPV4POOL_NAT_OUTGOING \"yes\"",
        ),
        // Validated as any pool: a block larger than the pool.
        (
            &[
                ("CALICO_IPV4POOL_CIDR", "10.244.0.0/24"),
                ("CALICO_IPV4POOL_BLOCK_SIZE", "20"),
            ],
            "CALICO_IPV4POOL_* \"10.244.0.0/24\"",
        ),
        // Refused as for any IPv6 pool: tabby has no VXLAN over IPv6.
        (
            &[
                ("CALICO_IPV6POOL_CIDR", "fd00:10:244::/48"),
                ("CALICO_IPV6POOL_VXLAN", "Always"),
            ],
            "CALICO_IPV6POOL_* \"fd00:10:244::/48\": spec.vxlanMode",
        ),
        (
            &[("NO_DEFAULT_POOLS", "maybe")],
            "NO_DEFAULT_POOLS \"maybe\"",
        ),
    ];
    for (vars, expected) in cases {
        let error = from_env(&env(vars)).unwrap_err().to_string();
        assert!(error.starts_with(expected), "{vars:?}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_many_agents_starting_at_once_create_the_default_pool_once() {
    let (_api, store) = KubeApi::with_tabby_crds().await.unwrap();
    let pools = from_env(&env(&[("CALICO_IPV4POOL_CIDR", "10.244.0.0/16")])).unwrap();
    let starts: Vec<_> = (0..12)
        .map(|_| {
            let (store, pools) = (store.clone(), pools.clone());
            tokio::spawn(async move { ensure(&*store, &pools).await.unwrap() })
        })
        .collect();
    let mut created = Vec::new();
    for start in starts {
        created.extend(start.await.unwrap());
    }
    assert_eq!(created, ["default-ipv4-ippool"]);
    let stored = list_all::<IPPool, _>(&*store, None).await.unwrap().items;
    assert_eq!(stored.len(), 1);
    assert!(stored[0].spec.nat_outgoing);
}

#[tokio::test]
async fn install_a_cluster_with_a_pool_of_the_family_gets_no_default_one() {
    let (_api, store) = KubeApi::with_tabby_crds().await.unwrap();
    let own = IPPool::new(
        "mine",
        IPPoolSpec::new(Cidr("10.50.0.0/16".parse().unwrap())),
    );
    store.create(&own).await.unwrap();
    let pools = from_env(&env(&[
        ("CALICO_IPV4POOL_CIDR", "10.244.0.0/16"),
        ("CALICO_IPV6POOL_CIDR", "fd00:10:244::/48"),
    ]))
    .unwrap();
    // The IPv4 one exists already (another name); the IPv6 one is made.
    assert_eq!(
        ensure(&*store, &pools).await.unwrap(),
        ["default-ipv6-ippool"]
    );
    assert_eq!(ensure(&*store, &pools).await.unwrap(), Vec::<String>::new());
}
