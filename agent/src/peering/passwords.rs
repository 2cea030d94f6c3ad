//! BGP passwords that `BGPPeer`s and the mesh reference, as files on the node or
//! as keys of Kubernetes Secrets, read off the agent's loop: a file may be a FIFO
//! or sit on a stalled mount, an API server may be slow, and the loop must never
//! wait on either. The loop asks for the passwords the datastore references
//! ([`Passwords::want`]); a task reads each and sends the result back; the plan
//! uses what was read ([`Passwords::get`]). They are read again at every resync,
//! so a rotated key (a changed file or Secret) takes effect.
//!
//! A file must be inside the allowed directory (after following links: Kubernetes
//! mounts Secrets through them) and a regular file. A `secretKeyRef` names a Secret
//! in the agent's own namespace, as Calico's does; only the kubernetes datastore
//! has Secrets (on etcd the error says to use a file). Either way a key holds 1 to
//! 80 bytes (the kernel's TCP-MD5 key limit) after trailing whitespace; errors say
//! which, and never show the key.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use api::datastore::{Backend, SecretKey};
use api::resources::{BgpPassword, SecretKeyRef};
use tokio::sync::mpsc;

/// The kernel's longest TCP-MD5 key.
pub const MAX_KEY_LEN: usize = bgp::transport::md5::MAX_KEY_LEN;
/// Where password files must be unless `--bgp-password-dir` says otherwise.
pub const DEFAULT_DIR: &str = "/etc/tabby/bgp-passwords";
/// Results waiting for the loop; readers wait for room beyond that.
const RESULTS: usize = 64;
/// The longest a Secret read may take before it counts as failed (and is tried
/// again at the next resync).
const SECRET_TIMEOUT: Duration = Duration::from_secs(10);

/// A key as read, or why it cannot be used.
pub type Key = Result<Vec<u8>, String>;

#[derive(Debug)]
pub struct Passwords {
    dir: PathBuf,
    /// Where Secrets are read, when the datastore has them.
    store: Arc<dyn Backend>,
    keys: BTreeMap<BgpPassword, Key>,
    /// Asked for and not answered yet.
    reading: BTreeSet<BgpPassword>,
    results: mpsc::Sender<(BgpPassword, Key)>,
}

impl Passwords {
    /// Password files in `dir`, Secrets from `store`; results arrive on the
    /// returned receiver, for [`Passwords::read`].
    pub fn new(
        dir: PathBuf,
        store: Arc<dyn Backend>,
    ) -> (Self, mpsc::Receiver<(BgpPassword, Key)>) {
        let (results, receiver) = mpsc::channel(RESULTS);
        let passwords = Self {
            dir,
            store,
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
            let (dir, store, password, results) = (
                self.dir.clone(),
                self.store.clone(),
                password.clone(),
                self.results.clone(),
            );
            tokio::spawn(async move {
                let key = read(&dir, &*store, &password).await;
                let _ = results.send((password, key)).await;
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

/// Reads the key `password` references: a file in `dir`, or a Secret of `store`.
pub async fn read(dir: &Path, store: &dyn Backend, password: &BgpPassword) -> Key {
    match (&password.file, &password.secret_key_ref) {
        (Some(file), _) => {
            let (dir, file) = (dir.to_owned(), PathBuf::from(file));
            tokio::task::spawn_blocking(move || read_file(&dir, &file))
                .await
                .unwrap_or_else(|e| Err(format!("reading the password file: {e}")))
        }
        (None, Some(secret)) => read_secret(dir, store, secret).await,
        (None, None) => Err("neither file nor secretKeyRef is set".into()),
    }
}

/// The key a `secretKeyRef` names, in the agent's namespace.
async fn read_secret(dir: &Path, store: &dyn Backend, secret: &SecretKeyRef) -> Key {
    let SecretKeyRef { name, key } = secret;
    let Some(secrets) = store.secrets() else {
        return Err(format!(
            "secretKeyRef {name}/{key}: only the kubernetes datastore has Secrets; on \
             etcd write the key to a file in {} (--bgp-password-dir) and use password.file",
            dir.display()
        ));
    };
    let namespace = secrets.namespace();
    let shown = format!("key {key:?} of Secret {namespace}/{name}");
    let found = tokio::time::timeout(SECRET_TIMEOUT, secrets.secret_key(name, key)).await;
    match found {
        Err(_) => Err(format!("reading {shown}: no answer in {SECRET_TIMEOUT:?}")),
        Ok(Err(e)) if e.is_forbidden() => Err(format!(
            "reading {shown}: {e}; grant tabby-agent get on it (the Role \
                 tabby-agent-bgp-passwords lists the Secrets it may read)"
        )),
        Ok(Err(e)) => Err(format!("reading {shown}: {e}")),
        Ok(Ok(SecretKey::NoSecret)) => Err(format!(
            "Secret {namespace}/{name} not found (secretKeyRef names a Secret in the \
             agent's namespace)"
        )),
        Ok(Ok(SecretKey::NoKey)) => Err(format!("Secret {namespace}/{name} has no key {key:?}")),
        Ok(Ok(SecretKey::Value(value))) => usable(value, &shown),
    }
}

/// A key file's content, if the file may be used.
fn read_file(dir: &Path, file: &Path) -> Key {
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
    usable(key, &shown.to_string())
}

/// `key` without trailing whitespace (a file's or `--from-file`'s line ending), if
/// its length suits TCP-MD5; `shown` names where it came from.
fn usable(mut key: Vec<u8>, shown: &str) -> Key {
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
        let (dir, path) = (dir.to_owned(), path.to_owned());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(read_file(&dir, &path)));
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

/// `secretKeyRef` against the API double (no kube-apiserver exists here; see
/// `harness::kube_api`): the double serves Secrets' `data` as the real server
/// does, without RBAC (the grant is checked by the manifests tests).
#[cfg(test)]
mod secret_tests {
    use api::datastore::{KubeStore, MemoryStore};
    use api::resources::SecretKeyRef;
    use harness::kube_api::{KubeApi, KubeApiOptions};

    use super::*;

    fn secret(name: &str, key: &str) -> BgpPassword {
        BgpPassword {
            file: None,
            secret_key_ref: Some(SecretKeyRef {
                name: name.into(),
                key: key.into(),
            }),
        }
    }

    /// Asks `passwords` for `password` (again) and waits for the answer.
    async fn fetch(
        passwords: &mut Passwords,
        results: &mut mpsc::Receiver<(BgpPassword, Key)>,
        password: &BgpPassword,
    ) -> Key {
        passwords.want([password], true);
        let (answered, key) = tokio::time::timeout(Duration::from_secs(30), results.recv())
            .await
            .expect("an answer")
            .unwrap();
        assert_eq!(&answered, password);
        passwords.read(answered, key);
        passwords.get(password)
    }

    #[tokio::test]
    async fn install_a_secret_key_ref_is_read_from_the_agents_namespace_and_a_change_is_followed() {
        let api = KubeApi::start(KubeApiOptions::default()).await.unwrap();
        // The double's client namespace is `default`, as a pod's is its own.
        api.put_secret(
            "default",
            "tabby-bgp-passwords",
            &[("tor-r1", "rack-secret\n")],
        )
        .await
        .unwrap();
        // The same name elsewhere is not read.
        api.put_secret("other", "tabby-bgp-passwords", &[("tor-r1", "wrong")])
            .await
            .unwrap();
        let store: Arc<dyn Backend> = Arc::new(KubeStore::at(&api.url()).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let (mut passwords, mut results) = Passwords::new(dir.path().into(), store);
        let tor = secret("tabby-bgp-passwords", "tor-r1");

        let key = fetch(&mut passwords, &mut results, &tor).await;
        assert_eq!(key, Ok(b"rack-secret".to_vec()));

        // Rotated: the next read (the resync's) sees the new key.
        api.put_secret("default", "tabby-bgp-passwords", &[("tor-r1", "rotated")])
            .await
            .unwrap();
        let key = fetch(&mut passwords, &mut results, &tor).await;
        assert_eq!(key, Ok(b"rotated".to_vec()));
        assert!(
            api.requests()
                .iter()
                .any(|r| r == "GET /api/v1/namespaces/default/secrets/tabby-bgp-passwords"),
            "{:?}",
            api.requests()
        );
    }

    #[tokio::test]
    async fn install_a_missing_secret_a_missing_key_and_a_long_value_each_say_what_is_wrong() {
        let api = KubeApi::start(KubeApiOptions::default()).await.unwrap();
        let long = "k".repeat(81);
        api.put_secret("default", "bgp", &[("long", &long), ("empty", "\n")])
            .await
            .unwrap();
        let store: Arc<dyn Backend> = Arc::new(KubeStore::at(&api.url()).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let (mut passwords, mut results) = Passwords::new(dir.path().into(), store);
        let cases = [
            (secret("absent", "k"), "Secret default/absent not found"),
            (
                secret("bgp", "tor"),
                "Secret default/bgp has no key \"tor\"",
            ),
            (secret("bgp", "long"), "more than 80 bytes"),
            (secret("bgp", "empty"), "is empty"),
        ];
        for (password, expected) in cases {
            let error = fetch(&mut passwords, &mut results, &password)
                .await
                .unwrap_err();
            assert!(error.contains(expected), "{error}");
            assert!(!error.contains(&long), "the value is never shown: {error}");
        }
    }

    #[tokio::test]
    async fn install_a_secret_key_ref_on_a_datastore_without_secrets_says_to_use_a_file() {
        let store: Arc<dyn Backend> = Arc::new(MemoryStore::new());
        let dir = tempfile::tempdir().unwrap();
        let (mut passwords, mut results) = Passwords::new(dir.path().into(), store);
        let error = fetch(&mut passwords, &mut results, &secret("bgp", "tor"))
            .await
            .unwrap_err();
        assert!(
            error.contains("only the kubernetes datastore has Secrets"),
            "{error}"
        );
        assert!(error.contains("password.file"), "{error}");
    }
}
