//! tabby-ipam-controller: IPAM garbage collection for the cluster (one replica).
//!
//! ```text
//! tabby-ipam-controller [--grace 15m] [--interval 1m] [--metrics-address 0.0.0.0:9094]
//!                                   (kubernetes: the pod's service account)
//! tabby-ipam-controller --datastore-type etcdv3 --etcd-endpoints http://10.0.0.1:2379 ...
//! tabby-ipam-controller ... --once [--grace 0s]   one pass, report as JSON
//! ```
//!
//! Flags also come from `TABBY_*` environment variables (see `--help`). SIGTERM and
//! SIGINT stop it between passes (it runs as PID 1 in its image, where a signal
//! without a handler does nothing).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use api::datastore::args::DatastoreArgs;
use api::resources::GoDuration;
use clap::Parser;
use controller::ipam_gc::{Metrics, log, run};
use ipam::gc::Collector;
use telemetry::http::MetricsServer;
use telemetry::{LogFlags, Renamed};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "tabby IPAM garbage collection: leaked addresses, deleted nodes' blocks, empty blocks"
)]
struct Args {
    #[command(flatten)]
    datastore: DatastoreArgs,
    /// How long something must look reclaimable before it is reclaimed.
    #[arg(long, env = "TABBY_IPAM_GC_GRACE", default_value = "15m")]
    grace: GoDuration,
    /// Time between passes.
    #[arg(long, env = "TABBY_IPAM_GC_INTERVAL", default_value = "1m")]
    interval: GoDuration,
    /// Where `/metrics`, `/healthz` and `/readyz` are served (a Deployment's pod:
    /// every interface of its own network namespace).
    #[arg(
        long,
        env = "TABBY_METRICS_ADDRESS",
        alias = "metrics-listen",
        default_value = "0.0.0.0:9094"
    )]
    metrics_address: SocketAddr,
    #[command(flatten)]
    log: LogFlags,
    /// Run one pass, print its report as JSON and exit. Nothing is reclaimed unless
    /// `--grace 0s`.
    #[arg(long)]
    once: bool,
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    let mut renamed = Renamed::default();
    let argv: Vec<_> = std::env::args_os().collect();
    renamed.flag(&argv, "metrics-listen", "metrics-address");
    if std::env::var_os("TABBY_METRICS_ADDRESS").is_none()
        && let Some(old) = renamed.var("TABBY_METRICS_LISTEN", "TABBY_METRICS_ADDRESS")
    {
        match old.parse() {
            Ok(address) => args.metrics_address = address,
            Err(error) => {
                eprintln!("tabby-ipam-controller: TABBY_METRICS_LISTEN {old:?}: {error}");
                return ExitCode::from(2);
            }
        }
    }
    if let Err(error) = args.log.init("tabby-ipam-controller", "info", &renamed) {
        eprintln!("{error}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tabby-ipam-controller: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tabby-ipam-controller: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args) -> Result<()> {
    let env = |name: &str| std::env::var(name).ok();
    let (datastore, warnings) = args.datastore.resolve(&env).map_err(anyhow::Error::msg)?;
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    let store = api::datastore::connect(&datastore)
        .await
        .with_context(|| format!("datastore ({datastore})"))?;
    let mut collector = Collector::new(store, args.grace.0);
    if args.once {
        let report = collector.run_once(Instant::now()).await?;
        log(&report);
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let metrics = Arc::new(Metrics::default());
    let registry = controller::ipam_gc::registry(&metrics);
    let server = MetricsServer::bind(args.metrics_address).await?;
    tracing::info!(
        address = ?server.local_addr(),
        grace = %args.grace,
        interval = %args.interval,
        "tabby-ipam-controller serving metrics"
    );
    let serving = server.serve(Arc::new(registry), metrics.clone(), std::future::pending());
    tokio::select! {
        served = serving => served.context("the metrics endpoint stopped"),
        () = run(collector, args.interval.0, metrics) => Ok(()),
        stopped = shutdown() => stopped,
    }
}

/// Completes on SIGTERM or SIGINT; a pass cut short is repeated by the next
/// controller, as every reclamation is checked again right before it is made.
async fn shutdown() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("handling SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("handling SIGINT")?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: exiting"),
        _ = int.recv() => tracing::info!("SIGINT: exiting"),
    }
    Ok(())
}
