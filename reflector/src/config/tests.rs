//! Every validation error names its field path and value.

use super::*;

const BASE: &str = "asNumber: 64512\nrouterId: 10.0.0.1\n";

fn error(extra: &str) -> String {
    parse(&format!("{BASE}{extra}"), false)
        .expect_err("the configuration must be rejected")
        .to_string()
}

#[test]
fn a_full_configuration_reads_with_defaults_filled_in() {
    let config = parse(
        &format!(
            "{BASE}clusterId: 224.0.0.1\nlisten: {{address: 10.0.0.1, port: 1790}}\n\
             gracefulRestart: {{restartTime: 120}}\n\
             peers:\n- {{address: 10.0.0.2, asNumber: 64512, password: s3cret, holdTime: 30, keepaliveTime: 10}}\n\
             - {{address: 'fd00::3', asNumber: 65000, routeReflectorClient: false, passive: true, gracefulRestart: false}}\n\
             listenRanges:\n- {{prefix: 10.1.0.0/16, maxSessions: 100}}\n\
             api: {{socket: /run/r.sock, address: '127.0.0.1:50051'}}\nmetrics: {{address: '0.0.0.0:9094'}}\n"
        ),
        false,
    )
    .unwrap();
    assert_eq!(
        config.cluster_id.as_ref().unwrap().parse(),
        "224.0.0.1".parse()
    );
    assert_eq!(config.listen.port, 1790);
    assert!(config.peers[0].route_reflector_client, "clients by default");
    assert!(!config.peers[1].route_reflector_client);
    assert_eq!(
        config.peers[1].graceful_restart,
        Some(PeerGracefulRestart::Enabled(false))
    );
    assert_eq!(config.listen_ranges[0].as_number, None);
    assert_eq!(config.shutdown_message, DEFAULT_SHUTDOWN_MESSAGE);
    let numeric = parse(&format!("{BASE}clusterId: 3758096385\n"), false).unwrap();
    assert_eq!(numeric.cluster_id.unwrap().parse(), "224.0.0.1".parse());
}

#[test]
fn unknown_fields_are_named_with_their_path() {
    let e = error("peers:\n- {address: 10.0.0.2, asNumber: 64512, holdtime: 30}\n");
    assert!(
        e.contains("peers[0]") && e.contains("unknown field `holdtime`"),
        "{e}"
    );
    let e = error("listen: {adress: 10.0.0.1}\n");
    assert!(
        e.contains("listen") && e.contains("unknown field `adress`"),
        "{e}"
    );
    let e = error("bfd: {enabled: true, minrx: 50ms}\n");
    assert!(
        e.contains("bfd") && e.contains("unknown field `minrx`"),
        "{e}"
    );
    let e = error("bogus: 1\n");
    assert!(e.contains("unknown field `bogus`"), "{e}");
}

#[test]
fn values_of_the_wrong_type_or_form_are_named() {
    let e = error("clusterId: 224.0.0.256\n");
    assert_eq!(
        e,
        "clusterId: \"224.0.0.256\" is neither a dotted quad (224.0.0.1) nor a 32-bit number"
    );
    let e = error("listen: {port: x}\n");
    assert!(e.starts_with("listen.port: invalid type"), "{e}");
    let e = error("peers:\n- {address: 10.0.0.300, asNumber: 64512}\n");
    assert!(e.contains("peers[0].address"), "{e}");
    let e = parse("routerId: 10.0.0.1\n", false)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "asNumber: \"\" is required (or use a datastore (--datastore-type) to take it from there)"
    );
    assert!(
        parse("routerId: 10.0.0.1\n", true).is_ok(),
        "the datastore may supply it"
    );
}

#[test]
fn each_rule_reports_its_field_path_and_value() {
    let cases = [
        ("asNumber: 0\n", "asNumber: 0 is not a usable AS number"),
        (
            "routerId: 0.0.0.0\n",
            "routerId: 0.0.0.0 is not a usable router id",
        ),
        ("listen: {port: 0}\n", "listen.port: 0 is not a port"),
        (
            "bfd: {enabled: true, minTx: 5ms}\n",
            "bfd.minTx: \"5ms\" is outside 10ms to 60s",
        ),
        (
            "peers:\n- {address: 10.0.0.2, asNumber: 64512, bfd: {multiplier: 0}}\n",
            "peers[0].bfd.multiplier: 0 must be at least 1",
        ),
        (
            "gracefulRestart: {restartTime: 5000}\n",
            "gracefulRestart.restartTime: 5000 is more than 4095 seconds",
        ),
        (
            "peers:\n- {address: 10.0.0.2, asNumber: 23456}\n",
            "peers[0].asNumber: 23456 is not a usable AS number",
        ),
        (
            "peers:\n- {address: 0.0.0.0, asNumber: 64512}\n",
            "peers[0].address: 0.0.0.0 is not a peer's address",
        ),
        (
            "peers:\n- {address: 10.0.0.2, asNumber: 64512}\n- {address: 10.0.0.2, asNumber: 64512}\n",
            "peers[1].address: 10.0.0.2 is already peers[0]",
        ),
        (
            "peers:\n- {address: 10.0.0.2, asNumber: 64512, password: a, passwordFile: /p}\n",
            "peers[0].passwordFile: \"/p\" cannot be combined with password",
        ),
        (
            "peers:\n- {address: 10.0.0.2, asNumber: 64512, holdTime: 2}\n",
            "peers[0].holdTime: 2 must be 0 or at least 3 (RFC 4271 4.2)",
        ),
        (
            "peers:\n- {address: 10.0.0.2, asNumber: 64512, holdTime: 9, keepaliveTime: 9}\n",
            "peers[0].keepaliveTime: 9 must be more than 0 and less than the hold time 9",
        ),
        (
            "peers:\n- {address: 10.0.0.2, asNumber: 64512, gracefulRestart: {restartTime: 4096}}\n",
            "peers[0].gracefulRestart.restartTime: 4096 is more than 4095 seconds",
        ),
        (
            "listenRanges:\n- {prefix: 10.1.0.1/16, maxSessions: 5}\n",
            "listenRanges[0].prefix: \"10.1.0.1/16\" has host bits set (the network is 10.1.0.0/16)",
        ),
        (
            "listenRanges:\n- {prefix: 10.1.0.0/16, maxSessions: 5}\n- {prefix: 10.1.2.0/24, maxSessions: 5}\n",
            "listenRanges[1].prefix: \"10.1.2.0/24\" overlaps listenRanges[0]",
        ),
        (
            "listenRanges:\n- {prefix: 10.1.0.0/16, maxSessions: 0}\n",
            "listenRanges[0].maxSessions: 0 must be at least 1",
        ),
        (
            "listenRanges:\n- {prefix: 10.1.0.0/16, maxSessions: 1, password: ''}\n",
            "listenRanges[0].password: \"0 bytes\" must be 1 to 80 bytes",
        ),
        (
            "api: {socket: relative.sock}\n",
            "api.socket: \"relative.sock\" must be an absolute path",
        ),
    ];
    for (extra, expected) in cases {
        let yaml = if extra.starts_with("asNumber") || extra.starts_with("routerId") {
            let field = extra.split(':').next().unwrap();
            let kept: String = BASE
                .lines()
                .filter(|l| !l.starts_with(field))
                .map(|l| format!("{l}\n"))
                .collect();
            format!("{kept}{extra}")
        } else {
            format!("{BASE}{extra}")
        };
        let e = parse(&yaml, false).expect_err(expected).to_string();
        assert_eq!(e, expected, "for {extra:?}");
    }
}

#[test]
fn a_password_file_that_cannot_be_read_fails_the_load_with_its_path() {
    use crate::desired::Desired;
    use crate::discovery::Discovered;
    let config = parse(
        &format!("{BASE}peers:\n- {{address: 10.0.0.2, asNumber: 64512, passwordFile: /nonexistent/md5}}\n"),
        false,
    )
    .unwrap();
    let e = Desired::new(&config, &Discovered::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("peers[0].passwordFile: \"/nonexistent/md5\" cannot be read"),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("md5");
    std::fs::write(&file, "s3cret\n").unwrap();
    let config = parse(
        &format!(
            "{BASE}peers:\n- {{address: 10.0.0.2, asNumber: 64512, passwordFile: {}}}\n",
            file.display()
        ),
        false,
    )
    .unwrap();
    let desired = Desired::new(&config, &Discovered::default()).unwrap();
    let peer = &desired.peers[&"10.0.0.2".parse().unwrap()];
    assert_eq!(
        peer.config.md5_key.as_ref().map(|k| k.as_bytes()),
        Some(&b"s3cret"[..])
    );
}

const FILTERS: &str = "filters:\n  pods-only:\n    terms:\n    - match: {prefixes: [{prefix: 10.244.0.0/16, ge: 26}]}\n      action: accept\n      set: {local_pref: 200}\n    default: reject\n";

#[test]
fn filters_are_named_once_and_referenced_by_peers_and_listen_ranges() {
    let config = parse(
        &format!(
            "{BASE}{FILTERS}peers:\n- {{address: 10.0.0.2, asNumber: 64512, importFilter: pods-only, exportFilter: pods-only}}\n\
             listenRanges:\n- {{prefix: 10.1.0.0/16, maxSessions: 10, exportFilter: pods-only}}\n"
        ),
        false,
    )
    .unwrap();
    let filter = &config.filters["pods-only"];
    assert_eq!(filter.terms[0].set.local_pref, Some(200));
    assert_eq!(config.peers[0].import_filter.as_deref(), Some("pods-only"));
    assert_eq!(
        config.listen_ranges[0].export_filter.as_deref(),
        Some("pods-only")
    );
}

#[test]
fn a_missing_or_malformed_filter_is_named_with_its_path() {
    let e = error(&format!(
        "{FILTERS}peers:\n- {{address: 10.0.0.2, asNumber: 64512, exportFilter: pod-only}}\n"
    ));
    assert!(
        e.starts_with("peers[0].exportFilter: \"pod-only\" is not the name of a filter"),
        "{e}"
    );
    let e = error("listenRanges:\n- {prefix: 10.1.0.0/16, maxSessions: 10, importFilter: x}\n");
    assert!(e.starts_with("listenRanges[0].importFilter"), "{e}");
    let e = error(
        "filters:\n  f:\n    terms:\n    - match: {prefixes: [{prefix: 10.0.0.0/16, ge: 8}]}\n      action: accept\n",
    );
    assert!(e.starts_with("filters.f.terms[0].match.prefixes[0]"), "{e}");
    let e = error("filters:\n  f:\n    terms:\n    - action: allow\n");
    assert!(e.contains("filters") && e.contains("allow"), "{e}");
}

#[test]
fn hardening_a_password_never_appears_in_debug_output_or_a_config_error() {
    let config = parse(
        &format!("{BASE}peers:\n- {{address: 10.0.0.2, asNumber: 64512, password: s3cret-key}}\n"),
        false,
    )
    .unwrap();
    assert!(!format!("{config:?}").contains("s3cret-key"), "{config:?}");
    let desired =
        crate::desired::Desired::new(&config, &crate::discovery::Discovered::default()).unwrap();
    assert!(!format!("{desired:?}").contains("s3cret"), "{desired:?}");
    // A password YAML reads as a number or a list is still not repeated.
    for written in ["123456789", "[s3cret-key]"] {
        let error = error(&format!(
            "peers:\n- {{address: 10.0.0.2, asNumber: 64512, password: {written}}}\n"
        ));
        assert!(
            !error.contains("123456789") && !error.contains("s3cret-key"),
            "{error}"
        );
        assert!(error.contains("password"), "{error}");
    }
}

#[test]
fn hardening_a_hold_time_of_zero_is_a_warning() {
    let config = parse(
        &format!(
            "{BASE}peers:\n- {{address: 10.0.0.2, asNumber: 64512, holdTime: 0}}\n\
             - {{address: 10.0.0.3, asNumber: 64512}}\n"
        ),
        false,
    )
    .unwrap();
    let warnings = config.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("peers[0].holdTime: 0"),
        "{warnings:?}"
    );
}
