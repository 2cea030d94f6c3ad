//! Following a kind through the API server's watch: bookmarks move the resume point,
//! an ended stream is reopened from it, and 410 Gone becomes a resync.

use std::time::Duration;

use futures::StreamExt;
use kube::core::WatchEvent as KubeEvent;
use kube::core::params::WatchParams;
use serde_json::Value;
use tokio::sync::mpsc;

use super::{KubeStore, api_code, record, request_error, revision_at};
use crate::datastore::{Error, Kind, Record, Result, WatchEvent, WatchStream};
use crate::resources::Revision;

/// How long the server keeps one watch request open before tabby reopens it; the
/// API server's own limit is a few minutes.
const WATCH_TIMEOUT_SECONDS: u32 = 290;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

type Sender = mpsc::Sender<Result<WatchEvent<Record>>>;

pub(super) async fn start(
    store: KubeStore,
    kind: Kind,
    from: Revision,
) -> Result<WatchStream<Record>> {
    let (tx, mut rx) = mpsc::channel(256);
    let mut follow = Follow {
        store,
        kind,
        at: from,
        tx,
    };
    // Revision 0 means "from nothing known": start with the whole state.
    if from == Revision(0) {
        follow.resync().await?;
    }
    // The first request is made before returning, so a bad URL or a missing CRD is an
    // error here rather than a silent retry loop.
    let first = follow.open().await?;
    tokio::spawn(follow.run(first));
    Ok(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed())
}

struct Follow {
    store: KubeStore,
    kind: Kind,
    /// The last revision delivered or bookmarked: where a reopened watch resumes.
    at: Revision,
    tx: Sender,
}

type Events = futures::stream::BoxStream<'static, kube::Result<KubeEvent<Value>>>;

enum Ended {
    Unwatched,
    /// Reopen from `at` (after a backoff when `broken`).
    Reopen {
        broken: Option<String>,
    },
}

impl Follow {
    async fn open(&self) -> Result<Events> {
        let params = WatchParams {
            bookmarks: true,
            timeout: Some(WATCH_TIMEOUT_SECONDS),
            ..WatchParams::default()
        };
        let request = KubeStore::request(self.kind)
            .watch(&params, &self.at.to_string())
            .map_err(request_error)?;
        let events = self.store.client.request_events::<Value>(request).await?;
        Ok(events.boxed())
    }

    async fn run(mut self, first: Events) {
        let mut events = Some(first);
        let mut backoff = BACKOFF_MIN;
        loop {
            let opened = match events.take() {
                Some(events) => Ok(events),
                None => self.open().await,
            };
            let ended = match opened {
                Ok(events) => self.follow(events).await,
                Err(e) if api_code(&e) == Some(410) => self.resynced().await,
                Err(e) => Ended::Reopen {
                    broken: Some(e.to_string()),
                },
            };
            match ended {
                Ended::Unwatched => return,
                Ended::Reopen { broken: None } => backoff = BACKOFF_MIN,
                Ended::Reopen { broken: Some(why) } => {
                    tracing::warn!(kind = self.kind.name, at = %self.at, %why,
                        "kubernetes watch broke; reopening");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = self.tx.closed() => return,
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    async fn follow(&mut self, mut events: Events) -> Ended {
        loop {
            let event = tokio::select! {
                event = events.next() => event,
                _ = self.tx.closed() => return Ended::Unwatched,
            };
            let delivered = match event {
                // The server ended the request (its timeout): resume where we are.
                None => return Ended::Reopen { broken: None },
                Some(Err(e)) => {
                    let e = Error::from(e);
                    if api_code(&e) == Some(410) {
                        return self.resynced().await;
                    }
                    return Ended::Reopen {
                        broken: Some(e.to_string()),
                    };
                }
                Some(Ok(KubeEvent::Error(status))) if status.code == 410 => {
                    return self.resynced().await;
                }
                Some(Ok(KubeEvent::Error(status))) => {
                    return Ended::Reopen {
                        broken: Some(format!("{}: {}", status.code, status.message)),
                    };
                }
                Some(Ok(KubeEvent::Bookmark(bookmark))) => {
                    match bookmark.metadata.resource_version.parse() {
                        Ok(revision) => self.at = Revision(revision),
                        Err(_) => {
                            let bad = bookmark.metadata.resource_version;
                            return self.fail(Error::UnsupportedRevision(bad)).await;
                        }
                    }
                    continue;
                }
                Some(Ok(KubeEvent::Added(object))) => self.event(object, WatchEvent::Added),
                Some(Ok(KubeEvent::Modified(object))) => self.event(object, WatchEvent::Modified),
                Some(Ok(KubeEvent::Deleted(object))) => self.event(object, WatchEvent::Deleted),
            };
            match delivered {
                Ok((revision, event)) => {
                    if self.tx.send(Ok(event)).await.is_err() {
                        return Ended::Unwatched;
                    }
                    self.at = revision;
                }
                Err(e) => return self.fail(e).await,
            }
        }
    }

    fn event(
        &self,
        object: Value,
        wrap: fn(Record) -> WatchEvent<Record>,
    ) -> Result<(Revision, WatchEvent<Record>)> {
        let revision = revision_at(&object, "/metadata/resourceVersion")?;
        Ok((revision, wrap(record(self.kind, object)?)))
    }

    /// An object the watch cannot read: reported, and the watch goes on after it.
    async fn fail(&mut self, error: Error) -> Ended {
        if self.tx.send(Err(error)).await.is_err() {
            return Ended::Unwatched;
        }
        Ended::Reopen {
            broken: Some("an undecodable event".into()),
        }
    }

    async fn resynced(&mut self) -> Ended {
        match self.resync().await {
            Ok(()) => Ended::Reopen { broken: None },
            Err(e) if self.tx.is_closed() => {
                drop(e);
                Ended::Unwatched
            }
            Err(e) => Ended::Reopen {
                broken: Some(format!("listing for a resync: {e}")),
            },
        }
    }

    /// Lists the kind and delivers it as a resync; the watch resumes after it.
    async fn resync(&mut self) -> Result<()> {
        let list = self.store.snapshot(self.kind).await?;
        let revision = list.revision;
        let resync = WatchEvent::Resync {
            objects: list.items,
            revision,
        };
        // A closed stream is noticed by the caller's next select.
        let _ = self.tx.send(Ok(resync)).await;
        self.at = revision;
        Ok(())
    }
}
