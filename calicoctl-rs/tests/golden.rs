//! Golden output: every kind in every format, as `get` prints it, and Calico's YAML
//! as `convert` prints it. `GOLDEN_UPDATE=1` rewrites the files after a deliberate
//! change; review the diff.

mod support;

use api::datastore::Datastore;
use api::resources::WorkloadEndpointSpec;
use support::{
    CALICO_CORPUS, CALICO_REFUSED, CORPUS_KINDS, Shell, corpus_files, fixture, golden,
    without_revisions,
};

fn cluster() -> Shell {
    let shell = Shell::new();
    let path = fixture("cluster.yaml");
    shell.run(&["apply", "-f", &path]).ok();
    shell
}

#[test]
fn every_kind_prints_in_every_format_as_the_golden_files_show() {
    let shell = cluster();
    for kind in [
        "ippools",
        "ipreservations",
        "ipamconfigs",
        "bgpconfigurations",
        "bgppeers",
        "bgpfilters",
        "nodes",
    ] {
        for format in ["table", "wide", "yaml", "json"] {
            let output = shell.run(&["get", kind, "-o", format]).ok();
            let extension = if format == "json" || format == "yaml" {
                format
            } else {
                "txt"
            };
            golden(&format!("get-{kind}-{format}.{extension}"), &output);
        }
    }
}

#[test]
fn one_named_resource_prints_bare_not_as_a_list() {
    let shell = cluster();
    let yaml = shell.run(&["get", "ippool", "rack-a", "-o", "yaml"]).ok();
    golden("get-ippool-rack-a.yaml", &yaml);
    let json = shell.run(&["get", "bgppeer", "tor-a", "-o", "json"]).ok();
    golden("get-bgppeer-tor-a.json", &json);
}

#[test]
fn calico_manifests_convert_as_the_golden_file_shows() {
    let shell = Shell::new();
    let path = fixture("calico-v3.yaml");
    let output = shell.run(&["convert", "-f", &path]);
    assert_eq!(output.code, 0, "{output:?}");
    golden("convert-calico-v3.yaml", &output.stdout);
    golden("convert-calico-v3.notes", &output.stderr);
}

#[test]
fn yaml_printed_by_get_applies_back_unchanged() {
    let shell = cluster();
    for kind in ["ippools", "bgppeers", "nodes", "bgpfilters"] {
        let yaml = shell.run(&["get", kind, "-o", "yaml"]).ok();
        let applied = shell.apply(&yaml);
        assert!(
            applied.lines().all(|line| line.ends_with(" unchanged")),
            "{kind}: {applied}"
        );
        let json = shell.run(&["get", kind, "-o", "json"]).ok();
        let applied = shell.apply(&json);
        assert!(
            applied.lines().all(|line| line.ends_with(" unchanged")),
            "{applied}"
        );
    }
}

#[test]
fn calico_yaml_the_corpus_converts_as_the_golden_files_show() {
    let shell = Shell::new();
    for file in corpus_files() {
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        let output = shell.run(&["convert", "-f", &file.display().to_string()]);
        assert_eq!(output.code, 0, "{output:?}");
        golden(&format!("convert-calico-{stem}.yaml"), &output.stdout);
        golden(&format!("convert-calico-{stem}.notes"), &output.stderr);
    }
}

#[test]
fn calico_yaml_the_corpus_applies_and_reads_back_as_the_golden_files_show() {
    let shell = Shell::new();
    let output = shell.run(&["apply", "-f", CALICO_CORPUS]);
    assert_eq!(output.code, 0, "{output:?}");
    golden("apply-calico-corpus.txt", &output.stdout);
    for kind in CORPUS_KINDS {
        let yaml = shell.run(&["get", kind, "-o", "yaml"]).ok();
        golden(
            &format!("apply-calico-get-{kind}.yaml"),
            &without_revisions(&yaml),
        );
    }
    // Applied again, nothing changes.
    let again = shell.run(&["apply", "-f", CALICO_CORPUS]).ok();
    assert!(again.lines().all(|l| l.ends_with(" unchanged")), "{again}");
}

#[test]
fn calico_yaml_each_refused_setting_is_reported_and_the_rest_converts() {
    let shell = Shell::new();
    let output = shell.run(&["convert", "-f", CALICO_REFUSED]);
    assert_eq!(output.code, 1, "{output:?}");
    golden("convert-calico-refused.yaml", &output.stdout);
    golden("convert-calico-refused.errors", &output.stderr);
    // apply writes nothing of a file with a refused setting.
    let applied = shell.run(&["apply", "-f", CALICO_REFUSED]);
    assert_eq!(applied.code, 1, "{applied:?}");
    assert_eq!(applied.stdout, "");
    assert_eq!(shell.run(&["get", "ippools", "-o", "yaml"]).ok(), "");
}

/// Two pods in two namespaces, registered as the CNI plugin registers them.
fn cluster_with_pods() -> Shell {
    let shell = cluster();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let pods = [
        (
            "default",
            "web-0",
            "node-a",
            "10.1.0.5/32",
            "cali1d2f3a4b5c6",
        ),
        (
            "kube-system",
            "coredns-7d",
            "node-b",
            "fd00:1::9/128",
            "cali9e8d7c6b5a4",
        ),
    ];
    for (namespace, pod, node, network, interface) in pods {
        let endpoint = WorkloadEndpointSpec {
            node: node.into(),
            namespace: namespace.into(),
            pod: pod.into(),
            container_id: format!("{pod}-sandbox"),
            endpoint: "eth0".into(),
            interface_name: interface.into(),
            mac: Some("ee:ee:ee:ee:ee:01".parse().unwrap()),
            ip_networks: vec![network.parse().unwrap()],
        };
        runtime
            .block_on(shell.store.register_workload(endpoint))
            .unwrap();
    }
    shell
}

#[test]
fn workload_endpoints_print_in_every_format_and_by_namespace() {
    let shell = cluster_with_pods();
    for format in ["table", "wide", "yaml", "json"] {
        let output = shell.run(&["get", "weps", "-o", format]).ok();
        let extension = if format == "table" || format == "wide" {
            "txt"
        } else {
            format
        };
        golden(
            &format!("get-workloadendpoints-{format}.{extension}"),
            &output,
        );
    }
    let all = shell.run(&["get", "workloadendpoints", "-A"]).ok();
    assert_eq!(all, shell.run(&["get", "workloadendpoints"]).ok());
    let system = shell.run(&["get", "wep", "-n", "kube-system"]).ok();
    assert_eq!(system.lines().count(), 2, "{system}");
    assert!(
        system.contains("coredns-7d") && !system.contains("web-0"),
        "{system}"
    );
    let named = shell
        .run(&["get", "workloadendpoint", "default.web-0", "-o", "yaml"])
        .ok();
    assert!(named.contains("pod: web-0"), "{named}");
}

#[test]
fn workload_endpoints_are_never_written_by_the_cli() {
    let shell = cluster_with_pods();
    let yaml = shell
        .run(&["get", "workloadendpoint", "default.web-0", "-o", "yaml"])
        .ok();
    let error = shell.run_with_stdin(&["apply", "-f", "-"], &yaml).failed(1);
    assert!(
        error.contains("kind: \"WorkloadEndpoint\" cannot be written with calicoctl-rs"),
        "{error}"
    );
    let refused = "WorkloadEndpoints are written by the CNI plugin, one per pod interface; \
                   calicoctl-rs only shows them";
    for args in [
        &["delete", "wep", "default.web-0"][..],
        &[
            "patch",
            "wep",
            "default.web-0",
            "-p",
            "{\"spec\":{\"node\":\"x\"}}",
        ],
        &["label", "wep", "default.web-0", "a=b"],
    ] {
        assert_eq!(
            shell.run(args).failed(2),
            format!("error: {refused}"),
            "{args:?}"
        );
    }
    let still = shell.run(&["get", "weps"]).ok();
    assert!(
        still.contains("web-0") && still.contains("node-a"),
        "{still}"
    );
}

#[test]
fn calicoctls_ps_custom_columns_and_go_templates_print_what_they_ask() {
    let shell = cluster();
    let table = shell.run(&["get", "ippools"]).ok();
    assert_eq!(shell.run(&["get", "ippools", "-o", "ps"]).ok(), table);
    let columns = shell
        .run(&["get", "ippools", "-o", "custom-columns=name,VXLANMODE"])
        .ok();
    golden("get-ippools-custom-columns.txt", &columns);
    let names = shell
        .run(&[
            "get",
            "nodes",
            "-o",
            "go-template={{range .items}}{{.metadata.name}}={{.spec.bgp.ipv4Address}};{{end}}",
        ])
        .ok();
    golden("get-nodes-go-template.txt", &names);
    let unknown = shell
        .run(&["get", "ippools", "-o", "custom-columns=NAME,COLOUR"])
        .failed(2);
    assert_eq!(
        unknown,
        "error: -o custom-columns: IPPool has no column \"COLOUR\"; its columns: \
         NAME,CIDR,NAT,IPIPMODE,VXLANMODE,DISABLED,DISABLEBGPEXPORT,SELECTOR"
    );
    let unclosed = shell
        .run(&["get", "ippools", "-o", "go-template={{range .items"])
        .failed(2);
    assert!(
        unclosed.starts_with("error: -o go-template: "),
        "{unclosed}"
    );
}
