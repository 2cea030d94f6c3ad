//! tabby-lab: a real tabby cluster in network namespaces on this machine.
//!
//! ```text
//! tabby-lab --once [--nodes 4] [--mode crosssubnet] [--pods 2] [--reflectors 1] [--tor bird]
//!                  [--datastore kubernetes|etcd]
//!                                      build, check, report, tear down; non-zero when a check fails
//! tabby-lab up [--nodes N] [--mode direct|vxlan|crosssubnet] [--reflectors 0|1|2] [--tor bird|frr|none]
//!                                      build and stay up until `down`
//! tabby-lab down                       remove it (also after a crash)
//! ```
//!
//! Needs root (network namespaces), ping and iproute2, and etcd for `--datastore
//! etcd` (scripts/install-deps).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use api::datastore::config::DatastoreType;
use clap::{Parser, Subcommand};
use lab::tabby_lab::{self, Lab, Mode, Options, Tor};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "A real tabby cluster in network namespaces on this machine"
)]
struct Args {
    /// Build the lab, check that pods reach each other across nodes, print the
    /// report and tear everything down; exits non-zero when a check fails.
    #[arg(long)]
    once: bool,
    #[command(flatten)]
    shape: Shape,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Clone, clap::Args)]
struct Shape {
    /// Nodes (2 to 8), n1, n2, ...
    #[arg(long, default_value_t = 4, global = true)]
    nodes: usize,
    /// How pod traffic crosses between nodes.
    #[arg(long, value_enum, default_value_t = Mode::Crosssubnet, global = true)]
    mode: Mode,
    /// Pods per node (1 to 4).
    #[arg(long, default_value_t = 2, global = true)]
    pods: usize,
    /// tabby-reflectors (0 to 2), each in a namespace of its own; the
    /// node-to-node mesh is turned off when there are any.
    #[arg(long, default_value_t = 1, global = true)]
    reflectors: usize,
    /// A top-of-rack router in the router namespace, peering eBGP with every node.
    #[arg(long, value_enum, default_value_t = Tor::Bird, global = true)]
    tor: Tor,
    /// Where the cluster's resources live: the Kubernetes API (the API double,
    /// tabby-kube-api, in the router's namespace), as users run tabby, or etcd.
    #[arg(long, value_enum, default_value_t = DatastoreType::Kubernetes, global = true)]
    datastore: DatastoreType,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build the lab and keep it up until `tabby-lab down` (or Ctrl-C).
    Up,
    /// Stop a running lab and remove whatever a crashed one left.
    Down,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("tabby-lab: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<ExitCode> {
    if !nix::unistd::geteuid().is_root() {
        bail!("needs root: the lab is built of network namespaces (sudo tabby-lab ...)");
    }
    let options = Options {
        nodes: args.shape.nodes,
        mode: args.shape.mode,
        pods_per_node: args.shape.pods,
        reflectors: args.shape.reflectors,
        tor: args.shape.tor,
        datastore: args.shape.datastore,
    };
    match (args.command, args.once) {
        (Some(Command::Down), _) => {
            print!("{}", tabby_lab::down(Duration::from_secs(60))?);
            Ok(ExitCode::SUCCESS)
        }
        (Some(Command::Up), true) => bail!("--once and up: choose one"),
        (Some(Command::Up), false) => up(options),
        (None, true) => once(options),
        (None, false) => {
            bail!("nothing to do: `tabby-lab --once`, `tabby-lab up` or `tabby-lab down`")
        }
    }
}

fn building(options: &Options) {
    let peering = match options.reflectors {
        0 => "the node-to-node mesh".to_owned(),
        1 => "a tabby-reflector".to_owned(),
        n => format!("{n} tabby-reflectors"),
    };
    println!(
        "tabby-lab: building {} nodes ({} mode), {}, {peering}, ToR: {}, \
         a tabby-agent per node, {} pods per node ...",
        options.nodes,
        format!("{:?}", options.mode).to_lowercase(),
        match options.datastore {
            DatastoreType::Kubernetes => "the Kubernetes API (the API double)",
            DatastoreType::Etcd => "etcd",
        },
        options.tor.label(),
        options.pods_per_node
    );
}

fn once(options: Options) -> Result<ExitCode> {
    if let Some(pid) = tabby_lab::running() {
        bail!("a lab is already up (tabby-lab up, pid {pid}): run `tabby-lab down` first");
    }
    building(&options);
    let lab = Lab::up("tabby-lab", options)?;
    let report = lab.report()?;
    println!("\n{report}");
    let logs = lab.logs();
    drop(lab);
    println!(
        "Torn down: every namespace and process of the lab is gone; its logs stay in {}",
        logs.display()
    );
    Ok(match report.healthy() {
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    })
}

fn up(options: Options) -> Result<ExitCode> {
    tabby_lab::claim()?;
    building(&options);
    let lab = Lab::up("tabby-lab", options);
    let lab = match lab {
        Ok(lab) => lab,
        Err(e) => {
            let _ = std::fs::remove_file(tabby_lab::STATE_FILE);
            return Err(e);
        }
    };
    println!("\n{}", lab.report()?);
    println!("{}", lab.how_to_reach());
    println!("Up until `tabby-lab down` (or Ctrl-C).");
    harness::runtime().block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("SIGINT")?;
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        anyhow::Ok(())
    })?;
    drop(lab);
    let _ = std::fs::remove_file(tabby_lab::STATE_FILE);
    println!("tabby-lab: torn down");
    Ok(ExitCode::SUCCESS)
}
