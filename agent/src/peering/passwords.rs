//! BGP passwords that `BGPPeer`s and the mesh reference as files on the node,
//! read off the agent's loop: a file may be a FIFO or sit on a stalled mount, and
//! the loop must never wait on it. The loop asks for the passwords the datastore
//! references ([`Passwords::want`]); a blocking task reads each and sends the
//! result back; the plan uses what was read ([`Passwords::get`]). They are read
//! again at every resync, so a rotated key takes effect.
//!
//! A file must be inside the allowed directory (after following links: Kubernetes
//! mounts Secrets through them), a regular file, and hold 1 to 80 bytes (the
//! kernel's TCP-MD5 key limit) after trailing whitespace; errors say which.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use api::resources::BgpPassword;
use tokio::sync::mpsc;

/// The kernel's longest TCP-MD5 key.
pub const MAX_KEY_LEN: usize = bgp::transport::md5::MAX_KEY_LEN;
/// Where password files must be unless `--bgp-password-dir` says otherwise.
pub const DEFAULT_DIR: &str = "/etc/tabby/bgp-passwords";
/// Results waiting for the loop; readers wait for room beyond that.
const RESULTS: usize = 64;

/// A key as read, or why it cannot be used.
pub type Key = Result<Vec<u8>, String>;

#[derive(Debug)]
pub struct Passwords {
    dir: PathBuf,
    keys: BTreeMap<BgpPassword, Key>,
    /// Asked for and not answered yet.
    reading: BTreeSet<BgpPassword>,
    results: mpsc::Sender<(BgpPassword, Key)>,
}

impl Passwords {
    /// Password files in `dir`; results arrive on the returned receiver, for
    /// [`Passwords::read`].
    pub fn new(dir: PathBuf) -> (Self, mpsc::Receiver<(BgpPassword, Key)>) {
        let (results, receiver) = mpsc::channel(RESULTS);
        let passwords = Self {
            dir,
            keys: BTreeMap::new(),
            reading: BTreeSet::new(),
            results,
        };
        (passwords, receiver)
    }

    /// Starts reading each of `wanted` not read or being read yet; with
    /// `again`, also those already read (the resync). Passwords no longer wanted
    /// are forgotten.
    pub fn want<'a>(&mut self, wanted: impl IntoIterator<Item = &'a BgpPassword>, again: bool) {
        let wanted: BTreeSet<&BgpPassword> = wanted.into_iter().collect();
        self.keys.retain(|p, _| wanted.contains(p));
        for password in wanted {
            if self.reading.contains(password) || (!again && self.keys.contains_key(password)) {
                continue;
            }
            self.reading.insert(password.clone());
            let (dir, password, results) =
                (self.dir.clone(), password.clone(), self.results.clone());
            tokio::task::spawn_blocking(move || {
                let key = read(&dir, &password);
                let _ = results.blocking_send((password, key));
            });
        }
    }

    /// Takes a result; true when it changed what the plan sees.
    pub fn read(&mut self, password: BgpPassword, key: Key) -> bool {
        self.reading.remove(&password);
        self.keys.insert(password, key.clone()) != Some(key)
    }

    /// The key for `password`, as the plan asks for it.
    pub fn get(&self, password: &BgpPassword) -> Key {
        match self.keys.get(password) {
            Some(key) => key.clone(),
            None => Err("not read yet".into()),
        }
    }
}

/// Reads the key `password` references.
pub fn read(dir: &Path, password: &BgpPassword) -> Key {
    match (&password.file, &password.secret_key_ref) {
        (Some(file), _) => read_key(dir, Path::new(file)),
        (None, Some(secret)) => Err(format!(
            "secretKeyRef {}/{} needs the kubernetes datastore; use file instead",
            secret.name, secret.key
        )),
        (None, None) => Err("neither file nor secretKeyRef is set".into()),
    }
}

/// A key file's content without trailing whitespace, if the file may be used.
fn read_key(dir: &Path, file: &Path) -> Key {
    let shown = file.display();
    let allowed = dir
        .canonicalize()
        .map_err(|e| format!("the password directory {}: {e}", dir.display()))?;
    let real = file
        .canonicalize()
        .map_err(|e| format!("reading {shown}: {e}"))?;
    if !real.starts_with(&allowed) {
        return Err(format!(
            "{shown} is outside {} (--bgp-password-dir), where password files must be",
            dir.display()
        ));
    }
    // Not blocking on a FIFO or device; the path was resolved already.
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(&real)
        .map_err(|e| format!("reading {shown}: {e}"))?;
    let metadata = opened
        .metadata()
        .map_err(|e| format!("reading {shown}: {e}"))?;
    if !metadata.is_file() {
        return Err(format!("{shown} is not a regular file"));
    }
    // Room for a line ending and a little more: enough to tell a key that is too
    // long, without reading a large file.
    let mut key = Vec::new();
    opened
        .take(MAX_KEY_LEN as u64 + 16)
        .read_to_end(&mut key)
        .map_err(|e| format!("reading {shown}: {e}"))?;
    while key.last().is_some_and(u8::is_ascii_whitespace) {
        key.pop();
    }
    match key.len() {
        0 => Err(format!("{shown} is empty")),
        len if len > MAX_KEY_LEN => Err(format!(
            "{shown} holds more than {MAX_KEY_LEN} bytes, the TCP-MD5 key limit"
        )),
        _ => Ok(key),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Reads `path` allowing `dir`, on a thread of its own; `None` when it has not
    /// answered in five seconds.
    fn read_within(dir: &Path, path: &Path) -> Option<Key> {
        let password = BgpPassword {
            file: Some(path.display().to_string()),
            secret_key_ref: None,
        };
        let dir = dir.to_owned();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(read(&dir, &password)));
        rx.recv_timeout(Duration::from_secs(5)).ok()
    }

    #[test]
    fn hardening_a_password_file_that_is_a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("key");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRUSR).unwrap();
        let answer = read_within(dir.path(), &fifo).expect("an answer, not a read that never ends");
        let error = answer.unwrap_err();
        assert!(error.contains("not a regular file"), "{error}");
    }

    #[test]
    fn hardening_a_password_file_over_80_bytes_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let long = dir.path().join("key");
        std::fs::write(&long, [b'k'; 81]).unwrap();
        let error = read_within(dir.path(), &long).unwrap().unwrap_err();
        assert!(error.contains("80 bytes"), "{error}");
        std::fs::write(&long, [b'k'; 80]).unwrap();
        assert_eq!(read_within(dir.path(), &long).unwrap().unwrap().len(), 80);
    }

    #[test]
    fn hardening_a_password_file_outside_the_allowed_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let error = read_within(dir.path(), Path::new("/etc/hostname"))
            .unwrap()
            .unwrap_err();
        assert!(error.contains("outside"), "{error}");
        // Nor through a link inside it.
        let link = dir.path().join("key");
        std::os::unix::fs::symlink("/etc/hostname", &link).unwrap();
        let error = read_within(dir.path(), &link).unwrap().unwrap_err();
        assert!(error.contains("outside"), "{error}");
    }

    #[test]
    fn a_key_file_loses_its_line_ending_and_a_linked_one_inside_the_directory_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("..data");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("tor"), "rack-secret\n").unwrap();
        let link = dir.path().join("tor");
        std::os::unix::fs::symlink("..data/tor", &link).unwrap();
        assert_eq!(
            read_within(dir.path(), &link).unwrap(),
            Ok(b"rack-secret".to_vec())
        );
    }
}
