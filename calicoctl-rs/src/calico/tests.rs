use crate::input::{Document, read_text};
use crate::kinds::AnyResource;

fn convert(text: &str) -> Document {
    let mut input = read_text("calico.yaml", text);
    assert_eq!(input.problems, [], "{text}");
    assert_eq!(input.documents.len(), 1);
    input.documents.remove(0)
}

/// Every problem of `text`, a line each.
fn refusal(text: &str) -> String {
    let input = read_text("calico.yaml", text);
    assert!(
        !input.problems.is_empty(),
        "converted {:?}",
        input.documents
    );
    let lines: Vec<String> = input.problems.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

fn peer(spec: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: tor\nspec:\n{spec}"
    )
}

fn pool(spec: &str) -> String {
    format!("apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: p\nspec:\n{spec}")
}

#[test]
fn an_api_v1_ipip_block_becomes_ipip_mode() {
    let document = convert(&pool(
        "  cidr: 10.1.0.0/16\n  ipip: {enabled: true, mode: cross-subnet}\n  nat-outgoing: true\n",
    ));
    let AnyResource::IPPool(pool) = document.resource else {
        panic!("not a pool");
    };
    assert_eq!(
        pool.spec.ipip_mode,
        api::resources::EncapsulationMode::CrossSubnet
    );
    assert!(pool.spec.nat_outgoing);
    assert_eq!(
        document.notes,
        [
            "spec.ipip (API v1) converted to ipipMode: CrossSubnet",
            "spec.nat-outgoing (API v1) converted to natOutgoing"
        ]
    );
}

#[test]
fn a_pool_for_load_balancers_or_manual_assignment_is_refused() {
    let message = refusal(&pool(
        "  cidr: 10.1.0.0/16\n  allowedUses: [Workload, LoadBalancer]\n",
    ));
    assert!(
        message.starts_with(
            "calico.yaml, IPPool \"p\": spec.allowedUses[1]: \"LoadBalancer\" cannot be \
             converted: tabby does not assign Service LoadBalancer addresses"
        ),
        "{message}"
    );
    let message = refusal(&pool("  cidr: 10.1.0.0/16\n  assignmentMode: Manual\n"));
    assert!(
        message.contains("spec.assignmentMode: \"Manual\" cannot be converted"),
        "{message}"
    );
}

#[test]
fn a_calico_only_selector_operator_is_refused_with_the_grammar() {
    let message = refusal(&pool(
        "  cidr: 10.1.0.0/16\n  nodeSelector: zone starts with 'eu'\n",
    ));
    assert!(message.contains("spec.nodeSelector: \"zone starts with 'eu'\" cannot be converted"));
    assert!(message.contains("rewrite it with those"), "{message}");
}

#[test]
fn keep_original_next_hop_becomes_next_hop_mode_keep() {
    let document = convert(&peer(
        "  peerIP: 192.0.2.1\n  asNumber: 65001\n  keepOriginalNextHop: true\n  ttlSecurity: 0\n",
    ));
    let AnyResource::BGPPeer(converted) = document.resource else {
        panic!("not a peer");
    };
    assert_eq!(
        converted.spec.next_hop_mode,
        api::resources::NextHopMode::Keep
    );
    assert_eq!(converted.spec.ttl_security, None);
    let message = refusal(&peer(
        "  peerIP: 192.0.2.1\n  asNumber: 65001\n  keepOriginalNextHop: true\n  nextHopMode: Self\n",
    ));
    assert!(
        message.ends_with("contradicts spec.nextHopMode: Self; keep one of them"),
        "{message}"
    );
}

#[test]
fn peer_features_tabby_lacks_are_refused_by_field() {
    for (field, value) in [
        ("reachableBy", "10.0.0.254"),
        ("localWorkloadSelector", "app == 'bgp'"),
        ("localASNumber", "65100"),
        ("reversePeering", "Manual"),
    ] {
        let message = refusal(&peer(&format!(
            "  peerIP: 192.0.2.1\n  asNumber: 65001\n  {field}: \"{value}\"\n"
        )));
        assert!(message.contains(&format!("spec.{field}: ")), "{message}");
        assert!(message.contains("cannot be converted"), "{message}");
    }
}

#[test]
fn an_optional_secret_is_noted_as_required() {
    let document = convert(&peer(
        "  peerIP: 192.0.2.1\n  asNumber: 65001\n  password:\n    secretKeyRef:\n      \
         name: bgp\n      key: tor\n      optional: true\n",
    ));
    assert_eq!(
        document.notes,
        ["spec.password.secretKeyRef.optional dropped: tabby requires the Secret to exist"]
    );
}

#[test]
fn calico_yaml_bgp_configuration_keeps_node_ip_binding_and_says_which_log_flag_to_set() {
    let text = "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata:\n  \
                name: default\nspec:\n  logSeverityScreen: Warning\n  bindMode: NodeIP\n";
    let document = convert(text);
    let AnyResource::BGPConfiguration(config) = document.resource else {
        panic!("not a BGPConfiguration");
    };
    assert_eq!(
        config.spec.bind_mode,
        Some(api::resources::BindMode::NodeIp)
    );
    assert_eq!(document.notes.len(), 1);
    assert!(
        document.notes[0].contains("tabby-agent's --log=info,bgp=warn (TABBY_LOG)"),
        "{}",
        document.notes[0]
    );
    let message = refusal(&text.replace("NodeIP", "Loopback"));
    assert!(
        message.ends_with("spec.bindMode: \"Loopback\" is not one of None, NodeIP"),
        "{message}"
    );
}

#[test]
fn calico_yaml_every_refused_field_of_a_document_is_reported() {
    let message = refusal(&peer(
        "  peerIP: 192.0.2.1\n  asNumber: 65001\n  reachableBy: 10.0.0.254\n  \
         localASNumber: 65100\n  nodeSelector: zone starts with 'eu'\n",
    ));
    let lines: Vec<&str> = message.lines().collect();
    assert_eq!(lines.len(), 3, "{message}");
    for field in [
        "spec.reachableBy",
        "spec.localASNumber",
        "spec.nodeSelector",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("calico.yaml, BGPPeer \"tor\": {field}: "))),
            "{field}: {message}"
        );
    }
}

#[test]
fn calico_yaml_a_refused_document_leaves_the_others_converted() {
    let text = format!(
        "{}---\n{}",
        pool("  cidr: 10.1.0.0/16\n  assignmentMode: Manual\n"),
        peer("  peerIP: 192.0.2.1\n  asNumber: 65001\n")
    );
    let input = read_text("two.yaml", &text);
    assert_eq!(input.documents.len(), 1);
    assert!(matches!(
        input.documents[0].resource,
        AnyResource::BGPPeer(_)
    ));
    assert_eq!(input.problems.len(), 1);
    assert_eq!(
        input.problems[0].origin,
        "two.yaml, document 1, IPPool \"p\""
    );
}

#[test]
fn calico_yaml_a_node_keeps_the_operators_settings_and_names_what_the_agent_owns() {
    let document = convert(
        "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: n1\n  \
         labels: {rack: rack1}\nspec:\n  bgp:\n    asNumber: 65001\n    \
         ipv4Address: 10.0.1.10/24\n    ipv4IPIPTunnelAddr: 10.244.0.1\n  \
         orchRefs:\n  - {nodeName: n1, orchestrator: k8s}\nstatus:\n  podCIDRs: []\n",
    );
    let AnyResource::Node(node) = document.resource else {
        panic!("not a Node");
    };
    let bgp = node.spec.bgp.unwrap();
    assert_eq!(bgp.as_number, Some(api::resources::AsNumber(65001)));
    assert_eq!(bgp.ipv4_address.unwrap().to_string(), "10.0.1.10/24");
    assert_eq!(bgp.pinned_addresses, [api::resources::AddressFamily::IPv4]);
    assert_eq!(bgp.ipv4_ipip_tunnel_addr, None);
    assert_eq!(node.metadata.labels["rack"], "rack1");
    assert_eq!(
        document.notes,
        [
            "status dropped: it is what Calico's components reported, not settings",
            "spec.orchRefs dropped: Calico's node wrote it; tabby's Node is named after \
             the Kubernetes node",
            "spec.bgp.ipv4IPIPTunnelAddr \"10.244.0.1\" dropped: the agent owns tunnel \
             addresses (it takes them from an IP pool when a pool needs the tunnel)",
            "kept, and never overwritten by the agent: labels, asNumber 65001, ipv4Address \
             10.0.1.10/24 (pinned: the agent speaks BGP from it instead of autodetecting); \
             the agent owns ipv6Address (autodetected at each start) and the tunnel addresses",
        ]
    );
}

#[test]
fn calico_yaml_kube_controllers_configuration_becomes_the_ipam_controllers_flags() {
    let input = read_text(
        "kcc.yaml",
        "apiVersion: projectcalico.org/v3\nkind: KubeControllersConfiguration\nmetadata:\n  \
         name: default\nspec:\n  controllers:\n    node:\n      leakGracePeriod: 30m\n      \
         reconcilerPeriod: 2m\n",
    );
    assert_eq!((input.documents.len(), input.problems.len()), (0, 0));
    assert_eq!(input.notices.len(), 1);
    assert_eq!(
        input.notices[0].origin,
        "kcc.yaml, KubeControllersConfiguration \"default\""
    );
    assert_eq!(
        input.notices[0].notes,
        [
            "spec.controllers.node.leakGracePeriod 1800s: run tabby-ipam-controller with \
             --grace 1800s (TABBY_IPAM_GC_GRACE)",
            "spec.controllers.node.reconcilerPeriod 120s: run tabby-ipam-controller with \
             --interval 120s (TABBY_IPAM_GC_INTERVAL)",
        ]
    );
}

#[test]
fn a_bare_reserved_address_gets_its_prefix_length() {
    let text = "apiVersion: projectcalico.org/v3\nkind: IPReservation\nmetadata:\n  name: r\n\
                spec:\n  reservedCIDRs: [10.0.0.5, fd00::/120]\n";
    let document = convert(text);
    let AnyResource::IPReservation(reservation) = &document.resource else {
        panic!("not a reservation");
    };
    let cidrs: Vec<String> = reservation
        .spec
        .reserved_cidrs
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(cidrs, ["10.0.0.5/32", "fd00::/120"]);
    assert_eq!(
        document.notes,
        ["spec.reservedCIDRs[0] \"10.0.0.5\" written as \"10.0.0.5/32\""]
    );
}

#[test]
fn kinds_without_a_tabby_counterpart_say_why() {
    let message = refusal(
        "apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata:\n  name: default\nspec: {}\n",
    );
    assert!(
        message.contains("flags and TABBY_* environment variables"),
        "{message}"
    );
    let message = refusal(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: x\nspec: {}\n",
    );
    assert!(
        message.contains("policy is out of tabby's scope"),
        "{message}"
    );
}

#[test]
fn server_set_metadata_is_accepted_and_dropped() {
    let document = convert(&pool(
        "  cidr: 10.1.0.0/16\n",
    ).replace(
        "  name: p\n",
        "  name: p\n  resourceVersion: '981'\n  uid: 0f7e\n  creationTimestamp: '2024-05-01T00:00:00Z'\n  \
         annotations:\n    kubectl.kubernetes.io/last-applied-configuration: '{}'\n    team: net\n",
    ));
    let AnyResource::IPPool(pool) = document.resource else {
        panic!("not a pool");
    };
    assert_eq!(pool.metadata.resource_version, None);
    assert_eq!(pool.metadata.annotations.len(), 1);
    assert_eq!(pool.metadata.annotations["team"], "net");
}

#[test]
fn a_kubectl_list_of_calico_crds_converts_item_by_item() {
    let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: crd.projectcalico.org/v1\n  \
                kind: IPPool\n  metadata:\n    name: a\n    generation: 2\n    annotations:\n      \
                projectcalico.org/metadata: '{}'\n  spec:\n    cidr: 10.1.0.0/16\n    \
                vxlanMode: CrossSubnet\n- apiVersion: crd.projectcalico.org/v1\n  kind: IPPool\n  \
                metadata: {name: b}\n  spec: {cidr: 10.2.0.0/16, natOutgoing: yes}\n";
    let message = refusal(text);
    assert!(
        message.starts_with("calico.yaml, items[1], IPPool \"b\": spec.natOutgoing: invalid type"),
        "{message}"
    );
    let documents = read_text(
        "list.yaml",
        &text.replace("natOutgoing: yes", "natOutgoing: true"),
    )
    .documents;
    assert_eq!(documents.len(), 2);
    assert_eq!(
        documents[0].notes,
        ["metadata.annotations[\"projectcalico.org/metadata\"] dropped (bookkeeping)"]
    );
}
