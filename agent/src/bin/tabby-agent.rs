//! `tabby-agent`: the node agent. Flags and `TABBY_*` variables: `--help`.

use std::process::ExitCode;

use agent::config::Flags;
use agent::grpc;
use api::datastore::{ConnectError, connect, connect_lazily};
use telemetry::Renamed;
use tokio::sync::watch;

/// The environment's variables that are text (Calico's all are).
fn calico_vars() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
}

fn main() -> ExitCode {
    let (flags, calico_notes) =
        match Flags::with_calico_env(std::env::args_os().collect(), calico_vars()) {
            Ok(parsed) => parsed,
            Err(agent::config::FlagsError::Flags(error)) => error.exit(),
            Err(error) => {
                eprintln!("tabby-agent: {error}");
                return ExitCode::from(2);
            }
        };
    let hostname = || {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
    };
    let env = |name: &str| std::env::var(name).ok();
    let options = match flags.options(hostname) {
        Ok(mut options) => match agent::node::default_pools::from_env(&env) {
            Ok(pools) => {
                options.default_pools = pools;
                options
            }
            Err(error) => {
                eprintln!("tabby-agent: the default pool: {error}");
                return ExitCode::from(2);
            }
        },
        Err(error) => {
            eprintln!("tabby-agent: {error}");
            return ExitCode::from(2);
        }
    };
    let mut renamed = Renamed::default();
    let args: Vec<_> = std::env::args_os().collect();
    let log = telemetry::logging::with_renames(flags.log.clone(), &args, &mut renamed);
    if let Err(error) = log.init("tabby-agent", "info", &renamed) {
        eprintln!("{error}");
        return ExitCode::from(2);
    }
    for note in calico_notes {
        match note {
            agent::config::calico::Note::Unsupported(_) => tracing::warn!("{note}"),
            _ => tracing::info!("{note}"),
        }
    }
    let datastore = match flags.datastore.resolve(&env) {
        Ok((datastore, warnings)) => {
            for warning in warnings {
                tracing::warn!("{warning}");
            }
            datastore
        }
        Err(error) => {
            eprintln!("tabby-agent: {error}");
            return ExitCode::from(2);
        }
    };
    let mut options = options;
    options.services_api = flags.services_api(&datastore, &env);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("tabby-agent: starting the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let (bound, metrics) = grpc::bind(flags.socket.clone(), flags.metrics_address())
            .await
            .map_err(|e| e.to_string())?;
        let saved_view = options
            .last_view_file
            .as_deref()
            .is_some_and(|p| p.exists());
        let store = match connect(&datastore).await {
            Ok(store) => Ok(store),
            // The view saved last time can carry the agent until etcd answers.
            Err(ConnectError::Unreachable(error)) if saved_view => {
                tracing::warn!(%error, "the datastore does not answer: opening it without asking");
                connect_lazily(&datastore).await
            }
            Err(error) => Err(error),
        }
        .map_err(|e| format!("datastore ({datastore}): {e}"))?;
        let (reporting, handle) = agent::daemon::channels();
        let (stop, stopped) = watch::channel(false);
        let api = tokio::spawn(grpc::serve(handle, bound, metrics, stopped));
        let result = agent::daemon::run(options, store, reporting, shutdown())
            .await
            .map_err(|e| e.to_string());
        let _ = stop.send(true);
        if let Ok(Err(error)) = api.await {
            tracing::warn!(%error, "status API");
        }
        result
    });
    match result {
        // Exit at once: sessions close without a Cease, so peers keep this node's
        // routes while it restarts, and nothing is torn down in the kernel.
        Ok(()) => std::process::exit(0),
        Err(error) => {
            eprintln!("tabby-agent: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: exiting"),
        _ = int.recv() => tracing::info!("SIGINT: exiting"),
    }
}
