//! The reflector's main loop: it owns the configuration and the speaker, applies
//! reloads (SIGHUP, a changed file, the datastore's view) as differences, and shuts
//! down with Cease/Administrative Shutdown.
//!
//! ```text
//!  Control (signals) ─┐                          ┌─▶ speaker (bgp::speaker) ◀── sessions
//!  file check (1 s) ──┼─▶ Reflector ─── changes ─┤      import hook ◀─ Judge (watch)
//!  discovery (watch) ─┘        │                 └─▶ SpeakerView (watch) ─▶ gRPC, /metrics
//!  BFD sessions ──────────────▶ │  a path failed: Request::ForwardingDown (Up: ForwardingUp)
//!                   notices (up/down), refusals
//! ```
//!
//! A BFD Down (the path to a client failed) resets that client's session and
//! takes its routes out of the RIB in one step, so the withdrawals reach every
//! other client at once, long before the hold timer would have.
//!
//! With a datastore, the import hook holds every path to the ownership rule
//! (`ipam::ownership`), as the agent does: a client announcing another node's
//! block is never reflected as best, and clients are sent every path.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use api::datastore::Datastore;
use bfd::peers::{Change, PeerState, Peering, Peers};
use bgp::speaker::{self, Hooks, ImportHook, JudgeHook, Notice, Request, SpeakerHandle};
use ipam::ownership::{Judge, Owners};
use proto::bgp_status::bgp_status_server::BgpStatusServer;
use proto::serve::{Bound, Endpoints};
use telemetry::http::MetricsServer;
use tokio::sync::{mpsc, watch};
use tonic::service::Routes;

use crate::changes::{Changes, changes};
use crate::config::{self, Config, ConfigError};
use crate::desired::Desired;
use crate::discovery::{self, Discovered, Snapshot};
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

/// Refusals queued for the loop's log; more are counted (see `JudgeHook`).
const REFUSALS_QUEUED: usize = 256;

/// The running reflector: its configuration, the speaker, and what the API and
/// the ownership rule read.
struct Reflector {
    options: Options,
    with_datastore: bool,
    config: Config,
    /// The file's text as last applied.
    file: String,
    desired: Desired,
    /// The datastore's peers and identity as last applied.
    discovered: Discovered,
    speaker: SpeakerHandle,
    view: watch::Sender<SpeakerView>,
    counters: Arc<Counters>,
    /// The ownership rule's view (with a datastore), read by the import hook.
    judge: watch::Sender<Arc<Judge>>,
    hooks: Hooks,
    bfd: Peers,
    /// The BFD sessions' states, for the API and the metrics.
    bfd_states: watch::Sender<BTreeMap<IpAddr, PeerState>>,
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
    let file = read(&options)?;
    let config = config::parse(&file, with_datastore)?;
    let (snapshot_tx, mut snapshot) = watch::channel(Snapshot::default());
    if let Some(store) = datastore {
        tokio::spawn(discovery::follow(store, snapshot_tx));
        // Peers, identity and ownership come from the datastore: wait for them.
        let _ = snapshot.wait_for(Snapshot::complete).await;
    }
    let discovered = snapshot.borrow().discovered(options.node_name.as_deref());
    tracing::info!(peers = discovered.peers.len(), local_as = ?discovered.as_number, cluster_id = ?discovered.cluster_id, "datastore view");
    let desired = Desired::new(&config, &discovered)?;
    let (judge, judge_view) = watch::channel(Arc::new(Judge {
        owners: snapshot.borrow_and_update().owners(),
        roles: desired.roles(&discovered),
    }));
    let (refusals, mut refused) = mpsc::channel(REFUSALS_QUEUED);
    let overflow = Arc::new(AtomicU64::new(0));
    // Without a datastore there is nothing to judge by: every path is eligible.
    let hooks = Hooks {
        import: with_datastore.then(|| {
            Arc::new(JudgeHook::new(
                judge_view,
                Judge::check,
                refusals,
                Arc::clone(&overflow),
            )) as Arc<dyn ImportHook>
        }),
        export: None,
    };
    let speaker = start(&desired, &hooks)?;
    let (bfd_states, bfd_view) = watch::channel(BTreeMap::new());
    let (view, _) = watch::channel(SpeakerView::new(
        &desired,
        speaker.requests.clone(),
        bfd_view,
    ));
    let mut reflector = Reflector {
        bfd: Peers::default(),
        bfd_states,
        judge,
        hooks,
        view,
        speaker,
        options,
        with_datastore,
        config,
        file,
        desired,
        discovered,
        counters: Arc::new(Counters::default()),
    };
    reflector.warn_about_config();
    reflector.apply_bfd();

    let (stop_servers, servers_stopped) = watch::channel(false);
    let stopped = move || {
        let mut rx = servers_stopped.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let view = reflector.view.subscribe();
    let bound = Bound::bind(&Endpoints {
        unix: reflector.config.api.socket.clone(),
        tcp: reflector.config.api.address,
    })
    .await?;
    let routes = Routes::new(BgpStatusServer::new(StatusService::new(view.clone())));
    let grpc = tokio::spawn(bound.serve(routes, stopped()));
    let metrics = match &reflector.config.metrics {
        Some(m) => {
            let server = MetricsServer::bind(m.address).await?;
            let observer = Arc::new(Observer::new(view, Arc::clone(&reflector.counters)));
            let registry = crate::observe::registry(&observer);
            Some(tokio::spawn(server.serve(
                Arc::new(registry),
                observer,
                stopped(),
            )))
        }
        None => None,
    };
    tracing::info!(
        local_as = reflector.desired.speaker.local_as,
        router_id = %reflector.desired.speaker.router_id,
        peers = reflector.desired.peers.len(),
        ranges = reflector.desired.speaker.listen_ranges.len(),
        ownership_check = with_datastore,
        "tabby-reflector running"
    );

    let mut file_check = tokio::time::interval(FILE_CHECK);
    let mut overflow_reported = 0;
    let result = loop {
        tokio::select! {
            control = controls.recv() => match control {
                Some(Control::Reload) => reflector.reload_file(true).await,
                Some(Control::Shutdown) | None => break Ok(()),
            },
            // A changed file is reloaded as SIGHUP would; unreadable moments (the
            // file being replaced) are skipped until the next check.
            _ = file_check.tick() => reflector.reload_file(false).await,
            Ok(()) = snapshot.changed() => {
                let snapshot = snapshot.borrow_and_update().clone();
                reflector.datastore_changed(&snapshot).await;
            }
            Some(rejection) = refused.recv() => {
                reflector.counters.routes_refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%rejection, "route refused: not reflected");
                let dropped = overflow.load(Ordering::Relaxed);
                if dropped > overflow_reported {
                    tracing::warn!(unreported = dropped - overflow_reported, "refused routes came faster than they could be logged; counted only");
                    reflector.counters.routes_refused.fetch_add(dropped - overflow_reported, Ordering::Relaxed);
                    overflow_reported = dropped;
                }
            }
            change = reflector.bfd.next_change() => {
                match change {
                    Some(Change::Failed(failed)) => {
                        tracing::warn!(peer = %failed.address, graceful = failed.graceful, "BFD down: the session goes down and its routes are withdrawn at once");
                        let _ = reflector.speaker.requests.send(Request::ForwardingDown {
                            address: failed.address,
                            graceful: failed.graceful,
                        });
                    }
                    Some(Change::Up(address)) => {
                        let _ = reflector.speaker.requests.send(Request::ForwardingUp(address));
                    }
                    None => {}
                }
                reflector.bfd_states.send_replace(reflector.bfd.states());
            }
            notice = reflector.speaker.notices.recv() => match notice {
                Some(notice) => observe(notice, &reflector.counters),
                None => break Err(Error::SpeakerStopped),
            },
        }
    };
    tracing::info!(message = %reflector.config.shutdown_message, "shutting down: ceasing every session");
    let message = reflector.config.shutdown_message.clone();
    stop_speaker(&mut reflector.speaker, message).await;
    let _ = stop_servers.send(true);
    let _ = grpc.await;
    if let Some(metrics) = metrics {
        let _ = metrics.await;
    }
    result
}

impl Reflector {
    /// Reads the file again: always (`forced`, SIGHUP), or when its text changed.
    async fn reload_file(&mut self, forced: bool) {
        let text = match read(&self.options) {
            Ok(text) => text,
            Err(error) if forced => return reject(&error, &self.counters),
            Err(_) => return,
        };
        if !forced && text == self.file {
            return;
        }
        self.file = text.clone();
        match config::parse(&text, self.with_datastore) {
            Ok(next) => self.reload(next, self.discovered.clone()).await,
            Err(error) => reject(&error, &self.counters),
        }
    }

    /// The datastore changed: new peers are a reload; new ownership is judged
    /// again.
    async fn datastore_changed(&mut self, snapshot: &Snapshot) {
        let discovered = snapshot.discovered(self.options.node_name.as_deref());
        if discovered != self.discovered {
            tracing::info!(peers = discovered.peers.len(), "datastore view changed");
            self.reload(self.config.clone(), discovered).await;
        }
        self.judge_by(snapshot.owners());
    }

    /// Gives the import hook `owners`, with what each peer is now, and has the
    /// speaker judge every path again when that changed.
    fn judge_by(&mut self, owners: Owners) {
        let judge = Judge {
            owners,
            roles: self.desired.roles(&self.discovered),
        };
        let changed = self.judge.send_if_modified(|current| {
            let changed = **current != judge;
            if changed {
                *current = Arc::new(judge.clone());
            }
            changed
        });
        if changed {
            let _ = self.speaker.requests.send(Request::Revalidate);
        }
    }

    /// Applies `next` (with the datastore's `discovered` view) as a difference
    /// to the running speaker.
    async fn reload(&mut self, next: Config, discovered: Discovered) {
        let next_desired = match Desired::new(&next, &discovered) {
            Ok(d) => d,
            Err(error) => return reject(&error, &self.counters),
        };
        let changes = changes(&self.desired, &next_desired);
        if next.api != self.config.api || next.metrics != self.config.metrics {
            tracing::warn!("api and metrics addresses change only when the reflector restarts");
        }
        self.counters.reloads_ok.fetch_add(1, Ordering::Relaxed);
        if changes.is_empty() {
            tracing::info!("configuration reloaded: nothing changed");
        } else if let Err(error) = self.apply(changes, &next_desired).await {
            tracing::error!(%error, "cannot apply the new configuration");
            return;
        }
        self.config = next;
        self.desired = next_desired;
        self.discovered = discovered;
        self.publish();
        self.apply_bfd();
        self.warn_about_config();
        // Peers may be other things now.
        let owners = self.judge.borrow().owners.clone();
        self.judge_by(owners);
    }

    async fn apply(&mut self, changes: Changes, desired: &Desired) -> Result<(), Error> {
        let speaker = &mut self.speaker;
        if let Some(what) = changes.restart {
            tracing::warn!(changed = %what, "speaker-wide setting changed: restarting every session");
            stop_speaker(speaker, format!("configuration changed ({what})")).await;
            *speaker = start(desired, &self.hooks)?;
            // BFD strict mode: the new speaker learns which paths are Up.
            for address in self.bfd.up() {
                let _ = speaker.requests.send(Request::ForwardingUp(address));
            }
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

    /// Tells the API and the metrics about the running configuration.
    fn publish(&self) {
        self.view.send_replace(SpeakerView::new(
            &self.desired,
            self.speaker.requests.clone(),
            self.bfd_states.subscribe(),
        ));
    }

    /// Runs a BFD session beside each peer that has BFD configured, from this
    /// system's address towards it (`Peering::towards`).
    fn apply_bfd(&mut self) {
        let wanted = self
            .desired
            .peers
            .iter()
            .filter_map(|(address, peer)| {
                let bfd = peer.bfd?;
                match Peering::towards(*address, bfd.timers, bfd.graceful) {
                    Ok(peering) => Some((*address, peering)),
                    Err(error) => {
                        tracing::error!(peer = %address, %error, "no route to the peer for BFD; no BFD with it");
                        None
                    }
                }
            })
            .collect();
        self.bfd.apply(wanted);
        self.bfd_states.send_replace(self.bfd.states());
    }

    fn warn_about_config(&self) {
        for warning in self.config.warnings() {
            tracing::warn!(%warning, "configuration");
        }
    }
}

fn read(options: &Options) -> Result<String, ConfigError> {
    std::fs::read_to_string(&options.config).map_err(|source| ConfigError::Read {
        path: options.config.clone(),
        source,
    })
}

fn start(desired: &Desired, hooks: &Hooks) -> Result<SpeakerHandle, Error> {
    let speaker = speaker::start_with(desired.speaker.clone(), hooks.clone())?;
    for peer in desired.peers.values() {
        let _ = speaker.requests.send(Request::AddPeer(peer.config.clone()));
    }
    Ok(speaker)
}

fn reject(error: &ConfigError, counters: &Counters) {
    counters.reloads_failed.fetch_add(1, Ordering::Relaxed);
    tracing::error!(%error, "new configuration rejected; the running one stays");
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
