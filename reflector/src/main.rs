//! `tabby-reflector --config FILE [--datastore KIND] [--node-name NAME]`: a BGP route
//! reflector. SIGHUP (or a change of the file) reloads; SIGTERM and SIGINT cease
//! every session with the configured shutdown message and exit.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use api::datastore::MemoryStore;
use clap::Parser;
use reflector::daemon::{self, Control, Options};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

#[derive(Debug, Parser)]
#[command(version, about = "tabby's BGP route reflector")]
struct Args {
    /// The configuration file (YAML).
    #[arg(long, env = "TABBY_REFLECTOR_CONFIG")]
    config: PathBuf,
    /// Discover peers from this datastore's Node resources.
    #[arg(long, env = "TABBY_DATASTORE")]
    datastore: Option<String>,
    /// This reflector's Node name (its cluster id and AS come from it).
    #[arg(long, env = "TABBY_NODE_NAME")]
    node_name: Option<String>,
    /// Log lines as JSON.
    #[arg(long)]
    log_json: bool,
}

fn main() {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("TABBY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    if args.log_json {
        logs.json().init();
    } else {
        logs.init();
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
        let options = Options {
            config: args.config,
            node_name: args.node_name,
        };
        let datastore: Option<Arc<MemoryStore>> = match args.datastore.as_deref() {
            None => None,
            // Real backends plug in here as they land (etcd, kubernetes); the
            // in-memory one serves only in-process tests.
            Some(other) => bail!("--datastore {other:?}: no such backend in this build"),
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
