//! `tabby-reflector --config FILE [--datastore etcd|kubernetes] [--node-name NAME]`:
//! a BGP route reflector. SIGHUP (or a change of the file) reloads; SIGTERM and
//! SIGINT cease every session with the configured shutdown message and exit.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use api::datastore::{Backend, ETCD_DEFAULT_PREFIX, EtcdStore, KubeStore};
use clap::{Parser, ValueEnum};
use reflector::daemon::{self, Control, Options};
use telemetry::Renamed;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

#[derive(Debug, Parser)]
#[command(version, about = "tabby's BGP route reflector")]
struct Args {
    /// The configuration file (YAML).
    #[arg(long, env = "TABBY_REFLECTOR_CONFIG")]
    config: PathBuf,
    /// Peer with every Node in this datastore, and take the AS (BGPConfiguration
    /// "default") and the cluster id (this reflector's Node) from it.
    #[arg(long, env = "TABBY_DATASTORE", value_enum)]
    datastore: Option<DatastoreKind>,
    /// etcd endpoints, comma-separated (`--datastore etcd`).
    #[arg(
        long,
        env = "TABBY_ETCD_ENDPOINTS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:2379"
    )]
    etcd_endpoints: Vec<String>,
    /// The key prefix of tabby's resources in etcd.
    #[arg(long, env = "TABBY_ETCD_PREFIX", default_value = ETCD_DEFAULT_PREFIX)]
    etcd_prefix: String,
    /// The Kubernetes API without credentials (a `kubectl proxy`) for `--datastore
    /// kubernetes`; the pod's service account (or `$KUBECONFIG`) when unset.
    #[arg(long, env = "TABBY_KUBERNETES_API")]
    kubernetes_api: Option<String>,
    /// This reflector's Node name (its cluster id and AS come from it).
    #[arg(long, env = "TABBY_NODE_NAME")]
    node_name: Option<String>,
    #[command(flatten)]
    log: telemetry::LogFlags,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DatastoreKind {
    Etcd,
    Kubernetes,
}

fn main() {
    let args = Args::parse();
    if let Err(error) = args
        .log
        .init("tabby-reflector", "info", &Renamed::default())
    {
        eprintln!("{error}");
        std::process::exit(2);
    }
    if let Err(error) = run(args) {
        eprintln!("tabby-reflector: {error:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    runtime.block_on(async {
        let (controls, receiver) = mpsc::channel(8);
        tokio::spawn(forward_signals(controls));
        let datastore = match args.datastore {
            Some(kind) => Some(open(kind, &args).await?),
            None => None,
        };
        let options = Options {
            config: args.config,
            node_name: args.node_name,
        };
        daemon::run(options, datastore, receiver).await?;
        Ok(())
    })
}

/// How long the start waits for etcd to answer.
const DATASTORE_CONNECT: std::time::Duration = std::time::Duration::from_secs(10);

/// The datastore the flags name.
async fn open(kind: DatastoreKind, args: &Args) -> Result<Arc<dyn Backend>> {
    Ok(match kind {
        DatastoreKind::Etcd => {
            let connect = EtcdStore::connect(&args.etcd_endpoints);
            let store = tokio::time::timeout(DATASTORE_CONNECT, connect)
                .await
                .map_err(|_| anyhow::anyhow!("no answer in {DATASTORE_CONNECT:?}"))
                .and_then(|connected| Ok(connected?))
                .with_context(|| {
                    format!(
                        "--etcd-endpoints (TABBY_ETCD_ENDPOINTS) {}",
                        args.etcd_endpoints.join(",")
                    )
                })?;
            Arc::new(store.with_prefix(&args.etcd_prefix))
        }
        DatastoreKind::Kubernetes => {
            let store = match &args.kubernetes_api {
                Some(url) => KubeStore::at(url)
                    .with_context(|| format!("--kubernetes-api (TABBY_KUBERNETES_API) {url}"))?,
                None => KubeStore::infer().await.context(
                    "--datastore kubernetes: no in-cluster service account or $KUBECONFIG",
                )?,
            };
            Arc::new(store)
        }
    })
}

async fn forward_signals(controls: mpsc::Sender<Control>) -> std::io::Result<()> {
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        let control = tokio::select! {
            _ = hup.recv() => Control::Reload,
            _ = term.recv() => Control::Shutdown,
            _ = int.recv() => Control::Shutdown,
        };
        if controls.send(control).await.is_err() {
            return Ok(());
        }
    }
}
