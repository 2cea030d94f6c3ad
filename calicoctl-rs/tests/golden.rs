//! Golden output: every kind in every format, as `get` prints it, and Calico's YAML
//! as `convert` prints it. `GOLDEN_UPDATE=1` rewrites the files after a deliberate
//! change; review the diff.

mod support;

use support::{Shell, fixture, golden};

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
