//! The consistency checker finding each kind of problem it knows, and tunnel
//! addresses recorded on the Node.

mod support;

use std::collections::BTreeMap;
use std::net::IpAddr;

use api::datastore::Datastore;
use api::resources::{
    AffinityState, AllowedUse, BlockAffinity, BlockAffinitySpec, EncapsulationMode, IPAMBlock,
    IPAMHandle, IPPool, Node, NodeSpec,
};
use ipam::check::{Problem, check};
use ipam::claim::new_block;
use ipam::table::{AllocationTable, attr};
use ipam::{Allocator, AssignRequest, Family, Tunnel};
use support::{edit, memory, node, pool};

fn holder(handle: &str) -> api::resources::AllocationAttribute {
    api::resources::AllocationAttribute {
        handle_id: Some(handle.into()),
        secondary: BTreeMap::new(),
    }
}

#[tokio::test]
async fn ipam_check_finds_every_kind_of_inconsistency_and_reports_them_as_json() {
    let store = memory();
    pool(&*store, "p", "10.0.0.0/24", 26, |_| {}).await;
    let n1 = Allocator::new(store.clone(), "n1");
    let a = n1
        .auto_assign(&AssignRequest::new("a", 2, 0))
        .await
        .unwrap()
        .addresses;
    let block = a[0].block;
    // n2 also believes it owns n1's block.
    let affinity = BlockAffinitySpec {
        node: "n2".into(),
        cidr: block,
        state: AffinityState::Confirmed,
    };
    let n2_name = ipam::claim::affinity_name("n2", &block);
    store
        .create(&BlockAffinity::new(n2_name, affinity))
        .await
        .unwrap();
    // A handle miscounts, another counts nothing real, one address lost its handle.
    edit::<IPAMHandle>(&*store, "a", |h| {
        h.spec.block.insert(block.to_string(), 5);
    })
    .await;
    support::empty_handle(&*store, "ghost").await;
    let b = n1
        .auto_assign(&AssignRequest::new("b", 1, 0))
        .await
        .unwrap()
        .addresses;
    store.delete::<IPAMHandle>("b", None).await.unwrap();
    // An overlapping block (a pool's block size changed) holding the same address.
    let inner = api::resources::Cidr(ipam::blocks::block_of(a[0].ip, 28).unwrap());
    let mut overlap = new_block(inner, None);
    let ordinal = ipam::blocks::ordinal_of(overlap.spec.cidr.0, a[0].ip).unwrap();
    overlap
        .spec
        .take_ordinal(ordinal, &holder("intruder"))
        .unwrap();
    store.create(&overlap).await.unwrap();
    // A block of a deleted pool, and a node recording a tunnel address nobody holds.
    store
        .create(&new_block("10.9.0.0/26".parse().unwrap(), None))
        .await
        .unwrap();
    store
        .create(&Node::new(
            "n3",
            NodeSpec {
                ipv4_vxlan_tunnel_addr: Some("10.0.0.250".parse().unwrap()),
                vxlan_tunnel_mac_addr: Some(ipam::tunnel::vxlan_mac("n3", Family::V4)),
                ..NodeSpec::default()
            },
        ))
        .await
        .unwrap();

    let report = check(&*store, false).await.unwrap();
    let has = |wanted: &dyn Fn(&Problem) -> bool| report.problems.iter().any(wanted);
    assert!(
        has(
            &|p| matches!(p, Problem::DoubleOwnership { block: b, nodes } if *b == block && nodes == &["n1", "n2"])
        ),
        "{report:#?}"
    );
    assert!(has(
        &|p| matches!(p, Problem::DoubleAllocation { ip, .. } if *ip == a[0].ip)
    ));
    assert!(has(
        &|p| matches!(p, Problem::HandleCountMismatch { handle, counted: 5, held: 2, .. } if handle == "a")
    ));
    assert!(has(
        &|p| matches!(p, Problem::HandleWithoutAddresses { handle } if handle == "ghost")
    ));
    assert!(has(
        &|p| matches!(p, Problem::AddressWithoutHandle { ip, .. } if *ip == b[0].ip)
    ));
    assert!(has(
        &|p| matches!(p, Problem::AddressWithoutHandle { handle: Some(h), .. } if h == "intruder")
    ));
    assert!(has(
        &|p| matches!(p, Problem::BlockOutsidePools { block, .. } if block.to_string() == "10.9.0.0/26")
    ));
    assert!(has(
        &|p| matches!(p, Problem::TunnelAddressNotAllocated { node, .. } if node == "n3")
    ));
    let json = serde_json::to_value(&report).unwrap();
    assert!(
        json["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["problem"] == "doubleOwnership"),
        "{json:#}"
    );

    // A block whose owner lost its affinity, and a pod address whose pod is gone.
    store
        .delete::<BlockAffinity>(&format!("n1-{}", api::resources::cidr_name(&block)), None)
        .await
        .unwrap();
    let mut request = AssignRequest::new("pod-gone", 1, 0);
    request.attrs = BTreeMap::from([
        (attr::NAMESPACE.to_owned(), "default".to_owned()),
        (attr::POD.to_owned(), "gone".to_owned()),
    ]);
    n1.auto_assign(&request).await.unwrap();
    let report = check(&*store, true).await.unwrap();
    let has = |wanted: &dyn Fn(&Problem) -> bool| report.problems.iter().any(wanted);
    assert!(
        has(
            &|p| matches!(p, Problem::BlockWithoutAffinity { node, affinity: None, .. } if node == "n1")
        ),
        "{report:#?}"
    );
    assert!(has(
        &|p| matches!(p, Problem::Leak { handle: Some(h), .. } if h == "pod-gone")
    ));
}

#[tokio::test]
async fn ipam_a_nodes_ipip_tunnel_address_is_allocated_once_and_recorded_on_the_node() {
    let store = memory();
    pool(&*store, "ipip", "10.0.0.0/24", 26, |p| {
        p.ipip_mode = EncapsulationMode::Always
    })
    .await;
    node(&*store, "n1", true).await;
    let n1 = Allocator::new(store.clone(), "n1");
    let tunnel = n1
        .ensure_tunnel_address(Tunnel::Ipip, Family::V4)
        .await
        .unwrap()
        .unwrap();
    let recorded: Node = store.get("n1").await.unwrap();
    assert_eq!(
        recorded
            .spec
            .bgp
            .unwrap()
            .ipv4_ipip_tunnel_addr
            .map(IpAddr::V4),
        Some(tunnel)
    );
    let again = n1
        .ensure_tunnel_address(Tunnel::Ipip, Family::V4)
        .await
        .unwrap();
    assert_eq!(again, Some(tunnel), "kept, not reallocated");
    let held = ipam::handles::addresses_of(&*store, "ipip-tunnel-addr-n1", "n1")
        .await
        .unwrap();
    assert_eq!(held.len(), 1);
    let block: IPAMBlock = store
        .get(&api::resources::cidr_name(&held[0].block))
        .await
        .unwrap();
    let allocation = block
        .spec
        .allocations()
        .into_iter()
        .find(|a| a.ip == tunnel)
        .unwrap();
    assert_eq!(allocation.secondary[attr::TYPE], "ipipTunnelAddress");
    let report = check(&*store, true).await.unwrap();
    assert!(report.is_consistent(), "{:#?}", report.problems);
}

#[tokio::test]
async fn ipam_tunnel_addresses_come_only_from_pools_allowing_tunnels_and_go_when_none_does() {
    let store = memory();
    pool(&*store, "pods", "10.0.0.0/24", 26, |p| {
        p.vxlan_mode = EncapsulationMode::Always;
        p.allowed_uses = vec![AllowedUse::Workload];
    })
    .await;
    pool(&*store, "tunnels", "10.1.0.0/24", 26, |p| {
        p.vxlan_mode = EncapsulationMode::Always;
        p.allowed_uses = vec![AllowedUse::Tunnel];
    })
    .await;
    node(&*store, "n1", false).await;
    let n1 = Allocator::new(store.clone(), "n1");
    let tunnel = n1
        .ensure_tunnel_address(Tunnel::Vxlan, Family::V4)
        .await
        .unwrap()
        .unwrap();
    assert!(tunnel.to_string().starts_with("10.1.0."), "{tunnel}");
    let pod = n1
        .auto_assign(&AssignRequest::new("pod", 1, 0))
        .await
        .unwrap();
    assert!(
        pod.addresses[0].ip.to_string().starts_with("10.0.0."),
        "pods never from the tunnel pool"
    );
    let recorded: Node = store.get("n1").await.unwrap();
    assert!(
        recorded.spec.vxlan_tunnel_mac_addr.is_some(),
        "a VXLAN address comes with a MAC"
    );

    // The tunnel pool goes: the address is released and cleared from the node.
    edit::<IPPool>(&*store, "tunnels", |p| p.spec.disabled = true).await;
    assert_eq!(
        n1.ensure_tunnel_address(Tunnel::Vxlan, Family::V4)
            .await
            .unwrap(),
        None
    );
    let cleared: Node = store.get("n1").await.unwrap();
    assert_eq!(cleared.spec.ipv4_vxlan_tunnel_addr, None);
    assert_eq!(
        ipam::handles::addresses_of(&*store, "vxlan-tunnel-addr-n1", "n1")
            .await
            .unwrap(),
        []
    );
    // IPIP needs the node's BGP address first, and says so.
    pool(&*store, "ipip", "10.2.0.0/24", 26, |p| {
        p.ipip_mode = EncapsulationMode::Always
    })
    .await;
    let error = n1
        .ensure_tunnel_address(Tunnel::Ipip, Family::V4)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("has no spec.bgp address"),
        "{error}"
    );
    let leftover = ipam::handles::addresses_of(&*store, "ipip-tunnel-addr-n1", "n1")
        .await
        .unwrap();
    assert_eq!(
        leftover,
        [],
        "the address is given back when it cannot be recorded"
    );
}
