//! `tabby-reflector --config FILE [--datastore-type etcdv3|kubernetes ...] [--node-name NAME]`:
//! a BGP route reflector; with a datastore (any datastore flag, or Calico's
//! variables) it peers with every Node. SIGHUP (or a change of the file) reloads; SIGTERM and
//! SIGINT cease every session with the configured shutdown message and exit.

use std::path::PathBuf;

use anyhow::{Context, Result};
use api::datastore::args::DatastoreArgs;
use clap::Parser;
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
    // With a datastore: peer with every Node in it, and take the AS (BGPConfiguration
    // "default") and the cluster id (this reflector's Node) from it.
    #[command(flatten)]
    datastore: DatastoreArgs,
    /// This reflector's Node name (its cluster id and AS come from it).
    #[arg(long, env = "TABBY_NODE_NAME")]
    node_name: Option<String>,
    #[command(flatten)]
    log: telemetry::LogFlags,
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
        let env = |name: &str| std::env::var(name).ok();
        let datastore = match args.datastore.resolve_if_given(&env) {
            Ok(Some((config, warnings))) => {
                for warning in warnings {
                    tracing::warn!("{warning}");
                }
                let store = api::datastore::connect(&config)
                    .await
                    .with_context(|| format!("datastore ({config})"))?;
                Some(store)
            }
            Ok(None) => None,
            Err(error) => anyhow::bail!("{error}"),
        };
        let options = Options {
            config: args.config,
            node_name: args.node_name,
        };
        daemon::run(options, datastore, receiver).await?;
        Ok(())
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
