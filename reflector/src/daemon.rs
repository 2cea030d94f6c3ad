//! The reflector's main loop: it owns the configuration and the speaker, applies
//! reloads (SIGHUP, a changed file, the datastore's view) as differences, and shuts
//! down with Cease/Administrative Shutdown.
//!
//! ```text
//!  Control (signals) ─┐                          ┌─▶ speaker (bgp::speaker) ◀── sessions
//!  file check (1 s) ──┼─▶ daemon loop ─ changes ─┤
//!  discovery (watch) ─┘        │                 └─▶ SpeakerView (watch) ─▶ gRPC, /metrics
//!                         notices (up/down)
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use api::datastore::Datastore;
use bgp::speaker::{self, Notice, Request, SpeakerHandle};
use proto::bgp_status::bgp_status_server::BgpStatusServer;
use proto::serve::{Bound, Endpoints};
use telemetry::http::MetricsServer;
use telemetry::metrics::Registry;
use tokio::sync::{mpsc, watch};
use tonic::service::Routes;

use crate::changes::{Changes, changes};
use crate::config::{self, Config, ConfigError};
use crate::desired::Desired;
use crate::discovery::{self, Discovered};
use crate::observe::Observer;
use crate::status::StatusService;
use crate::view::{Counters, SpeakerView};

/// How often the file is checked for changes (a ConfigMap update swaps it).
const FILE_CHECK: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("starting the BGP speaker: {0}")]
    Speaker(#[from] bgp::transport::TransportError),
    #[error(transparent)]
    Serve(#[from] proto::Error),
    #[error(transparent)]
    Metrics(#[from] telemetry::http::Error),
    #[error("the BGP speaker stopped unexpectedly")]
    SpeakerStopped,
}

/// What the process's signals ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Read the file again (SIGHUP).
    Reload,
    /// Cease every session and exit (SIGTERM, SIGINT).
    Shutdown,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub config: PathBuf,
    /// This reflector's `Node` name in the datastore.
    pub node_name: Option<String>,
}

/// Runs the reflector until `Control::Shutdown` (or the sender drops).
pub async fn run<D>(
    options: Options,
    datastore: Option<Arc<D>>,
    mut controls: mpsc::Receiver<Control>,
) -> Result<(), Error>
where
    D: Datastore + Send + Sync + ?Sized + 'static,
{
    let with_datastore = datastore.is_some();
    let text = read(&options)?;
    let mut config = config::parse(&text, with_datastore)?;
    let mut file = text;
    let (discovered_tx, mut discovered) = watch::channel(Discovered::default());
    if let Some(store) = datastore {
        tokio::spawn(discovery::follow(
            store,
            options.node_name.clone(),
            discovered_tx,
        ));
        // Peers and identity come from the datastore: wait for its first view.
        let _ = discovered.changed().await;
        let view = discovered.borrow();
        tracing::info!(peers = view.peers.len(), local_as = ?view.as_number, cluster_id = ?view.cluster_id, "datastore view");
    }
    let mut desired = Desired::new(&config, &discovered.borrow_and_update())?;
    let mut speaker = start(&desired)?;
    let (view_tx, view) = watch::channel(SpeakerView::new(&desired, speaker.requests.clone()));
    let counters = Arc::new(Counters::default());

    let (stop_servers, servers_stopped) = watch::channel(false);
    let stopped = move || {
        let mut rx = servers_stopped.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let bound = Bound::bind(&Endpoints {
        unix: config.api.socket.clone(),
        tcp: config.api.address,
    })
    .await?;
    let routes = Routes::new(BgpStatusServer::new(StatusService::new(view.clone())));
    let grpc = tokio::spawn(bound.serve(routes, stopped()));
    let metrics = match &config.metrics {
        Some(m) => {
            let server = MetricsServer::bind(m.address).await?;
            let observer = Arc::new(Observer::new(view.clone(), Arc::clone(&counters)));
            let mut registry = Registry::default();
            registry.register_collector(Box::new(Arc::clone(&observer)));
            Some(tokio::spawn(server.serve(
                Arc::new(registry),
                observer,
                stopped(),
            )))
        }
        None => None,
    };
    tracing::info!(
        local_as = desired.speaker.local_as,
        router_id = %desired.speaker.router_id,
        peers = desired.peers.len(),
        ranges = desired.speaker.listen_ranges.len(),
        "tabby-reflector running"
    );

    let mut file_check = tokio::time::interval(FILE_CHECK);
    let result = loop {
        tokio::select! {
            control = controls.recv() => match control {
                Some(Control::Reload) => {
                    let next = read(&options).and_then(|text| {
                        let config = config::parse(&text, with_datastore)?;
                        Ok((text, config))
                    });
                    match next {
                        Ok((text, next)) => {
                            file = text;
                            reload(&mut config, next, &mut desired, &discovered.borrow(), &mut speaker, &view_tx, &counters).await;
                        }
                        Err(error) => reject(&error, &counters),
                    }
                }
                Some(Control::Shutdown) | None => break Ok(()),
            },
            _ = file_check.tick() => {
                // A changed file is reloaded as SIGHUP would; unreadable moments
                // (the file being replaced) are skipped until the next check.
                if let Ok(text) = read(&options) && text != file {
                    file = text.clone();
                    match config::parse(&text, with_datastore) {
                        Ok(next) => reload(&mut config, next, &mut desired, &discovered.borrow(), &mut speaker, &view_tx, &counters).await,
                        Err(error) => reject(&error, &counters),
                    }
                }
            }
            Ok(()) = discovered.changed() => {
                let view = discovered.borrow_and_update().clone();
                tracing::info!(peers = view.peers.len(), "datastore view changed");
                let next = config.clone();
                reload(&mut config, next, &mut desired, &view, &mut speaker, &view_tx, &counters).await;
            }
            notice = speaker.notices.recv() => match notice {
                Some(notice) => observe(notice, &counters),
                None => break Err(Error::SpeakerStopped),
            },
        }
    };
    tracing::info!(message = %config.shutdown_message, "shutting down: ceasing every session");
    stop_speaker(&mut speaker, config.shutdown_message.clone()).await;
    let _ = stop_servers.send(true);
    let _ = grpc.await;
    if let Some(metrics) = metrics {
        let _ = metrics.await;
    }
    result
}

fn read(options: &Options) -> Result<String, ConfigError> {
    std::fs::read_to_string(&options.config).map_err(|source| ConfigError::Read {
        path: options.config.clone(),
        source,
    })
}

fn start(desired: &Desired) -> Result<SpeakerHandle, Error> {
    let speaker = speaker::start(desired.speaker.clone())?;
    for peer in desired.peers.values() {
        let _ = speaker.requests.send(Request::AddPeer(peer.config.clone()));
    }
    Ok(speaker)
}

fn reject(error: &ConfigError, counters: &Counters) {
    counters.reloads_failed.fetch_add(1, Ordering::Relaxed);
    tracing::error!(%error, "new configuration rejected; the running one stays");
}

/// Applies `next` (with the datastore's `view`) as a difference to the running
/// speaker.
async fn reload(
    config: &mut Config,
    next: Config,
    desired: &mut Desired,
    view: &Discovered,
    speaker: &mut SpeakerHandle,
    published: &watch::Sender<SpeakerView>,
    counters: &Counters,
) {
    let next_desired = match Desired::new(&next, view) {
        Ok(d) => d,
        Err(error) => return reject(&error, counters),
    };
    let changes = changes(desired, &next_desired);
    if next.api != config.api || next.metrics != config.metrics {
        tracing::warn!("api and metrics addresses change only when the reflector restarts");
    }
    counters.reloads_ok.fetch_add(1, Ordering::Relaxed);
    if changes.is_empty() {
        tracing::info!("configuration reloaded: nothing changed");
    } else if let Err(error) = apply(changes, &next_desired, speaker).await {
        tracing::error!(%error, "cannot apply the new configuration");
        return;
    }
    *config = next;
    *desired = next_desired;
    published.send_replace(SpeakerView::new(desired, speaker.requests.clone()));
}

async fn apply(
    changes: Changes,
    desired: &Desired,
    speaker: &mut SpeakerHandle,
) -> Result<(), Error> {
    if let Some(what) = changes.restart {
        tracing::warn!(changed = %what, "speaker-wide setting changed: restarting every session");
        stop_speaker(speaker, format!("configuration changed ({what})")).await;
        *speaker = start(desired)?;
        return Ok(());
    }
    tracing::info!(
        added_or_changed = changes.add.len(),
        removed = changes.remove.len(),
        listen_ranges = changes.listen_ranges.is_some(),
        "configuration reloaded"
    );
    for address in changes.remove {
        let _ = speaker.requests.send(Request::RemovePeer(address));
    }
    // New peers are added; a changed one restarts its session only when its
    // OPEN or connection differs, filters and policy change in place.
    for peer in changes.add {
        let _ = speaker.requests.send(Request::UpdatePeer(peer));
    }
    if let Some(ranges) = changes.listen_ranges {
        let _ = speaker.requests.send(Request::SetListenRanges(ranges));
    }
    Ok(())
}

/// Ceases every session with `message` and waits until the speaker is gone.
async fn stop_speaker(speaker: &mut SpeakerHandle, message: String) {
    let _ = speaker.requests.send(Request::Shutdown(message));
    while speaker.notices.recv().await.is_some() {}
}

fn observe(notice: Notice, counters: &Counters) {
    match notice {
        Notice::PeerUp { address, remote_as } => {
            counters.sessions_up.fetch_add(1, Ordering::Relaxed);
            tracing::info!(peer = %address, remote_as, "session established");
        }
        Notice::PeerDown { address, reason } => {
            counters.sessions_down.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(peer = %address, %reason, "session down");
        }
        // Switched off in the speaker's config (a reflector programs no FIB).
        Notice::Best(_) => {}
    }
}
