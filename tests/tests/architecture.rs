//! ARCHITECTURE.md held to the code: its crate table against `cargo metadata`, and
//! its rules for ignored tests (needs root; slow checks in `slow_*.rs`) against
//! every Rust file of the workspace's crates.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The columns whose crates are checked, as ARCHITECTURE.md's table names them.
const HEADER: &str = "| folder | what it is | depends on | its tests use |";

/// One crate's edges to the workspace's other crates.
#[derive(Debug, Default)]
struct Edges {
    /// `[dependencies]` and `[build-dependencies]`.
    depends_on: BTreeSet<String>,
    /// `[dev-dependencies]` that are not also in `depends_on`.
    tests_use: BTreeSet<String>,
}

impl Edges {
    fn is_empty(&self) -> bool {
        self.depends_on.is_empty() && self.tests_use.is_empty()
    }
}

struct Workspace {
    root: PathBuf,
    /// Folder relative to the root, with a trailing slash (`agent/`) → edges.
    crates: BTreeMap<String, Edges>,
}

fn workspace() -> Workspace {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .output()
        .expect("running cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();
    let root = PathBuf::from(metadata["workspace_root"].as_str().unwrap());
    let packages = metadata["packages"].as_array().unwrap();
    let members: BTreeSet<&str> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    let mut crates = BTreeMap::new();
    for package in packages {
        let manifest = Path::new(package["manifest_path"].as_str().unwrap());
        let folder = manifest.parent().unwrap().strip_prefix(&root).unwrap();
        let mut edges = Edges::default();
        let mut dev = BTreeSet::new();
        for dependency in package["dependencies"].as_array().unwrap() {
            let name = dependency["name"].as_str().unwrap();
            if !members.contains(name) {
                continue;
            }
            if dependency["kind"] == "dev" {
                dev.insert(name.to_owned());
            } else {
                edges.depends_on.insert(name.to_owned());
            }
        }
        edges.tests_use = &dev - &edges.depends_on;
        crates.insert(format!("{}/", folder.display()), edges);
    }
    Workspace { root, crates }
}

/// The table's rows: folder → the crates its two dependency columns list.
fn table(architecture: &str) -> BTreeMap<String, Edges> {
    let listed = |cell: &str| -> BTreeSet<String> {
        cell.split(',')
            .map(|c| c.trim().trim_matches('`'))
            .filter(|c| !c.is_empty() && *c != "—")
            .map(str::to_owned)
            .collect()
    };
    architecture
        .lines()
        .skip_while(|line| line.trim() != HEADER)
        .skip(2) // the header and its `| --- |` line
        .take_while(|line| line.starts_with('|'))
        .map(|row| {
            let cells: Vec<&str> = row.trim().trim_matches('|').split('|').collect();
            let [folder, .., depends_on, tests_use] = cells[..] else {
                panic!("ARCHITECTURE.md: a crate table row without four cells: {row}");
            };
            let edges = Edges {
                depends_on: listed(depends_on),
                tests_use: listed(tests_use),
            };
            (folder.trim().trim_matches('`').to_owned(), edges)
        })
        .collect()
}

/// Every way the table and the manifests disagree, one sentence each.
fn disagreements(
    crates: &BTreeMap<String, Edges>,
    table: &BTreeMap<String, Edges>,
    folder_exists: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut found = Vec::new();
    for (folder, actual) in crates {
        let Some(listed) = table.get(folder) else {
            found.push(format!("the crate in `{folder}` has no row"));
            continue;
        };
        let columns = [
            (
                "depends on",
                "[dependencies]/[build-dependencies]",
                &actual.depends_on,
                &listed.depends_on,
            ),
            (
                "its tests use",
                "[dev-dependencies]",
                &actual.tests_use,
                &listed.tests_use,
            ),
        ];
        for (column, section, actual, listed) in columns {
            for missing in actual - listed {
                found.push(format!(
                    "missing edge `{folder}` → `{missing}`: {folder}Cargo.toml has it in \
                     {section}, the row's \"{column}\" does not list it"
                ));
            }
            for extra in listed - actual {
                found.push(format!(
                    "extra edge `{folder}` → `{extra}`: the row's \"{column}\" lists it, \
                     {folder}Cargo.toml has no such entry in {section}"
                ));
            }
        }
    }
    for (folder, listed) in table {
        if crates.contains_key(folder) {
            continue;
        }
        if !folder_exists(folder) {
            found.push(format!("`{folder}` has a row but no folder"));
        } else if !listed.is_empty() {
            found.push(format!(
                "`{folder}` is no workspace crate, yet its row lists dependencies"
            ));
        }
    }
    found
}

#[test]
fn architecture_the_crate_table_shows_every_crate_and_dependency_edge_of_cargo_metadata() {
    let workspace = workspace();
    let architecture = std::fs::read_to_string(workspace.root.join("ARCHITECTURE.md")).unwrap();
    let table = table(&architecture);
    assert!(
        !table.is_empty(),
        "ARCHITECTURE.md has no crate table headed `{HEADER}`"
    );
    let found = disagreements(&workspace.crates, &table, |folder| {
        workspace.root.join(folder).is_dir()
    });
    assert!(
        found.is_empty(),
        "ARCHITECTURE.md's crate table disagrees with cargo metadata; update the table:\n- {}",
        found.join("\n- ")
    );
}

#[test]
fn architecture_a_missing_or_extra_edge_is_named_in_the_failure() {
    let edges = |depends_on: &[&str], tests_use: &[&str]| Edges {
        depends_on: depends_on.iter().map(|c| c.to_string()).collect(),
        tests_use: tests_use.iter().map(|c| c.to_string()).collect(),
    };
    let crates = BTreeMap::from([
        ("agent/".to_owned(), edges(&["api", "cni"], &["harness"])),
        ("bfd/".to_owned(), edges(&[], &[])),
    ]);
    let architecture = format!(
        "{HEADER}\n| --- | --- | --- | --- |\n\
         | `agent/` | the agent | `api`, `ipam` | `harness` |\n\
         | `manifests/` | YAML | — | — |\n\
         | `gone/` | removed | — | — |\n"
    );
    let found = disagreements(&crates, &table(&architecture), |folder| folder != "gone/");
    assert_eq!(
        found,
        [
            "missing edge `agent/` → `cni`: agent/Cargo.toml has it in \
             [dependencies]/[build-dependencies], the row's \"depends on\" does not list it",
            "extra edge `agent/` → `ipam`: the row's \"depends on\" lists it, \
             agent/Cargo.toml has no such entry in [dependencies]/[build-dependencies]",
            "the crate in `bfd/` has no row",
            "`gone/` has a row but no folder",
        ]
    );
}

/// Every `.rs` file in the workspace's crate folders (its path relative to the
/// root) and its text.
fn rust_sources() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "target") {
                    walk(&path, files);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let workspace = workspace();
    let mut files = Vec::new();
    for folder in workspace.crates.keys() {
        walk(&workspace.root.join(folder), &mut files);
    }
    files
        .into_iter()
        .map(|f| f.strip_prefix(&workspace.root).unwrap().to_owned())
        .filter(|f| f != Path::new(file!())) // its messages quote the attributes
        .map(|f| {
            let source = std::fs::read_to_string(workspace.root.join(&f)).unwrap();
            (f, source)
        })
        .collect()
}

#[test]
fn architecture_ignored_tests_need_root_or_are_slow_checks_in_a_slow_module() {
    let mut found = Vec::new();
    for (file, source) in rust_sources() {
        // Open braces inside a `mod slow { ... }`, while in one.
        let mut slow_depth: Option<usize> = None;
        let (mut slow_tests, mut marked_slow) = (0, 0);
        for (n, line) in source.lines().enumerate() {
            let line = line.trim();
            if slow_depth.is_none() && (line == "mod slow {" || line.ends_with(" mod slow {")) {
                slow_depth = Some(0);
            }
            let in_slow = slow_depth.is_some();
            if let Some(depth) = &mut slow_depth {
                *depth =
                    (*depth + line.matches('{').count()).saturating_sub(line.matches('}').count());
                if *depth == 0 {
                    slow_depth = None;
                }
            }
            slow_tests += usize::from(in_slow && line.starts_with("#[test]"));
            if !line.starts_with("#[ignore") || line == r#"#[ignore = "needs root"]"# {
                continue;
            }
            if line.starts_with(r#"#[ignore = "slow: "#) && in_slow {
                marked_slow += 1;
                continue;
            }
            found.push(format!(
                "{}:{}: `{line}`: an ignored test either needs root \
                 (`#[ignore = \"needs root\"]`) or is a slow check \
                 (`#[ignore = \"slow: <why>\"]` in a `mod slow {{ ... }}`); \
                 anything else never runs in CI",
                file.display(),
                n + 1
            ));
        }
        if slow_tests != marked_slow {
            found.push(format!(
                "{}: {slow_tests} tests in `mod slow`, {marked_slow} marked \
                 `#[ignore = \"slow: <why>\"]`: nextest leaves `slow::` tests out of the \
                 default run, so every test there is a slow check",
                file.display()
            ));
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn architecture_every_test_calling_require_root_is_an_integration_test_ignored_as_needing_root() {
    let mut found = Vec::new();
    for (file, source) in rust_sources() {
        let lines: Vec<&str> = source.lines().map(str::trim).collect();
        let in_folder = |name: &str| {
            file.components()
                .nth(1)
                .is_some_and(|c| c.as_os_str() == name)
        };
        for (n, line) in lines.iter().enumerate() {
            if !line.contains("require_root();") || line.starts_with("//") {
                continue;
            }
            let at = format!("{}:{}", file.display(), n + 1);
            if in_folder("benches") {
                continue; // a bench is no test: nothing to mark
            }
            if !in_folder("tests") {
                found.push(format!(
                    "{at}: a test that needs root is an integration test in its crate's tests/ folder"
                ));
                continue;
            }
            let Some(start) = lines[..n].iter().rposition(|l| l.contains("fn ")) else {
                continue;
            };
            let attributes: Vec<&str> = lines[..start]
                .iter()
                .rev()
                .take_while(|l| l.starts_with("#[") || l.starts_with("//"))
                .copied()
                .collect();
            if !attributes.iter().any(|a| a.starts_with("#[test]")) {
                found.push(format!(
                    "{at}: call harness::require_root() first in the #[test] fn itself"
                ));
            } else if !attributes.iter().any(|a| {
                // A slow check is ignored too; `scripts/test --slow` runs as root.
                *a == r#"#[ignore = "needs root"]"# || a.starts_with(r#"#[ignore = "slow: "#)
            }) {
                found.push(format!(
                    "{at}: mark the test #[ignore = \"needs root\"] so a run without root \
                     reports it skipped"
                ));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}
