use super::*;
use crate::dataplane::model::NextHop;
use crate::dataplane::parse::{ip, net};

const MAC_A: Mac = Mac([0x66, 0xee, 0, 0, 0, 1]);
const MAC_B: Mac = Mac([0x66, 0xee, 0, 0, 0, 2]);

fn workload(dst: &str, dev: &str) -> Route {
    Route::workload(net(dst), dev).unwrap()
}

fn desired(routes: impl IntoIterator<Item = Route>) -> DesiredState {
    let mut state = DesiredState::default();
    routes.into_iter().for_each(|r| state.insert_route(r));
    state
}

/// The kernel holding exactly `routes`, as the reader reports them.
fn observed(routes: impl IntoIterator<Item = Route>) -> Observed {
    Observed {
        routes: routes
            .into_iter()
            .map(|r| (r.dst, Some(r.target)))
            .collect(),
        ..Observed::default()
    }
}

fn vxlan() -> VxlanDevice {
    VxlanDevice::new(ip("192.0.2.10"), MAC_A, 1450)
}

fn observed_vxlan(device: VxlanDevice) -> ObservedVxlan {
    ObservedVxlan {
        device: Some(device),
        learning: false,
        up: true,
    }
}

#[test]
fn an_empty_kernel_gets_every_desired_route() {
    let want = [
        workload("10.0.0.1/32", "cali1"),
        Route::blackhole(net("10.0.0.0/26")),
    ];
    let plan = diff(&desired(want.clone()), &Observed::default());
    assert_eq!(
        plan.routes,
        want.map(RouteChange::Replace)
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_kernel_that_already_matches_needs_no_changes() {
    let want = [
        workload("10.0.0.1/32", "cali1"),
        workload("fd00::1/128", "cali1"),
        Route::blackhole(net("10.0.0.0/26")),
        Route::via(
            net("10.0.1.0/26"),
            [NextHop::onlink(ip("192.0.2.2"), "tunl0")],
        )
        .unwrap(),
        Route::via(
            net("10.0.2.0/26"),
            [NextHop::via(ip("192.0.2.3")), NextHop::via(ip("192.0.2.4"))],
        )
        .unwrap(),
    ];
    let plan = diff(&desired(want.clone()), &observed(want));
    assert!(plan.is_empty(), "{plan:?}");
}

#[test]
fn a_gateway_route_asked_without_a_device_matches_the_device_the_kernel_chose() {
    let want = Route::via(net("10.0.1.0/26"), [NextHop::via(ip("192.0.2.2"))]).unwrap();
    let mut got = want.clone();
    got.target = RouteTarget::Gateway(NextHop {
        device: Some("eth0".into()),
        ..NextHop::via(ip("192.0.2.2"))
    });
    assert!(diff(&desired([want]), &observed([got])).is_empty());
}

#[test]
fn a_route_changed_behind_tabbys_back_is_replaced_in_place() {
    let want = workload("10.0.0.1/32", "cali1");
    let plan = diff(
        &desired([want.clone()]),
        &observed([workload("10.0.0.1/32", "cali2")]),
    );
    assert_eq!(plan.routes, vec![RouteChange::Replace(want)]);
}

#[test]
fn an_owned_route_of_a_shape_tabby_never_programs_is_replaced() {
    let want = Route::blackhole(net("10.0.0.0/26"));
    let kernel = Observed {
        routes: [(want.dst, None)].into(),
        ..Observed::default()
    };
    assert_eq!(
        diff(&desired([want.clone()]), &kernel).routes,
        vec![RouteChange::Replace(want)]
    );
}

#[test]
fn a_route_removed_from_desired_is_deleted() {
    let keep = workload("10.0.0.1/32", "cali1");
    let gone = workload("10.0.0.2/32", "cali2");
    let plan = diff(&desired([keep.clone()]), &observed([keep, gone.clone()]));
    assert_eq!(plan.routes, vec![RouteChange::Delete(gone.dst)]);
}

#[test]
fn an_ecmp_route_that_lost_a_next_hop_is_replaced() {
    let hops = [NextHop::via(ip("192.0.2.3")), NextHop::via(ip("192.0.2.4"))];
    let want = Route::via(net("10.0.2.0/26"), hops.clone()).unwrap();
    let got = Route::via(net("10.0.2.0/26"), [hops[0].clone()]).unwrap();
    assert_eq!(
        diff(&desired([want.clone()]), &observed([got])).routes,
        vec![RouteChange::Replace(want)]
    );
}

#[test]
fn onlink_and_plain_next_hops_differ() {
    let want = Route::via(
        net("10.0.1.0/26"),
        [NextHop::onlink(ip("192.0.2.2"), "tunl0")],
    )
    .unwrap();
    let mut got = want.clone();
    got.target = RouteTarget::Gateway(NextHop {
        onlink: false,
        ..NextHop::onlink(ip("192.0.2.2"), "tunl0")
    });
    assert_eq!(
        diff(&desired([want.clone()]), &observed([got])).routes,
        vec![RouteChange::Replace(want)]
    );
}

#[test]
fn a_destination_held_by_another_protocol_is_a_conflict_not_a_change() {
    let want = workload("10.0.0.1/32", "cali1");
    let kernel = Observed {
        foreign: [want.dst].into(),
        ..Observed::default()
    };
    let plan = diff(&desired([want.clone()]), &kernel);
    assert!(plan.is_empty());
    assert_eq!(plan.conflicts, vec![want]);
}

#[test]
fn foreign_routes_are_never_deleted() {
    let kernel = Observed {
        foreign: [net("10.9.0.0/16")].into(),
        ..Observed::default()
    };
    assert!(diff(&DesiredState::default(), &kernel).is_empty());
}

#[test]
fn a_missing_vxlan_device_is_created_with_every_vtep() {
    let mut want = desired([]);
    want.vxlan = Some(vxlan());
    want.vteps = vec![crate::dataplane::model::Vtep {
        tunnel_address: ip("10.0.1.0"),
        mac: MAC_B,
        underlay: ip("192.0.2.2"),
    }];
    let plan = diff(&want, &Observed::default());
    assert_eq!(plan.link, Some(LinkChange::Create(vxlan())));
    assert_eq!(
        plan.neighbours,
        vec![
            NeighbourChange::ReplaceNeighbour {
                address: ip("10.0.1.0"),
                mac: MAC_B
            },
            NeighbourChange::ReplaceFdb {
                mac: MAC_B,
                underlay: ip("192.0.2.2")
            },
        ]
    );
}

#[test]
fn a_vxlan_device_with_another_vni_or_learning_on_is_recreated() {
    let mut want = desired([]);
    want.vxlan = Some(vxlan());
    let other_vni = Observed {
        vxlan: Some(observed_vxlan(VxlanDevice { vni: 1, ..vxlan() })),
        ..Observed::default()
    };
    assert_eq!(
        diff(&want, &other_vni).link,
        Some(LinkChange::Recreate(vxlan()))
    );
    let learning = Observed {
        vxlan: Some(ObservedVxlan {
            learning: true,
            ..observed_vxlan(vxlan())
        }),
        ..Observed::default()
    };
    assert_eq!(
        diff(&want, &learning).link,
        Some(LinkChange::Recreate(vxlan()))
    );
    let not_vxlan = Observed {
        vxlan: Some(ObservedVxlan {
            device: None,
            learning: false,
            up: true,
        }),
        ..Observed::default()
    };
    assert_eq!(
        diff(&want, &not_vxlan).link,
        Some(LinkChange::Recreate(vxlan()))
    );
}

#[test]
fn a_vxlan_device_with_another_mtu_or_down_is_updated_in_place() {
    let mut want = desired([]);
    want.vxlan = Some(vxlan());
    let mtu = Observed {
        vxlan: Some(observed_vxlan(VxlanDevice {
            mtu: 1500,
            ..vxlan()
        })),
        ..Observed::default()
    };
    assert_eq!(diff(&want, &mtu).link, Some(LinkChange::Update(vxlan())));
    let down = Observed {
        vxlan: Some(ObservedVxlan {
            up: false,
            ..observed_vxlan(vxlan())
        }),
        ..Observed::default()
    };
    assert_eq!(diff(&want, &down).link, Some(LinkChange::Update(vxlan())));
}

#[test]
fn recreating_the_vxlan_device_reprograms_routes_through_it() {
    let route = Route::via(
        net("10.0.1.0/26"),
        [NextHop::onlink(ip("10.0.1.0"), VXLAN_DEVICE)],
    )
    .unwrap();
    let mut want = desired([route.clone()]);
    want.vxlan = Some(vxlan());
    let mut kernel = observed([route.clone()]);
    kernel.vxlan = Some(observed_vxlan(VxlanDevice {
        port: 8472,
        ..vxlan()
    }));
    assert_eq!(
        diff(&want, &kernel).routes,
        vec![RouteChange::Replace(route)]
    );
}

#[test]
fn a_vxlan_device_no_longer_wanted_is_deleted_without_touching_its_entries() {
    let kernel = Observed {
        vxlan: Some(observed_vxlan(vxlan())),
        neighbours: [(ip("10.0.1.0"), MAC_B)].into(),
        fdb: [(MAC_B, ip("192.0.2.2"))].into(),
        ..Observed::default()
    };
    let plan = diff(&DesiredState::default(), &kernel);
    assert_eq!(plan.link, Some(LinkChange::Delete));
    assert!(plan.neighbours.is_empty());
}

#[test]
fn a_vtep_that_moved_gets_its_fdb_entry_replaced_and_the_stale_remote_deleted() {
    let mut want = desired([]);
    want.vxlan = Some(vxlan());
    want.vteps = vec![crate::dataplane::model::Vtep {
        tunnel_address: ip("10.0.1.0"),
        mac: MAC_B,
        underlay: ip("192.0.2.3"),
    }];
    let kernel = Observed {
        vxlan: Some(observed_vxlan(vxlan())),
        neighbours: [(ip("10.0.1.0"), MAC_B), (ip("10.0.9.0"), MAC_A)].into(),
        fdb: [(MAC_B, ip("192.0.2.2"))].into(),
        ..Observed::default()
    };
    assert_eq!(
        diff(&want, &kernel).neighbours,
        vec![
            NeighbourChange::DeleteNeighbour {
                address: ip("10.0.9.0"),
                mac: MAC_A
            },
            NeighbourChange::ReplaceFdb {
                mac: MAC_B,
                underlay: ip("192.0.2.3")
            },
            NeighbourChange::DeleteFdb {
                mac: MAC_B,
                underlay: ip("192.0.2.2")
            },
        ]
    );
}

#[test]
fn tunl0_is_asked_for_when_missing_and_set_up_when_down_or_of_another_mtu() {
    let mut want = desired([]);
    want.ipip = Some(IpipDevice { mtu: 1480 });
    let device = IpipDevice { mtu: 1480 };
    assert_eq!(
        diff(&want, &Observed::default()).ipip,
        Some(IpipChange::Create(device))
    );
    for (mtu, up) in [(1500, true), (1480, false)] {
        let kernel = Observed {
            ipip: Some(ObservedIpip { mtu, up }),
            ..Observed::default()
        };
        assert_eq!(diff(&want, &kernel).ipip, Some(IpipChange::Update(device)));
    }
    let right = Observed {
        ipip: Some(ObservedIpip {
            mtu: 1480,
            up: true,
        }),
        ..Observed::default()
    };
    assert!(diff(&want, &right).is_empty());
}

#[test]
fn tunl0_is_left_alone_without_ipip_even_with_addresses_on_it() {
    let kernel = Observed {
        ipip: Some(ObservedIpip {
            mtu: 1500,
            up: false,
        }),
        addresses: [(IPIP_DEVICE.to_owned(), [net("10.9.9.9/32")].into())].into(),
        ..Observed::default()
    };
    assert!(diff(&DesiredState::default(), &kernel).is_empty());
}

#[test]
fn the_tunnel_address_is_added_and_any_other_address_removed() {
    let mut want = desired([]);
    want.ipip = Some(IpipDevice { mtu: 1480 });
    want.tunnel_addresses = [(IPIP_DEVICE.to_owned(), ip("10.244.0.1"))].into();
    let kernel = Observed {
        ipip: Some(ObservedIpip {
            mtu: 1480,
            up: true,
        }),
        addresses: [(IPIP_DEVICE.to_owned(), [net("10.244.0.9/32")].into())].into(),
        ..Observed::default()
    };
    assert_eq!(
        diff(&want, &kernel).addresses,
        vec![
            AddressChange::Add {
                device: IPIP_DEVICE.into(),
                address: ip("10.244.0.1")
            },
            AddressChange::Delete {
                device: IPIP_DEVICE.into(),
                address: net("10.244.0.9/32")
            },
        ]
    );
}

#[test]
fn a_recreated_vxlan_device_gets_its_tunnel_address_again() {
    let mut want = desired([]);
    want.vxlan = Some(vxlan());
    want.tunnel_addresses = [(VXLAN_DEVICE.to_owned(), ip("10.244.0.1"))].into();
    let kernel = Observed {
        vxlan: Some(observed_vxlan(VxlanDevice { vni: 1, ..vxlan() })),
        addresses: [(VXLAN_DEVICE.to_owned(), [net("10.244.0.1/32")].into())].into(),
        ..Observed::default()
    };
    assert_eq!(
        diff(&want, &kernel).addresses,
        vec![AddressChange::Add {
            device: VXLAN_DEVICE.into(),
            address: ip("10.244.0.1")
        }]
    );
}

#[test]
fn preserving_keeps_gateway_routes_but_adds_missing_ones_and_fixes_local_ones() {
    let kept = Route::via(net("10.0.1.0/26"), [NextHop::via(ip("192.0.2.2"))]).unwrap();
    let moved = Route::via(net("10.0.2.0/26"), [NextHop::via(ip("192.0.2.3"))]).unwrap();
    let new = Route::via(net("10.0.3.0/26"), [NextHop::via(ip("192.0.2.4"))]).unwrap();
    let stale_workload = workload("10.0.0.9/32", "cali9");
    let now_local = Route::blackhole(net("10.0.4.0/26"));
    let mut want = desired([
        Route::via(net("10.0.2.0/26"), [NextHop::via(ip("192.0.2.9"))]).unwrap(),
        new.clone(),
        now_local.clone(),
    ]);
    want.preserve_gateways = true;
    let kernel = observed([
        kept,
        moved,
        stale_workload.clone(),
        Route::via(net("10.0.4.0/26"), [NextHop::via(ip("192.0.2.5"))]).unwrap(),
    ]);
    let plan = diff(&want, &kernel);
    assert_eq!(
        plan.routes,
        vec![
            RouteChange::Replace(new),
            RouteChange::Replace(now_local),
            RouteChange::Delete(stale_workload.dst),
        ]
    );
}

#[test]
fn changes_print_like_ip_commands() {
    let change = RouteChange::Replace(workload("10.0.0.1/32", "cali1"));
    assert_eq!(
        change.to_string(),
        "replace route 10.0.0.1/32 dev cali1 scope link"
    );
    assert_eq!(
        RouteChange::Delete(net("10.0.0.0/26")).to_string(),
        "delete route 10.0.0.0/26"
    );
}

/// Convergence: applying a plan to a simulated kernel leaves nothing to do.
mod convergence {
    use proptest::prelude::*;

    use super::*;
    use crate::dataplane::model::Vtep;

    fn dst() -> impl Strategy<Value = IpNet> {
        prop_oneof![
            (0u8..6).prop_map(|i| net(&format!("10.0.0.{i}/32"))),
            (0u8..3).prop_map(|i| net(&format!("10.1.{i}.0/26"))),
        ]
    }

    fn hop() -> impl Strategy<Value = NextHop> {
        prop_oneof![
            (1u8..4).prop_map(|i| NextHop::via(ip(&format!("192.0.2.{i}")))),
            (1u8..4).prop_map(|i| NextHop::onlink(ip(&format!("192.0.2.{i}")), "tunl0")),
            Just(NextHop::onlink(ip("10.0.4.0"), VXLAN_DEVICE)),
        ]
    }

    fn target() -> impl Strategy<Value = RouteTarget> {
        prop_oneof![
            prop_oneof![Just("cali1"), Just("cali2")]
                .prop_map(|d| RouteTarget::Workload { device: d.into() }),
            Just(RouteTarget::Blackhole),
            prop::collection::vec(hop(), 1..3).prop_map(|hops| Route::via(
                net("10.9.0.0/16"),
                hops
            )
            .unwrap()
            .target),
        ]
    }

    fn vxlan() -> impl Strategy<Value = Option<VxlanDevice>> {
        prop::option::of(
            (1400u32..1402, prop::bool::ANY).prop_map(|(mtu, other_vni)| {
                let vni = if other_vni { 7 } else { 4096 };
                VxlanDevice {
                    vni,
                    ..VxlanDevice::new(ip("192.0.2.10"), MAC_A, mtu)
                }
            }),
        )
    }

    fn vtep() -> impl Strategy<Value = (IpAddr, Mac, IpAddr)> {
        (0u8..3, 0u8..3, 0u8..3).prop_map(|(t, m, u)| {
            (
                ip(&format!("10.0.{t}.0")),
                Mac([0x66, 0, 0, 0, 0, m]),
                ip(&format!("192.0.2.{u}")),
            )
        })
    }

    fn ipip() -> impl Strategy<Value = Option<IpipDevice>> {
        prop::option::of((1479u32..1481).prop_map(|mtu| IpipDevice { mtu }))
    }

    /// Addresses on the tunnel devices: one of a few, on either device.
    fn tunnel_address() -> impl Strategy<Value = (String, IpAddr)> {
        (prop_oneof![Just(IPIP_DEVICE), Just(VXLAN_DEVICE)], 0u8..3)
            .prop_map(|(device, i)| (device.to_owned(), ip(&format!("10.8.0.{i}"))))
    }

    fn desired() -> impl Strategy<Value = DesiredState> {
        (
            prop::collection::btree_map(dst(), target(), 0..8),
            vxlan(),
            prop::collection::vec(vtep(), 0..3),
            ipip(),
            prop::collection::btree_map(
                prop_oneof![Just(IPIP_DEVICE), Just(VXLAN_DEVICE)].prop_map(String::from),
                (0u8..3).prop_map(|i| ip(&format!("10.8.0.{i}"))),
                0..3,
            ),
            prop::bool::ANY,
        )
            .prop_map(
                |(routes, vxlan, vteps, ipip, tunnel_addresses, preserve_gateways)| DesiredState {
                    routes,
                    vxlan,
                    vteps: vteps
                        .into_iter()
                        .map(|(tunnel_address, mac, underlay)| Vtep {
                            tunnel_address,
                            mac,
                            underlay,
                        })
                        .collect(),
                    ipip,
                    tunnel_addresses,
                    preserve_gateways,
                },
            )
    }

    fn observed() -> impl Strategy<Value = Observed> {
        (
            prop::collection::btree_map(dst(), prop::option::of(target()), 0..8),
            prop::collection::btree_set(dst(), 0..3),
            prop::option::of((vxlan(), prop::bool::ANY, prop::bool::ANY)),
            prop::collection::vec(vtep(), 0..3),
            prop::option::of(
                (1479u32..1481, prop::bool::ANY).prop_map(|(mtu, up)| ObservedIpip { mtu, up }),
            ),
            prop::collection::vec(tunnel_address(), 0..3),
        )
            .prop_map(|(routes, foreign, link, entries, ipip, addresses)| {
                let mut kernel = Observed {
                    routes,
                    foreign,
                    vxlan: link.map(|(device, learning, up)| ObservedVxlan {
                        device,
                        learning,
                        up,
                    }),
                    neighbours: entries.iter().map(|&(t, m, _)| (t, m)).collect(),
                    fdb: entries.iter().map(|&(_, m, u)| (m, u)).collect(),
                    ipip,
                    addresses: BTreeMap::new(),
                };
                // Only devices that exist hold addresses.
                for (device, address) in addresses {
                    let exists = match device.as_str() {
                        VXLAN_DEVICE => kernel.vxlan.is_some(),
                        _ => kernel.ipip.is_some(),
                    };
                    if exists {
                        kernel
                            .addresses
                            .entry(device)
                            .or_default()
                            .insert(IpNet::from(address));
                    }
                }
                kernel
            })
    }

    /// What the kernel does with `plan`, as far as tabby can see.
    fn apply(plan: &KernelChanges, mut kernel: Observed) -> Observed {
        let flush = |kernel: &mut Observed| {
            kernel.neighbours.clear();
            kernel.fdb.clear();
            kernel.addresses.remove(VXLAN_DEVICE);
            kernel
                .routes
                .retain(|_, t| !t.as_ref().is_some_and(|t| t.uses_device(VXLAN_DEVICE)));
        };
        match &plan.link {
            Some(LinkChange::Create(d) | LinkChange::Recreate(d)) => {
                flush(&mut kernel);
                kernel.vxlan = Some(ObservedVxlan {
                    device: Some(d.clone()),
                    learning: false,
                    up: true,
                });
            }
            Some(LinkChange::Update(d)) => {
                kernel.vxlan = Some(ObservedVxlan {
                    device: Some(d.clone()),
                    learning: false,
                    up: true,
                });
            }
            Some(LinkChange::Delete) => {
                flush(&mut kernel);
                kernel.vxlan = None;
            }
            None => {}
        }
        if let Some(IpipChange::Create(d) | IpipChange::Update(d)) = plan.ipip {
            kernel.ipip = Some(ObservedIpip {
                mtu: d.mtu,
                up: true,
            });
        }
        for change in &plan.addresses {
            match change {
                AddressChange::Add { device, address } => {
                    kernel
                        .addresses
                        .entry(device.clone())
                        .or_default()
                        .insert(IpNet::from(*address));
                }
                AddressChange::Delete { device, address } => {
                    if let Some(set) = kernel.addresses.get_mut(device) {
                        set.remove(address);
                    }
                }
            }
        }
        kernel.addresses.retain(|_, set| !set.is_empty());
        for change in &plan.neighbours {
            match *change {
                NeighbourChange::ReplaceNeighbour { address, mac } => {
                    kernel.neighbours.insert(address, mac);
                }
                NeighbourChange::DeleteNeighbour { address, .. } => {
                    kernel.neighbours.remove(&address);
                }
                NeighbourChange::ReplaceFdb { mac, underlay } => {
                    // Replace rewrites one remote of the MAC (the kernel's first).
                    if let Some(first) = kernel.fdb.iter().find(|(m, _)| *m == mac).copied() {
                        kernel.fdb.remove(&first);
                    }
                    kernel.fdb.insert((mac, underlay));
                }
                NeighbourChange::DeleteFdb { mac, underlay } => {
                    kernel.fdb.remove(&(mac, underlay));
                }
            }
        }
        for change in &plan.routes {
            match change {
                RouteChange::Replace(route) => {
                    kernel.routes.insert(route.dst, Some(route.target.clone()));
                }
                RouteChange::Delete(dst) => {
                    kernel.routes.remove(dst);
                }
            }
        }
        kernel
    }

    proptest! {
        #[test]
        fn one_plan_takes_any_kernel_to_the_desired_state(desired in desired(), kernel in observed()) {
            let plan = diff(&desired, &kernel);
            let after = apply(&plan, kernel.clone());
            let again = diff(&desired, &after);
            prop_assert!(again.is_empty(), "left over: {again:?}");
            prop_assert_eq!(again.conflicts, plan.conflicts);
            // Foreign routes are never changed, whatever the plan.
            prop_assert_eq!(after.foreign, kernel.foreign);
        }
    }
}
