use api::resources::{
    AsNumber, BGPConfiguration, BGPConfigurationSpec, BGPPeerSpec, BgpPassword, GoDuration,
    PeerAddress,
};
use api::selector::Selector;

use super::*;
use crate::desired::testing::{add_node, cidr, ip, node_mut};

fn no_passwords(_: &BgpPassword) -> Result<Vec<u8>, String> {
    Err("no secrets in this test".into())
}

fn file_password(password: &BgpPassword) -> Result<Vec<u8>, String> {
    match &password.file {
        Some(path) => Ok(path.as_bytes().to_vec()),
        None => Err("only files".into()),
    }
}

/// Nodes a, b, c on one subnet; b has an IPv6 address too, and so does a.
fn cluster() -> Cluster {
    let mut cluster = Cluster::default();
    add_node(&mut cluster, "a", "192.0.2.10/24");
    add_node(&mut cluster, "b", "192.0.2.11/24");
    add_node(&mut cluster, "c", "192.0.2.12/24");
    for (node, v6) in [("a", "fd00::a/64"), ("b", "fd00::b/64")] {
        node_mut(&mut cluster, node)
            .bgp
            .as_mut()
            .unwrap()
            .ipv6_address = Some(cidr(v6));
    }
    cluster
}

fn set_default(cluster: &mut Cluster, spec: BGPConfigurationSpec) {
    cluster
        .bgp_configurations
        .insert("default".into(), BGPConfiguration::new("default", spec));
}

fn add_peer(cluster: &mut Cluster, name: &str, spec: BGPPeerSpec) {
    cluster
        .bgp_peers
        .insert(name.into(), BGPPeer::new(name, spec));
}

fn label(cluster: &mut Cluster, node: &str, key: &str, value: &str) {
    cluster
        .nodes
        .get_mut(node)
        .unwrap()
        .metadata
        .labels
        .insert(key.into(), value.into());
}

/// A ToR at 192.0.2.1 in AS 65000, for every node.
fn tor() -> BGPPeerSpec {
    BGPPeerSpec {
        peer_ip: Some(PeerAddress {
            ip: ip("192.0.2.1"),
            port: None,
        }),
        as_number: Some(AsNumber(65000)),
        ..BGPPeerSpec::default()
    }
}

fn selector(text: &str) -> Selector {
    text.parse().unwrap()
}

fn peers_of(cluster: &Cluster, me: &str) -> Vec<(IpAddr, PeerKind)> {
    plan(cluster, me, RouterId::NodeAddress, false, &no_passwords)
        .unwrap()
        .peers
        .iter()
        .map(|(address, p)| (*address, p.kind))
        .collect()
}

#[test]
fn the_default_mesh_peers_with_every_other_node_in_each_shared_family() {
    let plan = plan(&cluster(), "a", RouterId::NodeAddress, false, &no_passwords).unwrap();
    let peers: Vec<IpAddr> = plan.peers.keys().copied().collect();
    assert_eq!(peers, [ip("192.0.2.11"), ip("192.0.2.12"), ip("fd00::b")]);
    let b = &plan.peers[&ip("192.0.2.11")];
    assert_eq!(b.kind, PeerKind::Mesh);
    assert_eq!(b.source, "b");
    assert_eq!(b.config.remote_as, Some(64512));
    assert_eq!(b.config.local_address, Some(ip("192.0.2.10")));
    assert_eq!(b.config.ttl, TtlPolicy::Hops(64));
    assert_eq!(
        plan.peers[&ip("fd00::b")].config.local_address,
        Some(ip("fd00::a"))
    );
    assert_eq!(plan.speaker.local_as, 64512);
    assert_eq!(
        plan.speaker.router_id,
        "192.0.2.10".parse::<Ipv4Addr>().unwrap()
    );
    assert_eq!(plan.speaker.cluster_id, None);
    // a has an IPv6 address: the IPv6 wildcard, which takes IPv4 too.
    assert_eq!(plan.speaker.listen, [socket("[::]:179")]);
}

fn socket(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

#[test]
fn calico_yaml_bind_mode_node_ip_listens_on_the_nodes_bgp_addresses_only() {
    let mut cluster = cluster();
    let listen = |cluster: &Cluster, node| {
        plan(cluster, node, RouterId::NodeAddress, false, &no_passwords)
            .unwrap()
            .speaker
            .listen
    };
    assert_eq!(listen(&cluster, "c"), [socket("0.0.0.0:179")]);
    set_default(
        &mut cluster,
        BGPConfigurationSpec {
            bind_mode: Some(BindMode::NodeIp),
            listen_port: Some(178),
            ..BGPConfigurationSpec::default()
        },
    );
    assert_eq!(
        listen(&cluster, "a"),
        [socket("192.0.2.10:178"), socket("[fd00::a]:178")]
    );
    assert_eq!(listen(&cluster, "c"), [socket("192.0.2.12:178")]);
}

#[test]
fn the_mesh_uses_each_nodes_own_as_and_the_clusters_mesh_restart_time() {
    let mut cluster = cluster();
    node_mut(&mut cluster, "b").bgp.as_mut().unwrap().as_number = Some(AsNumber(65010));
    set_default(
        &mut cluster,
        BGPConfigurationSpec {
            as_number: Some(AsNumber(65000)),
            node_mesh_max_restart_time: Some(GoDuration(Duration::from_secs(300))),
            ..BGPConfigurationSpec::default()
        },
    );
    let plan = plan(&cluster, "a", RouterId::NodeAddress, true, &no_passwords).unwrap();
    assert_eq!(plan.speaker.local_as, 65000);
    assert_eq!(plan.peers[&ip("192.0.2.11")].config.remote_as, Some(65010));
    assert_eq!(plan.peers[&ip("192.0.2.12")].config.remote_as, Some(65000));
    assert_eq!(
        plan.peers[&ip("192.0.2.11")].config.graceful_restart,
        bgp::speaker::PeerGracefulRestart::RestartTime(300)
    );
    let gr = plan.speaker.graceful_restart.unwrap();
    assert_eq!((gr.restart_time, gr.restarting), (120, true));
}

/// Before: nodeMeshMaxRestartTime was the speaker's restart time, offered to every
/// peer (seen failing: the ToR was offered 300).
#[test]
fn dualstack_node_mesh_max_restart_time_is_offered_to_mesh_sessions_only() {
    let mut cluster = cluster();
    set_default(
        &mut cluster,
        BGPConfigurationSpec {
            node_mesh_max_restart_time: Some(GoDuration(Duration::from_secs(300))),
            ..BGPConfigurationSpec::default()
        },
    );
    add_peer(&mut cluster, "tor", tor());
    let plan = plan(&cluster, "a", RouterId::NodeAddress, false, &no_passwords).unwrap();
    let offered = |peer: &str| match plan.peers[&ip(peer)].config.graceful_restart {
        bgp::speaker::PeerGracefulRestart::Speaker => {
            plan.speaker.graceful_restart.unwrap().restart_time
        }
        bgp::speaker::PeerGracefulRestart::RestartTime(time) => time,
        bgp::speaker::PeerGracefulRestart::Off => 0,
    };
    assert_eq!(offered("192.0.2.11"), 300, "mesh");
    assert_eq!(offered("fd00::b"), 300, "mesh over IPv6");
    assert_eq!(offered("192.0.2.1"), 120, "the ToR gets the default");
}

#[test]
fn dualstack_each_session_names_this_nodes_address_of_the_other_family_for_its_routes() {
    let mut cluster = cluster();
    add_peer(&mut cluster, "tor", tor());
    let of_a = plan(&cluster, "a", RouterId::NodeAddress, false, &no_passwords).unwrap();
    let other = |peer: &str| of_a.peers[&ip(peer)].config.other_family_address;
    assert_eq!(other("192.0.2.11"), Some(ip("fd00::a")), "mesh over IPv4");
    assert_eq!(other("fd00::b"), Some(ip("192.0.2.10")), "mesh over IPv6");
    assert_eq!(other("192.0.2.1"), Some(ip("fd00::a")), "the ToR");
    // c has no IPv6 address: its sessions carry IPv6 routes with what it has.
    let of_c = plan(&cluster, "c", RouterId::NodeAddress, false, &no_passwords).unwrap();
    assert_eq!(
        of_c.peers[&ip("192.0.2.10")].config.other_family_address,
        None
    );
}

#[test]
fn with_the_mesh_off_only_bgp_peers_remain() {
    let mut cluster = cluster();
    set_default(
        &mut cluster,
        BGPConfigurationSpec {
            node_to_node_mesh_enabled: Some(false),
            ..BGPConfigurationSpec::default()
        },
    );
    assert_eq!(peers_of(&cluster, "a"), []);
    add_peer(
        &mut cluster,
        "reflector",
        BGPPeerSpec {
            peer_ip: Some(PeerAddress {
                ip: ip("192.0.2.250"),
                port: Some(1179),
            }),
            as_number: Some(AsNumber(64512)),
            ..BGPPeerSpec::default()
        },
    );
    let plan = plan(&cluster, "a", RouterId::NodeAddress, false, &no_passwords).unwrap();
    let peer = &plan.peers[&ip("192.0.2.250")];
    assert_eq!((peer.kind, peer.config.port), (PeerKind::Global, 1179));
    assert_eq!(peer.source, "reflector");
}

#[test]
fn a_tor_peer_carries_its_as_password_gtsm_and_next_hop_mode() {
    let mut cluster = cluster();
    add_peer(
        &mut cluster,
        "tor",
        BGPPeerSpec {
            node: Some("a".into()),
            peer_ip: Some(PeerAddress {
                ip: ip("192.0.2.1"),
                port: None,
            }),
            as_number: Some(AsNumber(65001)),
            password: Some(BgpPassword {
                secret_key_ref: None,
                file: Some("/etc/tabby/tor-key".into()),
            }),
            ttl_security: Some(1),
            next_hop_mode: NextHopMode::SelfHop,
            num_allowed_local_as_numbers: Some(2),
            ..BGPPeerSpec::default()
        },
    );
    let plan = plan(&cluster, "a", RouterId::NodeAddress, false, &file_password).unwrap();
    let tor = &plan.peers[&ip("192.0.2.1")];
    assert_eq!(tor.kind, PeerKind::NodeSpecific);
    assert_eq!(tor.config.remote_as, Some(65001));
    assert_eq!(
        tor.config.md5_key.as_ref().map(|k| k.as_bytes()),
        Some(&b"/etc/tabby/tor-key"[..])
    );
    assert_eq!(tor.config.ttl, TtlPolicy::Security { hops: 1 });
    assert_eq!(tor.config.next_hop, Hop::SelfAlways);
    assert_eq!(tor.config.allowas_in, 2);
    assert_eq!(tor.config.export, Some(Policy::Accept));
    // Only node a has it.
    assert!(!peers_of(&cluster, "b").contains(&(ip("192.0.2.1"), PeerKind::NodeSpecific)));
}

#[test]
fn an_unreadable_password_leaves_that_peer_out_with_the_reason() {
    let mut cluster = cluster();
    add_peer(
        &mut cluster,
        "tor",
        BGPPeerSpec {
            peer_ip: Some(PeerAddress {
                ip: ip("192.0.2.1"),
                port: None,
            }),
            as_number: Some(AsNumber(65001)),
            password: Some(BgpPassword {
                secret_key_ref: None,
                file: Some("/missing".into()),
            }),
            ..BGPPeerSpec::default()
        },
    );
    let plan = plan(&cluster, "a", RouterId::NodeAddress, false, &no_passwords).unwrap();
    assert!(!plan.peers.contains_key(&ip("192.0.2.1")));
    assert!(
        plan.problems[0].contains("BGPPeer \"tor\": spec.password"),
        "{:?}",
        plan.problems
    );
}

/// Node c reflects (cluster id 1.1.1.1, label rr); every node peers with it.
fn reflected() -> Cluster {
    let mut cluster = cluster();
    set_default(
        &mut cluster,
        BGPConfigurationSpec {
            node_to_node_mesh_enabled: Some(false),
            ..BGPConfigurationSpec::default()
        },
    );
    node_mut(&mut cluster, "c")
        .bgp
        .as_mut()
        .unwrap()
        .route_reflector_cluster_id = Some("1.1.1.1".parse().unwrap());
    label(&mut cluster, "c", "rr", "true");
    add_peer(
        &mut cluster,
        "to-reflectors",
        BGPPeerSpec {
            node_selector: Some(Selector::all()),
            peer_selector: Some(selector("rr == 'true'")),
            ..BGPPeerSpec::default()
        },
    );
    cluster
}

#[test]
fn a_peer_selector_peers_clients_with_reflectors_and_reflectors_back_with_clients() {
    let cluster = reflected();
    assert_eq!(
        peers_of(&cluster, "a"),
        [(ip("192.0.2.12"), PeerKind::NodeSpecific)]
    );
    let reflector = plan(&cluster, "c", RouterId::NodeAddress, false, &no_passwords).unwrap();
    assert_eq!(
        reflector.speaker.cluster_id,
        Some("1.1.1.1".parse().unwrap())
    );
    let clients: Vec<(IpAddr, bool)> = reflector
        .peers
        .iter()
        .map(|(a, p)| (*a, p.config.rr_client))
        .collect();
    assert_eq!(
        clients,
        [(ip("192.0.2.10"), true), (ip("192.0.2.11"), true)]
    );
}

#[test]
fn two_reflectors_of_one_cluster_are_not_each_others_clients() {
    let mut cluster = reflected();
    node_mut(&mut cluster, "b")
        .bgp
        .as_mut()
        .unwrap()
        .route_reflector_cluster_id = Some("1.1.1.1".parse().unwrap());
    label(&mut cluster, "b", "rr", "true");
    let reflector = plan(&cluster, "c", RouterId::NodeAddress, false, &no_passwords).unwrap();
    assert!(!reflector.peers[&ip("192.0.2.11")].config.rr_client);
    assert!(reflector.peers[&ip("192.0.2.10")].config.rr_client);
}

#[test]
fn a_node_without_an_ipv4_address_cannot_speak_and_says_why() {
    let mut cluster = cluster();
    node_mut(&mut cluster, "a")
        .bgp
        .as_mut()
        .unwrap()
        .ipv4_address = None;
    let error = plan(&cluster, "a", RouterId::NodeAddress, false, &no_passwords).unwrap_err();
    assert_eq!(error, NoBgp::NoRouterId("a".into()));
    assert!(error.to_string().contains("--router-id"), "{error}");
    assert!(plan(&cluster, "zz", RouterId::NodeAddress, false, &no_passwords).is_err());
}

/// Before: `NoBgp::NoRouterId` for every node without an IPv4 address.
#[test]
fn ipv6_only_nodes_speak_bgp_over_ipv6_with_a_hash_or_fixed_router_id() {
    let mut cluster = cluster();
    for node in ["a", "b"] {
        node_mut(&mut cluster, node)
            .bgp
            .as_mut()
            .unwrap()
            .ipv4_address = None;
    }
    let hashed = plan(&cluster, "a", RouterId::Hash, false, &no_passwords).unwrap();
    assert_eq!(
        hashed.speaker.router_id,
        super::super::router_id::hashed("a")
    );
    let peers: Vec<IpAddr> = hashed.peers.keys().copied().collect();
    assert_eq!(peers, [ip("fd00::b")], "c has no IPv6 address");
    assert_eq!(
        hashed.peers[&ip("fd00::b")].config.local_address,
        Some(ip("fd00::a"))
    );
    assert_eq!(
        hashed.speaker.listen,
        [SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 179)]
    );
    let fixed = "10.1.2.3".parse().unwrap();
    let plan = plan(&cluster, "a", RouterId::Fixed(fixed), false, &no_passwords).unwrap();
    assert_eq!(plan.speaker.router_id, fixed);
}

#[test]
fn a_peers_filters_are_compiled_for_its_session_and_a_missing_one_leaves_it_out() {
    let mut cluster = cluster();
    let rule = api::resources::FilterRule {
        cidr: Some(cidr("10.244.0.0/16")),
        match_operator: Some(api::resources::MatchOperator::In),
        prefix_length: None,
        peer_type: None,
        communities: None,
        action: api::resources::FilterAction::Accept,
        operations: Vec::new(),
    };
    cluster.bgp_filters.insert(
        "pods-only".into(),
        api::resources::BGPFilter::new(
            "pods-only",
            api::resources::BGPFilterSpec {
                export_v4: vec![rule],
                ..Default::default()
            },
        ),
    );
    let tor = |filters: Vec<String>| BGPPeerSpec {
        peer_ip: Some(PeerAddress {
            ip: ip("192.0.2.1"),
            port: None,
        }),
        as_number: Some(AsNumber(65001)),
        filters,
        ..BGPPeerSpec::default()
    };
    add_peer(&mut cluster, "tor", tor(vec!["pods-only".into()]));
    let plan = plan(&cluster, "a", RouterId::NodeAddress, false, &no_passwords).unwrap();
    let config = &plan.peers[&ip("192.0.2.1")].config;
    assert_eq!(config.export_filter.as_ref().unwrap().terms.len(), 1);
    assert!(config.import_filter.as_ref().unwrap().terms.is_empty());

    add_peer(&mut cluster, "tor", tor(vec!["missing".into()]));
    let plan = super::plan(&cluster, "a", RouterId::NodeAddress, false, &no_passwords).unwrap();
    assert!(!plan.peers.contains_key(&ip("192.0.2.1")));
    assert!(
        plan.problems[0].contains("no BGPFilter \"missing\""),
        "{:?}",
        plan.problems
    );
}

#[test]
fn hardening_every_session_has_a_default_prefix_limit() {
    let mut cluster = cluster();
    let spec: BGPPeerSpec = serde_json::from_value(serde_json::json!({
        "peerIP": "192.0.2.1", "asNumber": 65000,
    }))
    .unwrap();
    add_peer(&mut cluster, "tor", spec);
    let plan = plan(&cluster, "a", RouterId::NodeAddress, false, &no_passwords).unwrap();
    assert_eq!(plan.peers.len(), 4, "{:?}", plan.peers.keys());
    for (address, peer) in &plan.peers {
        assert_eq!(
            peer.config.max_prefixes,
            Some(bgp::speaker::DEFAULT_MAX_PREFIXES),
            "{address}"
        );
    }
}

#[test]
fn hardening_routers_get_only_this_nodes_routes_unless_the_peer_opts_in() {
    let mut cluster = cluster();
    for (name, address, opt_in) in [("tor-a", "192.0.2.1", false), ("tor-b", "192.0.2.2", true)] {
        let spec: BGPPeerSpec = serde_json::from_value(serde_json::json!({
            "peerIP": address, "asNumber": 65000, "advertiseLearnedRoutes": opt_in,
        }))
        .unwrap();
        add_peer(&mut cluster, name, spec);
    }
    let plan = plan(&cluster, "a", RouterId::NodeAddress, false, &no_passwords).unwrap();
    let learned = |address: &str| plan.peers[&ip(address)].config.export_learned;
    assert!(!learned("192.0.2.1"));
    assert!(learned("192.0.2.2"));
    // Nor does a node that reflects nothing pass learned routes to the mesh.
    assert!(!learned("192.0.2.11"));
}

#[test]
fn hardening_a_peer_is_a_node_a_reflector_or_a_router_by_what_it_is_not_by_its_as() {
    let mut cluster = cluster();
    // b says it is in another AS: still a node. c reflects.
    node_mut(&mut cluster, "b").bgp.as_mut().unwrap().as_number = Some(AsNumber(65099));
    node_mut(&mut cluster, "c")
        .bgp
        .as_mut()
        .unwrap()
        .route_reflector_cluster_id = Some("1.1.1.1".parse().unwrap());
    for (name, address, asn) in [("rr", "192.0.2.50", 64512), ("tor", "192.0.2.1", 65000)] {
        let spec: BGPPeerSpec = serde_json::from_value(serde_json::json!({
            "peerIP": address, "asNumber": asn,
        }))
        .unwrap();
        add_peer(&mut cluster, name, spec);
    }
    let plan = plan(&cluster, "a", RouterId::NodeAddress, false, &no_passwords).unwrap();
    let roles = plan.roles();
    assert_eq!(roles[&ip("192.0.2.11")], PeerRole::Node);
    assert_eq!(roles[&ip("192.0.2.12")], PeerRole::Reflector);
    assert_eq!(roles[&ip("192.0.2.50")], PeerRole::Reflector);
    assert_eq!(roles[&ip("192.0.2.1")], PeerRole::Router);
    // Only reflectors may send ORIGINATOR_ID, and send every path.
    for (address, reflector) in [
        ("192.0.2.11", false),
        ("192.0.2.12", true),
        ("192.0.2.50", true),
    ] {
        let config = &plan.peers[&ip(address)].config;
        assert_eq!(config.keep_reflection_attributes, reflector, "{address}");
        assert_eq!(config.add_path_receive, reflector, "{address}");
    }
}

#[test]
fn calico_yaml_a_peers_max_restart_time_is_offered_to_that_peer_only() {
    let mut cluster = cluster();
    add_peer(
        &mut cluster,
        "tor",
        BGPPeerSpec {
            max_restart_time: Some(GoDuration(Duration::from_secs(15))),
            ..tor()
        },
    );
    let plan = plan(&cluster, "a", RouterId::NodeAddress, false, &no_passwords).unwrap();
    assert_eq!(
        plan.peers[&ip("192.0.2.1")].config.graceful_restart,
        bgp::speaker::PeerGracefulRestart::RestartTime(15)
    );
    assert_eq!(
        plan.peers[&ip("192.0.2.11")].config.graceful_restart,
        bgp::speaker::PeerGracefulRestart::Speaker
    );
    assert_eq!(plan.problems, Vec::<String>::new());
}

#[test]
fn bfd_runs_beside_the_mesh_and_a_peer_single_hop_on_the_nodes_subnet_multihop_beyond() {
    use api::resources::BfdSpec;
    let mut cluster = cluster();
    let bfd = |plan: &DesiredBgp, peer: &str| plan.peers[&ip(peer)].bfd.clone();
    let off = plan(&cluster, "a", RouterId::NodeAddress, false, &no_passwords).unwrap();
    assert_eq!(bfd(&off, "192.0.2.11"), None, "off unless configured");
    set_default(
        &mut cluster,
        BGPConfigurationSpec {
            bfd: Some(BfdSpec {
                enabled: true,
                multiplier: Some(5),
                ..BfdSpec::default()
            }),
            ..BGPConfigurationSpec::default()
        },
    );
    add_peer(
        &mut cluster,
        "tor",
        BGPPeerSpec {
            node: Some("a".into()),
            peer_ip: Some("198.51.100.1".parse().unwrap()),
            as_number: Some(AsNumber(65001)),
            ttl_security: Some(2),
            bfd: Some(BfdSpec {
                enabled: true,
                graceful_restart_on_down: true,
                strict: true,
                ..BfdSpec::default()
            }),
            ..BGPPeerSpec::default()
        },
    );
    let plan = plan(&cluster, "a", RouterId::NodeAddress, false, &no_passwords).unwrap();
    let mesh = bfd(&plan, "192.0.2.11").expect("the mesh runs BFD");
    assert_eq!(
        mesh.session,
        bfd::driver::PeerConfig {
            remote: ip("192.0.2.11"),
            local: ip("192.0.2.10"),
            hop: bfd::driver::Hop::Single,
            timers: bfd::Timers::new(
                std::time::Duration::from_millis(300),
                std::time::Duration::from_millis(300),
                5
            )
            .unwrap(),
        }
    );
    assert!(!mesh.graceful, "BFD wins by default");
    assert_eq!(bfd(&plan, "fd00::b").unwrap().session.local, ip("fd00::a"));
    let tor = bfd(&plan, "198.51.100.1").expect("the BGPPeer runs BFD");
    assert_eq!(tor.session.hop, bfd::driver::Hop::Multi { min_ttl: 254 });
    assert_eq!(tor.session.timers, bfd::Timers::default());
    assert!(tor.graceful);
    let strict = |peer: &str| plan.peers[&ip(peer)].config.bfd_strict;
    assert!(strict("198.51.100.1"), "its session waits for BFD Up");
    assert!(!strict("192.0.2.11"), "the mesh's does not");
}
