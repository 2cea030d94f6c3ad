//! Runs calicoctl-rs commands in-process against one datastore, as a sequence of
//! invocations by an operator would; and compares output with golden files.

#![allow(dead_code)] // each test binary uses its own part of the helpers

use std::path::PathBuf;
use std::sync::Arc;

use api::datastore::{Backend, MemoryStore};

#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Asserts the command succeeded and returns its standard output.
    #[track_caller]
    pub fn ok(self) -> String {
        assert_eq!(self.code, 0, "failed: {self:?}");
        self.stdout
    }

    /// Asserts the command failed with `code` and printed exactly one line.
    #[track_caller]
    pub fn failed(self, code: i32) -> String {
        assert_eq!(self.code, code, "{self:?}");
        assert_eq!(
            self.stderr.lines().count(),
            1,
            "not one line: {:?}",
            self.stderr
        );
        self.stderr.trim_end().to_owned()
    }
}

/// An operator's shell: commands share the datastore.
#[derive(Debug)]
pub struct Shell {
    pub store: Arc<dyn Backend>,
}

impl Shell {
    pub fn new() -> Self {
        Self::on(Arc::new(MemoryStore::new()))
    }

    pub fn on(store: Arc<dyn Backend>) -> Self {
        Self { store }
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, "")
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut input = stdin.as_bytes();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let code = {
            let mut session = calicoctl_rs::Session::with_store(
                &mut out,
                &mut err,
                &mut input,
                self.store.clone(),
            );
            let argv = std::iter::once("calicoctl-rs").chain(args.iter().copied());
            runtime.block_on(calicoctl_rs::run(argv, &mut session))
        };
        Output {
            code,
            stdout: String::from_utf8(out).unwrap(),
            stderr: String::from_utf8(err).unwrap(),
        }
    }

    /// Applies `yaml` from standard input.
    #[track_caller]
    pub fn apply(&self, yaml: &str) -> String {
        self.run_with_stdin(&["apply", "-f", "-"], yaml).ok()
    }
}

/// A run of the binary's standard output, after checking it exited 0 (its standard
/// error shown otherwise).
#[track_caller]
pub fn stdout_of(output: std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    String::from_utf8(output.stdout).unwrap()
}

/// The one line a failed run of the binary printed, after checking its exit code.
#[track_caller]
pub fn error_line(output: std::process::Output, code: i32) -> String {
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr:?}");
    stderr.trim_end().to_owned()
}

/// A fixture's path relative to the package, as error messages will print it
/// (cargo runs tests from the package's directory).
pub fn fixture(name: &str) -> String {
    format!("tests/fixtures/{name}")
}

/// Compares `actual` with `tests/golden/<name>`; `GOLDEN_UPDATE=1` rewrites the file.
#[track_caller]
pub fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("GOLDEN_UPDATE").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (GOLDEN_UPDATE=1 writes it)", path.display()));
    assert!(
        expected == actual,
        "{} differs (GOLDEN_UPDATE=1 rewrites it):\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

/// The Calico corpus: a file per kind, every field of Calico's reference.
pub const CALICO_CORPUS: &str = "tests/fixtures/calico";
/// Calico settings tabby refuses, a document each, and two that convert.
pub const CALICO_REFUSED: &str = "tests/fixtures/calico-refused.yaml";
/// The kinds the corpus writes, as `get` names them.
pub const CORPUS_KINDS: [&str; 6] = [
    "ippools",
    "ipreservations",
    "bgpconfigurations",
    "bgppeers",
    "bgpfilters",
    "nodes",
];

/// The corpus's files, in name order.
pub fn corpus_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(CALICO_CORPUS)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files
}

/// `yaml` without `resourceVersion` lines, which differ between datastores.
pub fn without_revisions(yaml: &str) -> String {
    yaml.lines()
        .filter(|line| !line.trim_start().starts_with("resourceVersion:"))
        .map(|line| format!("{line}\n"))
        .collect()
}
