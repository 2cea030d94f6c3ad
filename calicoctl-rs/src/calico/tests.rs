use crate::input::{Document, read_text};
use crate::kinds::AnyResource;

fn convert(text: &str) -> Document {
    let mut documents = read_text("calico.yaml", text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(documents.len(), 1);
    documents.remove(0)
}

fn refusal(text: &str) -> String {
    match read_text("calico.yaml", text) {
        Ok(documents) => panic!("converted {documents:?}"),
        Err(e) => e.to_string(),
    }
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
fn bgp_configuration_drops_the_log_level_and_refuses_node_ip_binding() {
    let text = "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata:\n  \
                name: default\nspec:\n  logSeverityScreen: Debug\n  asNumber: 65010\n";
    let document = convert(text);
    assert_eq!(document.notes.len(), 1);
    assert!(document.notes[0].starts_with("spec.logSeverityScreen \"Debug\" dropped"));
    let message = refusal(&text.replace("asNumber: 65010", "bindMode: NodeIP"));
    assert!(
        message.contains("spec.bindMode: \"NodeIP\" cannot be converted"),
        "{message}"
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
    .unwrap();
    assert_eq!(documents.len(), 2);
    assert_eq!(
        documents[0].notes,
        ["metadata.annotations[\"projectcalico.org/metadata\"] dropped (bookkeeping)"]
    );
}
