//! Per-test log directories: `<target>/test-logs/<test>-<id>/`, kept after the run so
//! a failure can be read at leisure.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::names;

/// One test's log directory.
#[derive(Debug, Clone)]
pub struct LogDir {
    path: PathBuf,
}

impl LogDir {
    /// Creates `<test>-<fresh id>` under [`logs_root`].
    pub fn new(test: &str) -> Result<Self> {
        Self::with_id(test, &names::unique_id())
    }

    /// Creates `<test>-<id>` under [`logs_root`], for a run that already has an id.
    pub fn with_id(test: &str, id: &str) -> Result<Self> {
        let path = logs_root().join(format!("{}-{id}", names::sanitize(test)));
        fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for LogDir {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

/// Where test logs go: `$TABBY_TEST_LOGS`, else `$CARGO_TARGET_DIR/test-logs`, else the
/// workspace's `target/test-logs`.
pub fn logs_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("TABBY_TEST_LOGS") {
        return dir.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("test-logs")
}

/// The last `lines` lines of a file (empty if it cannot be read).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("log");
        fs::write(&file, "a\nb\nc\n").unwrap();
        assert_eq!(tail(&file, 2), "b\nc");
        assert_eq!(tail(&file, 10), "a\nb\nc");
        assert_eq!(tail(&dir.path().join("missing"), 2), "");
    }
}
