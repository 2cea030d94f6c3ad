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

fn selector(text: &str) -> Selector {
    text.parse().unwrap()
}

fn peers_of(cluster: &Cluster, me: &str) -> Vec<(IpAddr, PeerKind)> {
    plan(cluster, me, false, &no_passwords)
        .unwrap()
        .peers
        .iter()
        .map(|(address, p)| (*address, p.kind))
        .collect()
}

#[test]
fn the_default_mesh_peers_with_every_other_node_in_each_shared_family() {
    let plan = plan(&cluster(), "a", false, &no_passwords).unwrap();
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
    assert_eq!(plan.speaker.listen.map(|l| l.port()), Some(179));
}

#[test]
fn the_mesh_uses_each_nodes_own_as_and_the_clusters_restart_time() {
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
    let plan = plan(&cluster, "a", true, &no_passwords).unwrap();
    assert_eq!(plan.speaker.local_as, 65000);
    assert_eq!(plan.peers[&ip("192.0.2.11")].config.remote_as, Some(65010));
    assert_eq!(plan.peers[&ip("192.0.2.12")].config.remote_as, Some(65000));
    let gr = plan.speaker.graceful_restart.unwrap();
    assert_eq!((gr.restart_time, gr.restarting), (300, true));
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
    let plan = plan(&cluster, "a", false, &no_passwords).unwrap();
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
    let plan = plan(&cluster, "a", false, &file_password).unwrap();
    let tor = &plan.peers[&ip("192.0.2.1")];
    assert_eq!(tor.kind, PeerKind::NodeSpecific);
    assert_eq!(tor.config.remote_as, Some(65001));
    assert_eq!(
        tor.config.md5_key.as_deref(),
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
    let plan = plan(&cluster, "a", false, &no_passwords).unwrap();
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
    let reflector = plan(&cluster, "c", false, &no_passwords).unwrap();
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
    let reflector = plan(&cluster, "c", false, &no_passwords).unwrap();
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
    let error = plan(&cluster, "a", false, &no_passwords).unwrap_err();
    assert_eq!(error, NoBgp::NoRouterId("a".into()));
    assert!(plan(&cluster, "zz", false, &no_passwords).is_err());
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
    let plan = plan(&cluster, "a", false, &no_passwords).unwrap();
    let config = &plan.peers[&ip("192.0.2.1")].config;
    assert_eq!(config.export_filter.as_ref().unwrap().terms.len(), 1);
    assert!(config.import_filter.as_ref().unwrap().terms.is_empty());

    add_peer(&mut cluster, "tor", tor(vec!["missing".into()]));
    let plan = super::plan(&cluster, "a", false, &no_passwords).unwrap();
    assert!(!plan.peers.contains_key(&ip("192.0.2.1")));
    assert!(
        plan.problems[0].contains("no BGPFilter \"missing\""),
        "{:?}",
        plan.problems
    );
}
