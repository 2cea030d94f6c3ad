//! The resource commands as an operator runs them, one after another, against one
//! datastore: what they print, what they store, and that a failure stores nothing.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use api::datastore::{
    Backend, Datastore, Kind, List, ListOptions, MemoryStore, Record, Result, WatchStream,
};
use api::resources::{IPAMBlock, IPPool, Revision};
use async_trait::async_trait;
use serde_json::Value;
use support::Shell;

const POOLS: &str = "\
apiVersion: tabby.dev/v1
kind: IPPool
metadata: {name: pool-a}
spec: {cidr: 10.1.0.0/16}
---
apiVersion: tabby.dev/v1
kind: IPPool
metadata: {name: pool-b}
spec: {cidr: 10.2.0.0/16, ipipMode: Always}
";

fn pool_names(shell: &Shell) -> Vec<String> {
    let table = shell.run(&["get", "ippools"]).ok();
    table
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().next().unwrap().to_owned())
        .collect()
}

#[test]
fn apply_creates_then_configures_then_leaves_unchanged() {
    let shell = Shell::new();
    assert_eq!(
        shell.apply(POOLS),
        "ippool/pool-a created\nippool/pool-b created\n"
    );
    let changed = POOLS.replace("ipipMode: Always", "ipipMode: CrossSubnet");
    assert_eq!(
        shell.apply(&changed),
        "ippool/pool-a unchanged\nippool/pool-b configured\n"
    );
    let wide = shell.run(&["get", "ippool", "pool-b", "-o", "wide"]).ok();
    assert!(wide.contains("CrossSubnet"), "{wide}");
}

#[test]
fn one_invalid_document_stops_the_whole_file_and_nothing_is_written() {
    let shell = Shell::new();
    let bad = format!(
        "{POOLS}---\napiVersion: tabby.dev/v1\nkind: IPPool\nmetadata: {{name: pool-c}}\n\
         spec: {{cidr: 10.3.0.0/33}}\n"
    );
    for command in ["apply", "create"] {
        let error = shell.run_with_stdin(&[command, "-f", "-"], &bad).failed(1);
        assert_eq!(
            error,
            "error: <stdin>, document 3, IPPool \"pool-c\": spec.cidr: \"10.3.0.0/33\" is not a \
             CIDR at line 14 column 14"
        );
        assert!(pool_names(&shell).is_empty());
    }
}

#[test]
fn malformed_yaml_unknown_kinds_and_fields_are_one_line_errors() {
    let shell = Shell::new();
    let cases = [
        (
            "apiVersion: tabby.dev/v1\nkind: IPPool\nmetadata:\n  name: p\n spec: {}\n",
            "error: <stdin>: malformed YAML: did not find expected key at line 5 column 2, \
             while parsing a block mapping",
        ),
        (
            "apiVersion: tabby.dev/v1\nkind: IPPol\nmetadata: {name: p}\nspec: {}\n",
            "error: <stdin>, IPPol \"p\": kind: \"IPPol\" is not a tabby kind: did you mean IPPool?",
        ),
        (
            "apiVersion: tabby.dev/v1\nkind: Router\nmetadata: {name: p}\nspec: {}\n",
            "error: <stdin>, Router \"p\": kind: \"Router\" is not a tabby kind: use one of IPPool, \
             IPReservation, IPAMConfig, BGPConfiguration, BGPPeer, BGPFilter, Node",
        ),
        (
            "apiVersion: tabby.dev/v1\nkind: BGPPeer\nmetadata: {name: p}\n\
             spec: {peerIp: 10.0.0.1, asNumber: 65001}\n",
            "error: <stdin>, BGPPeer \"p\": spec: unknown field `peerIp` at line 4 column 8: did \
             you mean `peerIP`?",
        ),
        (
            "kind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/8}\n",
            "error: <stdin>: apiVersion is missing: tabby resources start with apiVersion: \
             tabby.dev/v1",
        ),
        (
            "apiVersion: tabby.dev/v1\nkind: IPAMBlock\nmetadata: {name: b}\nspec: {}\n",
            "error: <stdin>, IPAMBlock \"b\": kind: \"IPAMBlock\" cannot be written with \
             calicoctl-rs: it is IPAM's own state: use the `ipam` commands",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(
            shell.run_with_stdin(&["apply", "-f", "-"], text).failed(1),
            expected
        );
    }
    assert!(pool_names(&shell).is_empty());
}

#[test]
fn json_files_are_read_with_line_numbers_and_field_paths() {
    let shell = Shell::new();
    let json = r#"{
  "apiVersion": "tabby.dev/v1",
  "kind": "IPPool",
  "metadata": {"name": "p"},
  "spec": {"cidr": "10.0.0.0/16", "blockSize": "big"}
}"#;
    let error = shell.run_with_stdin(&["apply", "-f", "-"], json).failed(1);
    assert_eq!(
        error,
        "error: <stdin>, IPPool \"p\": spec.blockSize: invalid type: string \"big\", expected \
         u8 at line 5 column 52"
    );
    let fixed = json.replace("\"big\"", "27");
    assert_eq!(shell.apply(&fixed), "ippool/p created\n");
}

#[test]
fn create_refuses_when_any_exists_and_writes_none() {
    let shell = Shell::new();
    shell.apply(&POOLS[..POOLS.find("---").unwrap()]);
    let error = shell
        .run_with_stdin(&["create", "-f", "-"], POOLS)
        .failed(1);
    assert_eq!(
        error,
        "error: <stdin>, document 1: IPPool \"pool-a\" already exists: nothing was created; use \
         apply to update it, or --skip-exists to leave it"
    );
    assert_eq!(pool_names(&shell), ["pool-a"]);
    let output = shell
        .run_with_stdin(&["create", "-f", "-", "--skip-exists"], POOLS)
        .ok();
    assert_eq!(
        output,
        "ippool/pool-a exists, left as it is\nippool/pool-b created\n"
    );
}

#[test]
fn the_same_resource_twice_in_the_files_is_refused() {
    let shell = Shell::new();
    let twice = format!("{POOLS}---\n{}", &POOLS[..POOLS.find("---").unwrap()]);
    let error = shell
        .run_with_stdin(&["apply", "-f", "-"], &twice)
        .failed(1);
    assert_eq!(
        error,
        "error: <stdin>, document 3: IPPool \"pool-a\" is also defined at <stdin>, document 1: \
         keep one of them"
    );
}

#[test]
fn replace_with_a_stale_resource_version_is_refused() {
    let shell = Shell::new();
    shell.apply(POOLS);
    let read = shell.run(&["get", "ippool", "pool-a", "-o", "yaml"]).ok();
    shell.run(&["label", "ippool", "pool-a", "zone=west"]).ok();
    let edited = read.replace("natOutgoing: false", "natOutgoing: true");
    let error = shell
        .run_with_stdin(&["replace", "-f", "-"], &edited)
        .failed(1);
    assert!(
        error.starts_with("error: IPPool \"pool-a\" changed since resourceVersion"),
        "{error}"
    );
    let without_version: String = edited
        .lines()
        .filter(|line| !line.contains("resourceVersion"))
        .map(|line| format!("{line}\n"))
        .collect();
    let output = shell
        .run_with_stdin(&["replace", "-f", "-"], &without_version)
        .ok();
    assert_eq!(output, "ippool/pool-a replaced\n");
    let missing = POOLS.replace("pool-b", "pool-z");
    let error = shell
        .run_with_stdin(&["replace", "-f", "-"], &missing)
        .failed(1);
    assert_eq!(
        error,
        "error: <stdin>, document 2: IPPool \"pool-z\" does not exist: nothing was replaced; use \
         create or apply"
    );
}

#[test]
fn an_immutable_field_cannot_be_changed_by_apply_or_patch() {
    let shell = Shell::new();
    shell.apply(POOLS);
    let moved = POOLS.replace("10.1.0.0/16", "10.9.0.0/16");
    let error = shell
        .run_with_stdin(&["apply", "-f", "-"], &moved)
        .failed(1);
    assert!(
        error.contains("spec.cidr: \"10.9.0.0/16\" cannot change (was \"10.1.0.0/16\")"),
        "{error}"
    );
    let error = shell
        .run(&[
            "patch",
            "ippool",
            "pool-a",
            "-p",
            r#"{"spec":{"blockSize":28}}"#,
        ])
        .failed(1);
    assert!(
        error.contains("spec.blockSize: 28 cannot change (was 26)"),
        "{error}"
    );
}

#[test]
fn patch_merges_validates_and_refuses_identity_changes() {
    let shell = Shell::new();
    shell.apply(POOLS);
    let output = shell
        .run(&[
            "patch",
            "ippool",
            "pool-a",
            "-p",
            r#"{"spec":{"disabled":true}}"#,
        ])
        .ok();
    assert_eq!(output, "ippool/pool-a patched\n");
    let again = shell
        .run(&["patch", "pool", "pool-a", "-p", "spec: {disabled: true}"])
        .ok();
    assert_eq!(again, "ippool/pool-a unchanged\n");
    let json = shell.run(&["get", "ippool", "pool-a", "-o", "json"]).ok();
    let stored: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(stored["spec"]["disabled"], true);

    let invalid = shell
        .run(&[
            "patch",
            "ippool",
            "pool-a",
            "-p",
            r#"{"spec":{"vxlanMode":"Sometimes"}}"#,
        ])
        .failed(1);
    assert!(
        invalid.starts_with(
            "error: IPPool \"pool-a\": the patched resource is invalid: spec.vxlanMode: unknown \
             variant `Sometimes`"
        ),
        "{invalid}"
    );
    let renamed = shell
        .run(&[
            "patch",
            "ippool",
            "pool-a",
            "-p",
            r#"{"metadata":{"name":"x"}}"#,
        ])
        .failed(2);
    assert!(
        renamed.contains("the patch changes metadata.name"),
        "{renamed}"
    );
    let missing = shell
        .run(&["patch", "ippool", "nope", "-p", "{}"])
        .failed(1);
    assert_eq!(missing, "error: IPPool \"nope\" not found");
}

#[test]
fn labels_are_added_protected_overwritten_and_removed() {
    let shell = Shell::new();
    shell.apply(POOLS);
    let run = |args: &[&str]| shell.run(args);
    assert_eq!(
        run(&["label", "ippool", "pool-a", "zone=east", "tier=1"]).ok(),
        "ippool/pool-a labeled\n"
    );
    let error = run(&["label", "ippool", "pool-a", "zone=west"]).failed(1);
    assert_eq!(
        error,
        "error: IPPool \"pool-a\" already has label zone=east: add --overwrite to change it"
    );
    run(&["label", "ippool", "pool-a", "zone=west", "--overwrite"]).ok();
    run(&["label", "ippool", "pool-a", "tier", "--remove"]).ok();
    let selected = run(&["get", "ippools", "-l", "zone == \"west\""]).ok();
    assert_eq!(selected.lines().count(), 2, "{selected}");
    assert!(selected.contains("pool-a"));
    let error = run(&["label", "ippool", "pool-a", "bad key=x"]).failed(2);
    assert!(error.contains("metadata.labels[\"bad key\"]"), "{error}");
    let error = run(&["label", "ippool", "pool-a", "zone"]).failed(2);
    assert!(
        error.contains("is not KEY=VALUE (to remove the label, add --remove)"),
        "{error}"
    );
}

#[test]
fn delete_reports_each_missing_name_and_skip_not_found_tolerates_them() {
    let shell = Shell::new();
    shell.apply(POOLS);
    let output = shell.run(&["delete", "ippool", "pool-a", "ghost"]);
    assert_eq!(output.code, 1);
    assert_eq!(output.stdout, "ippool/pool-a deleted\n");
    assert_eq!(output.stderr, "error: IPPool \"ghost\" not found\n");
    let output = shell.run(&["delete", "ippool", "pool-b", "ghost", "--skip-not-found"]);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(pool_names(&shell).is_empty());
    let deleted = shell.run_with_stdin(&["apply", "-f", "-"], POOLS).ok();
    assert_eq!(deleted.lines().count(), 2);
    let output = shell.run_with_stdin(&["delete", "-f", "-"], POOLS).ok();
    assert_eq!(output, "ippool/pool-a deleted\nippool/pool-b deleted\n");
}

/// A block of `cidr` on `node`, with `used` addresses allocated (the last one
/// borrowed by `borrower` when given).
async fn allocate(
    store: &dyn Backend,
    cidr: &str,
    node: &str,
    used: usize,
    borrower: Option<&str>,
) {
    let text = format!(
        "apiVersion: tabby.dev/v1\nkind: IPAMBlock\nmetadata: {{name: {}}}\n\
         spec: {{cidr: {cidr}, affinity: 'host:{node}'}}\n",
        cidr.replace(['.', '/'], "-")
    );
    let mut block: IPAMBlock = api::yaml::from_str(&text).unwrap();
    for ordinal in 0..used {
        let mut attribute = api::resources::AllocationAttribute {
            handle_id: Some(format!("pod-{ordinal}")),
            secondary: Default::default(),
        };
        if let (Some(borrower), true) = (borrower, ordinal + 1 == used) {
            attribute.secondary.insert("node".into(), borrower.into());
        }
        block.spec.attributes.push(attribute);
        block.spec.allocations[ordinal] = Some(ordinal);
        block.spec.unallocated.retain(|o| *o != ordinal);
    }
    store.create(&block).await.unwrap();
}

#[test]
fn deleting_a_pool_in_use_is_refused_with_counts_per_node_unless_forced() {
    let shell = Shell::new();
    shell.apply(POOLS);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        allocate(
            &*shell.store,
            "10.1.0.0/26",
            "worker-1",
            3,
            Some("worker-2"),
        )
        .await;
        allocate(&*shell.store, "10.1.0.64/26", "worker-2", 1, None).await;
        allocate(&*shell.store, "10.2.0.0/26", "worker-1", 5, None).await;
    });
    let error = shell.run(&["delete", "ippool", "pool-a"]).failed(1);
    assert_eq!(
        error,
        "error: IPPool \"pool-a\" (10.1.0.0/16) still holds 4 allocations (2 on worker-1, 2 on \
         worker-2): disable it first (calicoctl-rs patch ippool pool-a -p \
         '{\"spec\":{\"disabled\":true}}'), move those pods, see who is left with \
         `calicoctl-rs ipam show --pool 10.1.0.0/16 --show-allocations`, or delete anyway with \
         --force"
    );
    assert_eq!(pool_names(&shell), ["pool-a", "pool-b"]);
    let forced = shell.run(&["delete", "ippool", "pool-a", "--force"]);
    assert_eq!(forced.code, 0, "{forced:?}");
    assert!(
        forced
            .stderr
            .starts_with("warning: IPPool \"pool-a\" (10.1.0.0/16) still holds 4")
    );
    assert_eq!(pool_names(&shell), ["pool-b"]);
}

#[test]
fn getting_a_missing_name_prints_the_others_and_fails() {
    let shell = Shell::new();
    shell.apply(POOLS);
    let output = shell.run(&["get", "ippools", "pool-a", "ghost"]);
    assert_eq!(output.code, 1);
    assert_eq!(output.stdout.lines().count(), 2, "{output:?}");
    assert_eq!(output.stderr, "error: IPPool \"ghost\" not found\n");
    let alone = shell.run(&["get", "ippool", "ghost", "-o", "yaml"]);
    assert_eq!((alone.code, alone.stdout.as_str()), (1, ""));
}

#[test]
fn calico_yaml_applies_as_tabby_resources_with_notes_on_stderr() {
    let shell = Shell::new();
    let calico = "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata:\n  \
                  name: default\nspec:\n  logSeverityScreen: Warning\n  asNumber: 65100\n";
    let output = shell.run_with_stdin(&["apply", "-f", "-"], calico);
    assert_eq!(output.code, 0, "{output:?}");
    assert_eq!(output.stdout, "bgpconfiguration/default created\n");
    assert_eq!(
        output.stderr,
        "note: <stdin>, BGPConfiguration \"default\": spec.logSeverityScreen \"Warning\" \
         dropped: BGP logs at that level come from tabby-agent's \
         --log=info,bgp=warn (TABBY_LOG) on every node, a flag rather than a \
         datastore setting\n"
    );
    let table = shell.run(&["get", "bgpconfig"]).ok();
    assert!(table.contains("65100"), "{table}");
}

#[test]
fn a_directory_of_manifests_is_read_in_name_order() {
    let shell = Shell::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("2-pools.yaml"), POOLS).unwrap();
    std::fs::write(
        dir.path().join("1-config.json"),
        r#"{"apiVersion":"tabby.dev/v1","kind":"IPAMConfig","metadata":{"name":"default"},"spec":{}}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a manifest").unwrap();
    let output = shell
        .run(&["apply", "-f", dir.path().to_str().unwrap()])
        .ok();
    assert_eq!(
        output,
        "ipamconfig/default created\nippool/pool-a created\nippool/pool-b created\n"
    );
}

/// The memory store, where another writer changes a resource between the CLI's
/// read and its write, once.
#[derive(Debug)]
struct RacingStore {
    inner: MemoryStore,
    raced: AtomicBool,
}

#[async_trait]
impl Backend for RacingStore {
    async fn get_record(&self, kind: Kind, name: &str) -> Result<Record> {
        self.inner.get_record(kind, name).await
    }

    async fn list_records(&self, kind: Kind, options: &ListOptions) -> Result<List<Record>> {
        self.inner.list_records(kind, options).await
    }

    async fn create_record(&self, kind: Kind, name: &str, value: Value) -> Result<Record> {
        self.inner.create_record(kind, name, value).await
    }

    async fn update_record(
        &self,
        kind: Kind,
        name: &str,
        value: Value,
        expected: Revision,
    ) -> Result<Record> {
        if !self.raced.swap(true, Ordering::SeqCst) {
            let mut other: IPPool = self.inner.get(name).await?;
            other
                .metadata
                .labels
                .insert("changed-by".into(), "someone-else".into());
            self.inner.update(&other).await?;
        }
        self.inner.update_record(kind, name, value, expected).await
    }

    async fn delete_record(
        &self,
        kind: Kind,
        name: &str,
        expected: Option<Revision>,
    ) -> Result<Record> {
        self.inner.delete_record(kind, name, expected).await
    }

    async fn watch_records(&self, kind: Kind, from: Revision) -> Result<WatchStream<Record>> {
        self.inner.watch_records(kind, from).await
    }
}

#[test]
fn a_write_that_loses_a_race_is_recomputed_from_a_fresh_read() {
    let store = Arc::new(RacingStore {
        inner: MemoryStore::new(),
        raced: AtomicBool::new(true),
    });
    let shell = Shell::on(store.clone());
    shell.apply(POOLS);
    store.raced.store(false, Ordering::SeqCst);
    shell
        .run(&[
            "patch",
            "ippool",
            "pool-a",
            "-p",
            r#"{"spec":{"natOutgoing":true}}"#,
        ])
        .ok();
    let json = shell.run(&["get", "ippool", "pool-a", "-o", "json"]).ok();
    let stored: Value = serde_json::from_str(&json).unwrap();
    // Both writes survive: the other writer's label, and the patch redone on top of it.
    assert_eq!(stored["metadata"]["labels"]["changed-by"], "someone-else");
    assert_eq!(stored["spec"]["natOutgoing"], true);
}

#[test]
fn completions_are_generated_for_each_shell() {
    let shell = Shell::new();
    for (name, marker) in [
        ("bash", "_calicoctl__rs()"),
        ("zsh", "#compdef calicoctl-rs"),
        ("fish", "complete -c calicoctl-rs"),
    ] {
        let script = shell.run(&["completion", name]).ok();
        assert!(
            script.contains(marker),
            "{name}: {}",
            &script[..200.min(script.len())]
        );
    }
    let script = shell.run(&["completion", "bash"]).ok();
    assert!(script.contains("ippools"), "kinds are completed");
}

#[test]
fn ipam_configure_creates_then_changes_the_default_config() {
    let shell = Shell::new();
    assert_eq!(
        shell
            .run(&["ipam", "configure", "--strictaffinity=true"])
            .ok(),
        "ipamconfig/default created: strictAffinity=true maxBlocksPerHost=0 autoAllocateBlocks=true\n"
    );
    assert_eq!(
        shell
            .run(&["ipam", "configure", "--max-blocks-per-host", "4"])
            .ok(),
        "ipamconfig/default configured: strictAffinity=true maxBlocksPerHost=4 autoAllocateBlocks=true\n"
    );
    let table = shell.run(&["get", "ipamconfigs", "-o", "wide"]).ok();
    assert!(
        table.contains("default   true             true                 4"),
        "{table}"
    );
    let nothing = shell.run(&["ipam", "configure"]);
    assert_eq!(nothing.code, 2, "{nothing:?}");
}

/// Node n1 as its agent registered it: an autodetected address and a tunnel
/// address, the AS and labels its flags gave.
const REGISTERED: &str = "apiVersion: tabby.dev/v1\nkind: Node\nmetadata:\n  name: n1\n  \
    labels: {rack: r0}\nspec:\n  bgp:\n    ipv4Address: 10.0.1.10/24\n    asNumber: 64512\n    \
    ipv4IPIPTunnelAddr: 10.48.0.1\n";

fn node_yaml(shell: &Shell) -> String {
    shell.run(&["get", "node", "n1", "-o", "yaml"]).ok()
}

#[test]
fn calico_yaml_patch_and_label_set_a_nodes_as_and_rack_and_pin_an_address() {
    let shell = Shell::new();
    shell.apply(REGISTERED);
    let patched = shell.run(&[
        "patch",
        "node",
        "n1",
        "-p",
        r#"{"spec":{"bgp":{"asNumber":65001}}}"#,
    ]);
    assert_eq!(patched.ok(), "node/n1 patched\n");
    let labelled = shell.run(&["label", "nodes", "n1", "rack=rack1", "--overwrite"]);
    assert_eq!(labelled.ok(), "node/n1 labeled\n");
    let yaml = node_yaml(&shell);
    assert!(yaml.contains("asNumber: 65001"), "{yaml}");
    assert!(yaml.contains("rack: rack1"), "{yaml}");
    assert!(!yaml.contains("pinnedAddresses"), "{yaml}");

    // Setting the address pins it; removing it unpins it (the agent's again).
    let pin = r#"{"spec":{"bgp":{"ipv4Address":"10.0.1.5/24"}}}"#;
    shell.run(&["patch", "node", "n1", "-p", pin]).ok();
    let yaml = node_yaml(&shell);
    assert!(yaml.contains("ipv4Address: 10.0.1.5/24"), "{yaml}");
    assert!(yaml.contains("pinnedAddresses:\n    - IPv4"), "{yaml}");
    let unpin = r#"{"spec":{"bgp":{"ipv4Address":null}}}"#;
    shell.run(&["patch", "node", "n1", "-p", unpin]).ok();
    let yaml = node_yaml(&shell);
    assert!(!yaml.contains("pinnedAddresses"), "{yaml}");
    assert!(
        yaml.contains("ipv4Address: 10.0.1.5/24"),
        "kept until the agent's next start: {yaml}"
    );
}

#[test]
fn calico_yaml_a_calico_node_applied_over_a_registered_one_keeps_the_agents_fields() {
    let shell = Shell::new();
    shell.apply(REGISTERED);
    let calico = "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: n1\n  \
                  labels: {rack: rack1}\nspec:\n  bgp:\n    asNumber: 65001\n    \
                  routeReflectorClusterID: 224.0.0.1\n";
    let output = shell.run_with_stdin(&["apply", "-f", "-"], calico);
    assert_eq!(output.stdout, "node/n1 configured\n", "{output:?}");
    assert_eq!(
        output.stderr,
        "note: <stdin>, Node \"n1\": kept, and never overwritten by the agent: labels, \
         asNumber 65001, routeReflectorClusterID 224.0.0.1; the agent owns ipv4Address and \
         ipv6Address (autodetected at each start) and the tunnel addresses\n"
    );
    let yaml = node_yaml(&shell);
    for kept in [
        "ipv4Address: 10.0.1.10/24",
        "ipv4IPIPTunnelAddr: 10.48.0.1",
        "asNumber: 65001",
        "routeReflectorClusterID: 224.0.0.1",
        "rack: rack1",
    ] {
        assert!(yaml.contains(kept), "{kept}: {yaml}");
    }
    assert!(!yaml.contains("pinnedAddresses"), "{yaml}");
}

#[test]
fn calico_yaml_a_calico_node_for_an_unregistered_node_is_stored_for_its_agent() {
    let shell = Shell::new();
    let calico = "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: n9\n  \
                  labels: {rack: rack3}\nspec:\n  bgp:\n    asNumber: 65003\n    \
                  ipv4Address: 10.0.3.9/24\n";
    let output = shell.run_with_stdin(&["apply", "-f", "-"], calico);
    assert_eq!(output.stdout, "node/n9 created\n", "{output:?}");
    let yaml = shell.run(&["get", "node", "n9", "-o", "yaml"]).ok();
    assert!(yaml.contains("asNumber: 65003"), "{yaml}");
    assert!(yaml.contains("pinnedAddresses:\n    - IPv4"), "{yaml}");
}
