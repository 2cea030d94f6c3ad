//! The plugin's state between its processes, in the state directory:
//!
//! - `lock`: held (flock) for the whole of every ADD, DEL and GC, so one node's
//!   plugin processes take turns, as Calico's host-wide IPAM lock makes them. They
//!   would be correct without it (every write is a compare-and-swap) but would
//!   fight over the same block. A call waits for it at most `lock_timeout`, then
//!   answers "try again later": a stuck call does not stall every pod on the node.
//! - `<node>.json`: the allocator's view (settings, the node's blocks with their
//!   revisions), so the next process writes straight to its block. It is a cache:
//!   a missing or unreadable file only makes that process start cold, a stale one
//!   costs a re-read when the compare-and-swap fails, and one that cannot be saved
//!   is a warning, never a failed call once the datastore has the change.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ipam::state::NodeState;

use crate::error::CniError;

/// How often a waiting call tries the lock again.
const LOCK_POLL: Duration = Duration::from_millis(20);

/// The node's lock, held until dropped (closing the file releases it).
#[derive(Debug)]
pub struct NodeLock {
    _lock: File,
    cache: PathBuf,
}

impl NodeLock {
    /// Waits for the lock in `dir` (created if missing), at most `timeout`.
    pub fn acquire(dir: &Path, node: &str, timeout: Duration) -> Result<Self, CniError> {
        let io = |what: String| move |source| CniError::Io { what, source };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io(format!(
                "creating the state directory {}",
                dir.display()
            )))?;
        let path = dir.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(format!("opening {}", path.display())))?;
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < timeout => {
                    std::thread::sleep(LOCK_POLL);
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(CniError::LockTimeout {
                        path,
                        waited: timeout,
                    });
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(io(format!("locking {}", path.display()))(e));
                }
            }
        }
        Ok(Self {
            _lock: file,
            cache: dir.join(format!("{node}.json")),
        })
    }

    /// The saved view, or a cold one.
    pub fn load(&self, node: &str) -> NodeState {
        fs::read(&self.cache)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<NodeState>(&bytes).ok())
            .filter(|state| state.node == node)
            .unwrap_or_else(|| NodeState::new(node))
    }

    /// Saves the view for the next process (written aside, then renamed in).
    pub fn save(&self, state: &NodeState) -> Result<(), CniError> {
        let aside = self.cache.with_extension("json.new");
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&aside)?;
            file.write_all(&serde_json::to_vec(state).map_err(std::io::Error::other)?)?;
            file.sync_data()?;
            fs::rename(&aside, &self.cache)
        };
        write().map_err(|source| CniError::Io {
            what: format!("saving {}", self.cache.display()),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipam_the_saved_view_is_loaded_back_and_a_broken_one_starts_cold() {
        let dir = tempfile::tempdir().unwrap();
        let lock =
            NodeLock::acquire(&dir.path().join("ipam"), "n1", Duration::from_secs(1)).unwrap();
        assert_eq!(lock.load("n1"), NodeState::new("n1"));
        let mut state = NodeState::new("n1");
        state.listed = true;
        lock.save(&state).unwrap();
        assert_eq!(lock.load("n1"), state);
        assert_eq!(
            lock.load("n2"),
            NodeState::new("n2"),
            "another node's view is not used"
        );
        fs::write(dir.path().join("ipam/n1.json"), b"{not json").unwrap();
        assert_eq!(lock.load("n1"), NodeState::new("n1"));
    }
}
