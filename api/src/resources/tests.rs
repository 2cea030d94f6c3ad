use super::*;
use crate::yaml::{self, YamlError};

fn error_of<R: Resource>(text: &str) -> String {
    match yaml::from_str::<R>(text) {
        Ok(resource) => panic!("accepted {resource:?}"),
        Err(e) => e.to_string(),
    }
}

const POOL: &str = "apiVersion: tabby.dev/v1
kind: IPPool
metadata:
  name: pool
spec:
  cidr: 10.0.0.0/16
";

#[test]
fn defaults_are_applied_on_read() {
    let pool: IPPool = yaml::from_str(POOL).unwrap();
    assert_eq!(pool.spec.block_size, Some(26));
    assert_eq!(pool.spec.node_selector, crate::selector::Selector::all());
    assert_eq!(
        pool.spec.allowed_uses,
        [AllowedUse::Workload, AllowedUse::Tunnel]
    );
    let v6: IPPool = yaml::from_str(&POOL.replace("10.0.0.0/16", "fd00::/48")).unwrap();
    assert_eq!(v6.spec.block_size, Some(122));

    let config: BGPConfiguration = yaml::from_str(
        "apiVersion: tabby.dev/v1\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {}\n",
    )
    .unwrap();
    assert_eq!(config.spec.as_number, Some(AsNumber(64512)));
    assert_eq!(config.spec.node_to_node_mesh_enabled, Some(true));
}

#[test]
fn a_bad_cidr_is_reported_with_its_path_and_value() {
    let error = error_of::<IPPool>(&POOL.replace("10.0.0.0/16", "10.0.0.0/33"));
    assert!(
        error.starts_with("spec.cidr: \"10.0.0.0/33\" is not a CIDR"),
        "{error}"
    );
    assert_eq!(
        error_of::<IPPool>(&POOL.replace("10.0.0.0/16", "10.0.0.1/16")),
        "spec.cidr: \"10.0.0.1/16\" has host bits set; did you mean \"10.0.0.0/16\"?"
    );
}

#[test]
fn a_misspelt_field_is_rejected_not_ignored() {
    let error = error_of::<IPPool>(&format!("{POOL}  natOutGoing: true\n"));
    assert!(
        error.starts_with("spec: unknown field `natOutGoing`"),
        "{error}"
    );
    let error = error_of::<IPPool>(&POOL.replace("  name: pool", "  name: pool\n  lables: {}"));
    assert!(
        error.starts_with("metadata: unknown field `lables`"),
        "{error}"
    );
}

#[test]
fn calico_manifests_are_told_which_group_to_use() {
    let calico = POOL.replace("tabby.dev/v1", "projectcalico.org/v3") + "  ipip: {enabled: true}\n";
    assert_eq!(
        error_of::<IPPool>(&calico),
        "apiVersion: \"projectcalico.org/v3\" is Calico's API group: change it to \
         \"tabby.dev/v1\" (tabby uses Calico's field names)"
    );
    assert_eq!(
        error_of::<IPPool>(&POOL.replace("IPPool", "IPPools")),
        "kind: \"IPPools\" is not \"IPPool\""
    );
}

#[test]
fn a_pool_cannot_use_ipip_and_vxlan_together() {
    let both = format!("{POOL}  ipipMode: Always\n  vxlanMode: CrossSubnet\n");
    assert_eq!(
        error_of::<IPPool>(&both),
        "spec.vxlanMode: CrossSubnet cannot be combined with ipipMode other than Never"
    );
    let v6 = format!(
        "{}  ipipMode: Always\n",
        POOL.replace("10.0.0.0/16", "fd00::/48")
    );
    assert_eq!(
        error_of::<IPPool>(&v6),
        "spec.ipipMode: Always is only possible for IPv4 pools"
    );
    let v6_vxlan = format!(
        "{}  vxlanMode: CrossSubnet\n",
        POOL.replace("10.0.0.0/16", "fd00::/48")
    );
    assert_eq!(
        error_of::<IPPool>(&v6_vxlan),
        "spec.vxlanMode: CrossSubnet is only possible for IPv4 pools (tabby has no VXLAN over \
         IPv6 yet): use Never, IPv6 pod routes go over BGP"
    );
    let bad_block = format!("{POOL}  blockSize: 33\n");
    assert_eq!(
        error_of::<IPPool>(&bad_block),
        "spec.blockSize: 33 is out of range 20..=32 for this family"
    );
}

#[test]
fn a_pools_cidr_and_block_size_cannot_change() {
    let old: IPPool = yaml::from_str(POOL).unwrap();
    let mut new = old.clone();
    new.spec.nat_outgoing = true;
    assert_eq!(new.validate_update(&old), Ok(()));
    new.spec.block_size = Some(28);
    assert_eq!(
        new.validate_update(&old).unwrap_err().to_string(),
        "spec.blockSize: 28 cannot change (was 26)"
    );
}

#[test]
fn a_node_override_cannot_set_cluster_wide_bgp_settings() {
    let text = "apiVersion: tabby.dev/v1\nkind: BGPConfiguration\nmetadata: {name: node.worker-1}\n\
                spec: {asNumber: 65001, listenPort: 1179}\n";
    assert_eq!(
        error_of::<BGPConfiguration>(text),
        "spec.asNumber: 65001 is cluster-wide: set it in the \"default\" BGPConfiguration"
    );
    let bad_name = text.replace("node.worker-1", "worker-1");
    assert!(error_of::<BGPConfiguration>(&bad_name).starts_with("metadata.name: \"worker-1\""));
}

#[test]
fn a_peer_needs_an_address_and_an_as() {
    let head = "apiVersion: tabby.dev/v1\nkind: BGPPeer\nmetadata: {name: tor}\n";
    assert_eq!(
        error_of::<BGPPeer>(&format!("{head}spec: {{peerIP: 192.0.2.1}}\n")),
        "spec.asNumber: (unset) is required with peerIP \"192.0.2.1\""
    );
    assert_eq!(
        error_of::<BGPPeer>(&format!("{head}spec: {{node: a}}\n")),
        "spec.peerIP: (unset) is required unless spec.peerSelector is set"
    );
    let error = error_of::<BGPPeer>(&format!(
        "{head}spec: {{peerSelector: 'rr == ', asNumber: 1}}\n"
    ));
    assert!(
        error.contains("spec.peerSelector: selector \"rr == \": at column 7"),
        "{error}"
    );
}

#[test]
fn a_block_is_named_after_its_cidr() {
    let text = "apiVersion: tabby.dev/v1\nkind: IPAMBlock\nmetadata: {name: 10-0-0-0-30}\n\
                spec: {cidr: 10.0.0.0/30}\n";
    let block: IPAMBlock = yaml::from_str(text).unwrap();
    assert_eq!(block.spec.allocations, [None; 4]);
    assert_eq!(block.spec.unallocated, [0, 1, 2, 3]);
    assert_eq!(
        error_of::<IPAMBlock>(&text.replace("10-0-0-0-30", "block")),
        "metadata.name: \"block\" does not match spec.cidr (expected \"10-0-0-0-30\")"
    );
}

#[test]
fn a_blocks_sequence_numbers_belong_to_allocated_ordinals() {
    let block = |extra: &str| {
        format!(
            "apiVersion: tabby.dev/v1\nkind: IPAMBlock\nmetadata: {{name: 10-0-0-0-31}}\n\
             spec: {{cidr: 10.0.0.0/31, allocations: [0, null], unallocated: [1],\n\
             attributes: [{{handleID: h}}], sequenceNumber: 5{extra}}}\n"
        )
    };
    let ok: IPAMBlock = yaml::from_str(&block(", sequenceNumberForAllocation: {'0': 4}")).unwrap();
    assert_eq!(ok.spec.sequence_number_for_allocation["0"], 4);
    assert_eq!(
        error_of::<IPAMBlock>(&block(", sequenceNumberForAllocation: {'1': 4}")),
        "spec.sequenceNumberForAllocation[\"1\"]: \"1\" is not an allocated ordinal"
    );
    assert_eq!(
        error_of::<IPAMBlock>(&block(", sequenceNumberForAllocation: {'0': 5}")),
        "spec.sequenceNumberForAllocation[\"0\"]: 5 is not below spec.sequenceNumber (5)"
    );
}

#[test]
fn invalid_names_and_labels_are_rejected() {
    let error = error_of::<IPPool>(&POOL.replace("name: pool", "name: Pool_1"));
    assert!(error.starts_with("metadata.name: \"Pool_1\" is not a DNS subdomain"));
    let labelled = POOL.replace("name: pool", "name: pool\n  labels: {zone: 'east west'}");
    assert_eq!(
        error_of::<IPPool>(&labelled),
        "metadata.labels[\"zone\"]: \"east west\" is not a label value"
    );
}

#[test]
fn yaml_errors_are_syntax_or_invalid() {
    assert!(matches!(
        yaml::from_str::<IPPool>("spec: ["),
        Err(YamlError::Syntax(_))
    ));
    assert!(matches!(
        yaml::from_str::<IPPool>(&format!("{POOL}  blockSize: 8\n")),
        Err(YamlError::Invalid(_))
    ));
}

/// One bad field per kind: every kind names the path and the value.
#[test]
fn every_kind_reports_the_path_and_value_of_what_is_wrong() {
    fn doc(kind: &str, name: &str, spec: &str) -> String {
        format!(
            "apiVersion: tabby.dev/v1\nkind: {kind}\nmetadata: {{name: {name}}}\nspec: {spec}\n"
        )
    }
    let cases = [
        (
            error_of::<IPAMBlock>(&doc(
                "IPAMBlock",
                "10-0-0-0-30",
                "{cidr: 10.0.0.0/30, allocations: [null]}",
            )),
            "spec.allocations: 1 entries for a block of 4 addresses",
        ),
        (
            error_of::<BlockAffinity>(&doc(
                "BlockAffinity",
                "x",
                "{node: Worker_1, cidr: 10.0.0.0/26}",
            )),
            "spec.node: \"Worker_1\" is not a node name",
        ),
        (
            error_of::<IPAMHandle>(&doc("IPAMHandle", "h1", "{handleID: h2}")),
            "spec.handleID: \"h2\" does not match metadata.name \"h1\"",
        ),
        (
            error_of::<IPAMConfig>(&doc("IPAMConfig", "mine", "{}")),
            "metadata.name: \"mine\" must be \"default\" (there is one IPAM configuration)",
        ),
        (
            error_of::<IPReservation>(&doc("IPReservation", "r", "{reservedCIDRs: [10.0.0.1/24]}")),
            "spec.reservedCIDRs[0]: \"10.0.0.1/24\" has host bits set; did you mean \"10.0.0.0/24\"?",
        ),
        (
            error_of::<BGPConfiguration>(&doc("BGPConfiguration", "default", "{listenPort: 0}")),
            "spec.listenPort: 0 is not a port",
        ),
        (
            error_of::<BGPPeer>(&doc(
                "BGPPeer",
                "p",
                "{peerSelector: all(), ttlSecurity: 0}",
            )),
            "spec.ttlSecurity: 0 must be 1 or more hops",
        ),
        (
            error_of::<BGPFilter>(&doc(
                "BGPFilter",
                "f",
                "{importV4: [{action: Accept, prefixLength: {min: 40}}]}",
            )),
            "spec.importV4[0].prefixLength.min: 40 is longer than /32",
        ),
        (
            error_of::<BGPFilter>(&doc(
                "BGPFilter",
                "f",
                "{exportV6: [{action: Reject, cidr: fd00::/48, matchOperator: NotIn}]}",
            )),
            "spec.exportV6[0].matchOperator: NotIn is not supported by tabby yet: use Equal or In \
             (a rule with the opposite action first, then a rule for every prefix)",
        ),
        (
            error_of::<BGPFilter>(&doc(
                "BGPFilter",
                "f",
                "{exportV4: [{action: Accept, operations: [{prependASPath: {prefix: [65000, 65001]}}]}]}",
            )),
            "spec.exportV4[0].operations[0].prependASPath.prefix: [65000, 65001] mixes AS numbers, \
             which tabby cannot prepend yet: repeat one AS number",
        ),
        (
            error_of::<Node>(&doc("Node", "n", "{bgp: {ipv4Address: fd00::1/64}}")),
            "spec.bgp.ipv4Address: \"fd00::1/64\" is not an IPv4 prefix",
        ),
        (
            error_of::<Node>(&doc("Node", "n", "{bgp: {pinnedAddresses: [IPv6]}}")),
            "spec.bgp.pinnedAddresses[0]: IPv6 pins an address that is not set: set spec.bgp.ipv6Address too",
        ),
        (
            error_of::<WorkloadEndpoint>(&doc(
                "WorkloadEndpoint",
                "default.web-0",
                "{node: w, namespace: default, pod: web-0, containerID: c, interfaceName: cali0123456789abcdef}",
            )),
            "spec.interfaceName: \"cali0123456789abcdef\" is not an interface name (1 to 15 characters, no '/', ':' or space)",
        ),
        (
            error_of::<WorkloadEndpoint>(&doc(
                "WorkloadEndpoint",
                "web-0",
                "{node: w, namespace: default, pod: web-0, containerID: c, interfaceName: cali1}",
            )),
            "metadata.name: \"web-0\" does not match spec.namespace and spec.pod (expected \"default.web-0\")",
        ),
    ];
    for (error, expected) in cases {
        assert_eq!(error, expected);
    }
}

#[test]
fn hardening_an_inline_bgp_password_is_not_echoed_in_the_decode_error() {
    let peer = "apiVersion: tabby.dev/v1
kind: BGPPeer
metadata:
  name: tor
spec:
  peerIP: 192.0.2.1
  asNumber: 65000
  password: s3cret-key
";
    let error = error_of::<BGPPeer>(peer);
    assert!(!error.contains("s3cret-key"), "{error}");
    assert!(error.contains("password"), "{error}");
}

#[test]
fn a_block_name_spells_its_cidr_both_ways() {
    for text in ["10.0.0.64/26", "fd00::40/122", "::/122", "fd00:1::/64"] {
        let cidr: Cidr = text.parse().unwrap();
        assert_eq!(cidr_of_name(&cidr_name(&cidr)), Some(cidr), "{text}");
    }
    for name in ["10-0-0-0", "default", "10-0-0-0-33", "fd00--40-x"] {
        assert_eq!(cidr_of_name(name), None, "{name}");
    }
}

#[test]
fn bfd_timers_default_to_300_ms_times_3_and_out_of_range_ones_are_named() {
    let peer = |bfd: &str| {
        format!(
            "apiVersion: tabby.dev/v1\nkind: BGPPeer\nmetadata: {{name: p}}\n\
             spec: {{peerSelector: all(), bfd: {bfd}}}\n"
        )
    };
    let on = yaml::from_str::<BGPPeer>(&peer("{enabled: true}")).unwrap();
    let timers = on.spec.bfd.unwrap().timers().unwrap();
    assert_eq!(timers, bfd::Timers::default());
    let off = yaml::from_str::<BGPPeer>(&peer("{minTx: 50ms}")).unwrap();
    assert_eq!(off.spec.bfd.unwrap().timers(), None);
    let fast = yaml::from_str::<BGPPeer>(&peer("{enabled: true, minRx: 50ms, multiplier: 5}"))
        .unwrap()
        .spec
        .bfd
        .unwrap()
        .timers()
        .unwrap();
    assert_eq!(
        (
            fast.required_min_rx(),
            fast.desired_min_tx(),
            fast.detect_mult()
        ),
        (
            std::time::Duration::from_millis(50),
            std::time::Duration::from_millis(300),
            5
        )
    );
    let cases = [
        (
            peer("{enabled: true, minTx: 5ms}"),
            "spec.bfd.minTx: \"5ms\" is outside 10ms to 60s",
        ),
        (
            peer("{enabled: true, minRx: 2m}"),
            "spec.bfd.minRx: \"120s\" is outside 10ms to 60s",
        ),
        (
            peer("{enabled: true, multiplier: 0}"),
            "spec.bfd.multiplier: 0 must be at least 1",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(error_of::<BGPPeer>(&text), expected);
    }
    assert!(
        error_of::<BGPPeer>(&peer("{enabled: true, multiplier: 300}")).contains("spec.bfd"),
        "a multiplier beyond 255 names its field"
    );
    let mesh = "apiVersion: tabby.dev/v1\nkind: BGPConfiguration\nmetadata: {name: default}\n\
                spec: {bfd: {enabled: true, minRx: 1ms}}\n";
    assert_eq!(
        error_of::<BGPConfiguration>(mesh),
        "spec.bfd.minRx: \"1ms\" is outside 10ms to 60s"
    );
    let node = mesh.replace("name: default", "name: node.worker-1");
    assert!(error_of::<BGPConfiguration>(&node).starts_with("spec.bfd: "));
}
