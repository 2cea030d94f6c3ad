//! The etcd backend: etcd's v3 API over gRPC (the `etcd-client` crate).
//!
//! - One key per resource, `<prefix>/<plural>/<name>` (prefix `/tabby/v1` by default),
//!   holding the resource's JSON without `resourceVersion`.
//! - A resource's revision is its key's `mod_revision`; a list's is the store revision
//!   it was read at.
//! - Writes are transactions: create when `create_revision == 0`, update and delete
//!   when `mod_revision` is the expected one. A failed compare reads the key in the
//!   same transaction, so the error says whether it is missing or at which revision.
//! - `write_all` is one transaction: every write's compare, then every put; when a
//!   compare fails, the failure branch reads every key, and each write is judged
//!   against what it finds.
//! - A paginated list reads every page at the revision of its first page (the
//!   continue token carries it): a consistent snapshot, until etcd compacts that
//!   revision ([`Error::Expired`]).
//! - A watch follows one prefix from a revision. When etcd reports the revision
//!   compacted it lists the prefix, delivers [`WatchEvent::Resync`] and follows on from
//!   there; when the stream breaks (etcd restarted, connection lost) it reconnects from
//!   the revision after the last event it delivered, so nothing is lost or repeated.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, EventType, GetOptions, KeyValue, Txn, TxnOp,
    TxnOpResponse, WatchOptions, WatchResponse,
};
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;

use super::page::ContinueToken;
use super::skipped::skip;
use super::{
    Backend, Error, Kind, List, ListOptions, Record, Result, Unreadable, WatchEvent, WatchStream,
    Write, selected,
};
use crate::resources::Revision;

/// The key prefix used unless [`EtcdStore::with_prefix`] says otherwise.
pub const DEFAULT_PREFIX: &str = "/tabby/v1";
/// Keys read per range request when paging through a prefix.
const CHUNK: usize = 500;
/// Reconnection backoff of a broken watch.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// A datastore in etcd.
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    prefix: String,
    /// Credentials to present before the first request (see [`EtcdStore::login_later`]).
    login: Option<Arc<Login>>,
}

/// A user not yet authenticated: etcd did not answer when the store was opened.
struct Login {
    user: String,
    password: String,
    done: tokio::sync::OnceCell<()>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl EtcdStore {
    /// Connects to the etcd cluster at `endpoints` (`http://host:port`).
    pub async fn connect(endpoints: &[impl AsRef<str>]) -> Result<Self> {
        Ok(Self::new(Client::connect(endpoints, None).await?))
    }

    /// A store over an existing client, under [`DEFAULT_PREFIX`].
    pub fn new(client: Client) -> Self {
        Self {
            client,
            prefix: DEFAULT_PREFIX.to_owned(),
            login: None,
        }
    }

    /// Authenticates as `user` before the first request that reaches etcd rather
    /// than now: `client` was made without a user, so that a store can be opened
    /// while etcd is down (the agent starting from its last view). Once it
    /// succeeds, the client refreshes the token itself as usual.
    pub fn login_later(mut self, user: &str, password: &str) -> Self {
        self.login = Some(Arc::new(Login {
            user: user.to_owned(),
            password: password.to_owned(),
            done: tokio::sync::OnceCell::new(),
        }));
        self
    }

    /// The client, logged in.
    async fn client(&self) -> Result<Client> {
        if let Some(login) = &self.login {
            login
                .done
                .get_or_try_init(|| async {
                    // Clones share the credentials and the token.
                    let credentials = (login.user.clone(), login.password.clone());
                    self.client.clone().update_user(Some(credentials)).await
                })
                .await?;
        }
        Ok(self.client.clone())
    }

    async fn kv(&self) -> Result<etcd_client::KvClient> {
        Ok(self.client().await?.kv_client())
    }

    /// Keeps every key under `prefix` (no trailing `/`): several clusters, or tests,
    /// can share one etcd.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into().trim_end_matches('/').to_owned();
        self
    }

    /// Forgets history up to `revision`, as an operator's `etcdctl compact` does;
    /// watches from before it get a resync.
    pub async fn compact(&self, revision: Revision) -> Result<()> {
        self.kv().await?.compact(to_etcd(revision), None).await?;
        Ok(())
    }

    /// The current store revision.
    pub async fn revision(&self) -> Result<Revision> {
        let response = self
            .kv()
            .await?
            .get(
                self.prefix.as_bytes(),
                Some(GetOptions::new().with_count_only()),
            )
            .await?;
        Ok(header_revision(response.header()))
    }

    fn kind_prefix(&self, kind: Kind) -> String {
        format!("{}/{}/", self.prefix, kind.plural)
    }

    fn key(&self, kind: Kind, name: &str) -> String {
        format!("{}{name}", self.kind_prefix(kind))
    }

    fn record(&self, kind: Kind, kv: &KeyValue) -> Result<Record> {
        let name = String::from_utf8_lossy(&kv.key()[self.kind_prefix(kind).len()..]).into_owned();
        let value = serde_json::from_slice(kv.value()).map_err(|e| Error::Corrupt {
            kind: kind.name,
            name: name.clone(),
            problem: Unreadable::NotJson(e),
        })?;
        Ok(Record {
            name,
            revision: Revision(kv.mod_revision() as u64),
            value,
        })
    }

    /// Runs `txn` (whose failure branch reads `key`); on failure, the key as it is.
    async fn swap(&self, key: &str, when: Compare, then: TxnOp) -> Result<Swapped> {
        let txn = Txn::new()
            .when([when])
            .and_then([then])
            .or_else([TxnOp::get(key, None)]);
        let response = self.kv().await?.txn(txn).await?;
        let revision = header_revision(response.header());
        let mut responses = response.op_responses().into_iter();
        Ok(match (response.succeeded(), responses.next()) {
            (true, Some(TxnOpResponse::Delete(mut deleted))) => {
                Swapped::Deleted(deleted.take_prev_kvs().into_iter().next())
            }
            (true, _) => Swapped::Written(revision),
            (false, Some(TxnOpResponse::Get(mut current))) => {
                Swapped::Failed(current.take_kvs().into_iter().next())
            }
            (false, _) => Swapped::Failed(None),
        })
    }

    /// One page of at most `limit` matching records, at `revision` (0 = now), starting
    /// at `from`. Reads in chunks, so a selective selector still fills the page.
    async fn page(
        &self,
        kind: Kind,
        options: &ListOptions,
        mut from: String,
        revision: i64,
        limit: usize,
    ) -> Result<List<Record>> {
        let range_end = prefix_end(&self.kind_prefix(kind));
        let mut items = Vec::new();
        let mut skipped = Vec::new();
        let mut pinned = revision;
        loop {
            let chunk = (limit - items.len()).clamp(1, CHUNK);
            let get = GetOptions::new()
                .with_range(range_end.clone())
                .with_limit(chunk as i64)
                .with_revision(pinned);
            let response = self
                .kv()
                .await?
                .get(from.as_bytes(), Some(get))
                .await
                .map_err(|e| expired(e, pinned))?;
            if pinned == 0 {
                pinned = header_revision(response.header()).0 as i64;
            }
            for kv in response.kvs() {
                match self.record(kind, kv) {
                    Ok(record) if selected(options, &record.value) => items.push(record),
                    Ok(_) => {}
                    Err(e) => skipped.push(skip(e)?),
                }
            }
            let last = response.kvs().last().map(|kv| kv.key().to_vec());
            match last {
                Some(last) if response.more() => {
                    from = key_after(&last);
                    if items.len() >= limit {
                        let after = String::from_utf8_lossy(&last[self.kind_prefix(kind).len()..])
                            .into_owned();
                        return Ok(List {
                            items,
                            revision: Revision(pinned as u64),
                            continue_token: Some(
                                ContinueToken {
                                    revision: Revision(pinned as u64),
                                    after,
                                }
                                .encode(),
                            ),
                            skipped,
                        });
                    }
                }
                _ => {
                    return Ok(List {
                        items,
                        revision: Revision(pinned as u64),
                        continue_token: None,
                        skipped,
                    });
                }
            }
        }
    }

    /// Everything under the kind's prefix at one revision, for a resync.
    async fn snapshot(&self, kind: Kind) -> Result<List<Record>> {
        self.page(
            kind,
            &ListOptions::default(),
            self.kind_prefix(kind),
            0,
            usize::MAX,
        )
        .await
    }
}

/// What a compare-and-swap transaction found.
enum Swapped {
    /// The write happened at this revision.
    Written(Revision),
    /// The delete happened; the key's last state.
    Deleted(Option<KeyValue>),
    /// The compare failed; the key as it is (`None`: missing).
    Failed(Option<KeyValue>),
}

#[async_trait]
impl Backend for EtcdStore {
    async fn get_record(&self, kind: Kind, name: &str) -> Result<Record> {
        let response = self.kv().await?.get(self.key(kind, name), None).await?;
        match response.kvs().first() {
            Some(kv) => self.record(kind, kv),
            None => Err(not_found(kind, name)),
        }
    }

    async fn list_records(&self, kind: Kind, options: &ListOptions) -> Result<List<Record>> {
        let limit = options.limit.unwrap_or(usize::MAX).max(1);
        let (from, revision) = match &options.continue_token {
            Some(token) => {
                let token = ContinueToken::decode(token)?;
                let after = self.key(kind, &token.after);
                (key_after(after.as_bytes()), to_etcd(token.revision))
            }
            None => (self.kind_prefix(kind), 0),
        };
        self.page(kind, options, from, revision, limit).await
    }

    async fn create_record(&self, kind: Kind, name: &str, value: Value) -> Result<Record> {
        let key = self.key(kind, name);
        let when = Compare::create_revision(key.as_str(), CompareOp::Equal, 0);
        let then = TxnOp::put(key.as_str(), value.to_string(), None);
        match self.swap(&key, when, then).await? {
            Swapped::Written(revision) => Ok(Record {
                name: name.to_owned(),
                revision,
                value,
            }),
            _ => Err(Error::AlreadyExists {
                kind: kind.name,
                name: name.to_owned(),
            }),
        }
    }

    async fn update_record(
        &self,
        kind: Kind,
        name: &str,
        value: Value,
        expected: Revision,
    ) -> Result<Record> {
        let key = self.key(kind, name);
        let when = Compare::mod_revision(key.as_str(), CompareOp::Equal, to_etcd(expected));
        let then = TxnOp::put(key.as_str(), value.to_string(), None);
        match self.swap(&key, when, then).await? {
            Swapped::Written(revision) => Ok(Record {
                name: name.to_owned(),
                revision,
                value,
            }),
            Swapped::Failed(current) => Err(conflict(kind, name, expected, current)),
            Swapped::Deleted(_) => unreachable!("the success branch puts"),
        }
    }

    async fn delete_record(
        &self,
        kind: Kind,
        name: &str,
        expected: Option<Revision>,
    ) -> Result<Record> {
        let key = self.key(kind, name);
        let when = match expected {
            Some(expected) => {
                Compare::mod_revision(key.as_str(), CompareOp::Equal, to_etcd(expected))
            }
            None => Compare::create_revision(key.as_str(), CompareOp::Greater, 0),
        };
        let then = TxnOp::delete(key.as_str(), Some(DeleteOptions::new().with_prev_key()));
        match self.swap(&key, when, then).await? {
            Swapped::Deleted(Some(last)) => self.record(kind, &last),
            Swapped::Deleted(None) => Err(not_found(kind, name)),
            Swapped::Failed(current) => match expected {
                Some(expected) => Err(conflict(kind, name, expected, current)),
                None => Err(not_found(kind, name)),
            },
            Swapped::Written(_) => unreachable!("the success branch deletes"),
        }
    }

    async fn write_all(&self, writes: Vec<Write>) -> Vec<Result<Record>> {
        if let Some(duplicate) = Write::duplicate(&writes) {
            return Write::undone(&writes, vec![(0, duplicate)]);
        }
        let keys: Vec<String> = writes
            .iter()
            .map(|w| self.key(w.kind(), w.name()))
            .collect();
        let mut when = Vec::new();
        let mut then = Vec::new();
        for (write, key) in writes.iter().zip(&keys) {
            let (compare, value) = match write {
                Write::Create { value, .. } => (
                    Compare::create_revision(key.as_str(), CompareOp::Equal, 0),
                    value,
                ),
                Write::Update {
                    value, expected, ..
                } => (
                    Compare::mod_revision(key.as_str(), CompareOp::Equal, to_etcd(*expected)),
                    value,
                ),
            };
            when.push(compare);
            then.push(TxnOp::put(key.as_str(), value.to_string(), None));
        }
        let reads: Vec<TxnOp> = keys
            .iter()
            .map(|key| TxnOp::get(key.as_str(), None))
            .collect();
        let txn = Txn::new().when(when).and_then(then).or_else(reads);
        let response = match self.kv().await {
            Ok(mut kv) => kv.txn(txn).await.map_err(Error::from),
            Err(e) => Err(e),
        };
        let response = match response {
            Ok(response) => response,
            // Unanswered: like any unanswered write, it may have been applied.
            Err(e) => return Write::undone(&writes, vec![(0, e)]),
        };
        if response.succeeded() {
            let revision = header_revision(response.header());
            return writes
                .into_iter()
                .map(|write| match write {
                    Write::Create { name, value, .. } | Write::Update { name, value, .. } => {
                        Ok(Record {
                            name,
                            revision,
                            value,
                        })
                    }
                })
                .collect();
        }
        let found = response.op_responses().into_iter().map(|op| match op {
            TxnOpResponse::Get(mut current) => current.take_kvs().into_iter().next(),
            _ => None,
        });
        let failed = writes
            .iter()
            .zip(found)
            .enumerate()
            .filter_map(|(i, (write, current))| {
                let error = match (write, current) {
                    (Write::Create { kind, name, .. }, Some(_)) => Error::AlreadyExists {
                        kind: kind.name,
                        name: name.clone(),
                    },
                    (
                        Write::Update {
                            kind,
                            name,
                            expected,
                            ..
                        },
                        current,
                    ) if current.as_ref().map(|kv| kv.mod_revision())
                        != Some(to_etcd(*expected)) =>
                    {
                        conflict(*kind, name, *expected, current)
                    }
                    _ => return None,
                };
                Some((i, error))
            })
            .collect();
        Write::undone(&writes, failed)
    }

    async fn watch_records(&self, kind: Kind, from: Revision) -> Result<WatchStream<Record>> {
        let (tx, mut rx) = mpsc::channel(256);
        let watch = Follow {
            store: self.clone(),
            kind,
            next: from.0 as i64 + 1,
            tx,
        };
        // The first attempt is made before returning, so a bad endpoint is an error
        // here rather than a silent retry loop.
        let first = watch.open().await?;
        tokio::spawn(watch.run(first));
        Ok(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed())
    }
}

/// A watch task: follows one kind's prefix and feeds the stream's channel until the
/// stream is dropped.
struct Follow {
    store: EtcdStore,
    kind: Kind,
    /// The first revision not yet delivered.
    next: i64,
    tx: mpsc::Sender<Result<WatchEvent<Record>>>,
}

/// Why a watch stream ended.
enum Ended {
    /// The stream was dropped: stop.
    Unwatched,
    /// The connection broke: reconnect from `next`.
    Broken(String),
}

impl Follow {
    async fn open(&self) -> Result<etcd_client::WatchStream> {
        let options = WatchOptions::new()
            .with_prefix()
            .with_prev_key()
            .with_start_revision(self.next);
        Ok(self
            .store
            .client()
            .await?
            .watch_client()
            .watch(self.store.kind_prefix(self.kind), Some(options))
            .await?)
    }

    async fn run(mut self, first: etcd_client::WatchStream) {
        let mut stream = Some(first);
        let mut backoff = BACKOFF_MIN;
        loop {
            let opened = match stream.take() {
                Some(stream) => Ok(stream),
                None => self.open().await,
            };
            let ended = match opened {
                Ok(stream) => {
                    backoff = BACKOFF_MIN;
                    self.follow(stream).await
                }
                Err(e) => Ended::Broken(e.to_string()),
            };
            match ended {
                Ended::Unwatched => return,
                Ended::Broken(why) => {
                    tracing::warn!(kind = self.kind.name, next = self.next, %why,
                        "etcd watch broke; reconnecting");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = self.tx.closed() => return,
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// Delivers what one watch stream reports until it ends.
    async fn follow(&mut self, mut stream: etcd_client::WatchStream) -> Ended {
        loop {
            let message = tokio::select! {
                message = stream.message() => message,
                _ = self.tx.closed() => return Ended::Unwatched,
            };
            let response = match message {
                Ok(Some(response)) => response,
                Ok(None) => return Ended::Broken("the stream ended".into()),
                Err(e) => return Ended::Broken(e.to_string()),
            };
            if response.compact_revision() != 0 {
                return self.resync().await;
            }
            if response.canceled() {
                return Ended::Broken(format!("cancelled: {}", response.cancel_reason()));
            }
            if let Err(ended) = self.deliver(&response).await {
                return ended;
            }
        }
    }

    async fn deliver(&mut self, response: &WatchResponse) -> Result<(), Ended> {
        for event in response.events() {
            let Some(kv) = event.kv() else { continue };
            let revision = kv.mod_revision();
            let record = match event.event_type() {
                EventType::Put => match self.store.record(self.kind, kv) {
                    Ok(record) if kv.create_revision() == kv.mod_revision() => {
                        Ok(WatchEvent::Added(record))
                    }
                    Ok(record) => Ok(WatchEvent::Modified(record)),
                    // Not JSON: skipped and reported, as the typed layer skips what
                    // does not decode.
                    Err(e) => match skip(e) {
                        Ok(_) => {
                            self.next = revision + 1;
                            continue;
                        }
                        Err(e) => Err(e),
                    },
                },
                EventType::Delete => match event.prev_kv() {
                    Some(prev) => self.store.record(self.kind, prev).map(|mut record| {
                        record.revision = Revision(revision as u64);
                        WatchEvent::Deleted(record)
                    }),
                    // The previous value is gone only if it was compacted away while
                    // the event was in flight: the state is no longer known.
                    None => return Err(self.resync().await),
                },
            };
            self.send(record).await?;
            self.next = revision + 1;
        }
        Ok(())
    }

    /// Lists the prefix, delivers it as a resync, and asks the caller to reconnect
    /// after it.
    async fn resync(&mut self) -> Ended {
        match self.store.snapshot(self.kind).await {
            Ok(list) => {
                let resync = WatchEvent::Resync {
                    objects: list.items,
                    revision: list.revision,
                };
                if let Err(ended) = self.send(Ok(resync)).await {
                    return ended;
                }
                self.next = list.revision.0 as i64 + 1;
                Ended::Broken("history compacted; resynced".into())
            }
            Err(e) => Ended::Broken(format!("listing for a resync: {e}")),
        }
    }

    async fn send(&self, event: Result<WatchEvent<Record>>) -> Result<(), Ended> {
        self.tx.send(event).await.map_err(|_| Ended::Unwatched)
    }
}

fn not_found(kind: Kind, name: &str) -> Error {
    Error::NotFound {
        kind: kind.name,
        name: name.to_owned(),
    }
}

fn conflict(kind: Kind, name: &str, expected: Revision, current: Option<KeyValue>) -> Error {
    match current {
        Some(kv) => Error::Conflict {
            kind: kind.name,
            name: name.to_owned(),
            expected,
            actual: Some(Revision(kv.mod_revision() as u64)),
        },
        None => not_found(kind, name),
    }
}

/// etcd answers a read at a compacted revision with OutOfRange.
fn expired(error: etcd_client::Error, revision: i64) -> Error {
    match &error {
        etcd_client::Error::GRpcStatus(status) if status.code() == tonic::Code::OutOfRange => {
            Error::Expired(Revision(revision as u64))
        }
        _ => Error::Etcd(error),
    }
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Revision {
    Revision(header.map_or(0, |h| h.revision()) as u64)
}

fn to_etcd(revision: Revision) -> i64 {
    i64::try_from(revision.0).unwrap_or(i64::MAX)
}

/// The smallest key after `key`.
fn key_after(key: &[u8]) -> String {
    let mut next = String::from_utf8_lossy(key).into_owned();
    next.push('\0');
    next
}

/// The end of the range holding every key that starts with `prefix` (which ends in `/`).
fn prefix_end(prefix: &str) -> String {
    let mut end = prefix.trim_end_matches('/').to_owned();
    end.push('0'); // the character after '/'
    end
}
