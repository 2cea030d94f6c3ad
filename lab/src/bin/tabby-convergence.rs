//! Pod-route convergence on a cluster of `tabby-agent`s (see
//! `lab::convergence` and docs/benchmarks.md):
//!
//! ```text
//! tabby-convergence --nodes 10 --samples 100 --mode mesh --mode tabby-reflector --mode bird-reflector
//! tabby-convergence --samples 200 --mode mesh --baseline /tmp/main-plugins   # another build's plugins beside
//! ```
//!
//! Prints Markdown tables: p50, p99 and max of each measure, and where the CNI ADD's
//! time goes stage by stage, with the machine's load before and after.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use lab::convergence::{self, Mode, Report, Series, load_average, percentile};

#[derive(Debug, Parser)]
#[command(about = "time from a pod's CNI ADD until its route is in every other node's kernel")]
struct Args {
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 10)]
    nodes: usize,
    /// Pods measured per mode.
    #[arg(long, default_value_t = 100)]
    samples: usize,
    /// Modes to measure; all when none is given.
    #[arg(long = "mode")]
    modes: Vec<Mode>,
    /// A directory with another build's tabby-cni and tabby-ipam (main's, say):
    /// every other round of pods uses them, in the same run on the same cluster.
    #[arg(long)]
    baseline: Option<PathBuf>,
}

fn main() {
    if let Err(error) = run(Args::parse()) {
        eprintln!("tabby-convergence: {error:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        anyhow::bail!("needs root (network namespaces)");
    }
    if args.nodes < 2 {
        anyhow::bail!("--nodes {}: needs at least 2", args.nodes);
    }
    let modes = if args.modes.is_empty() {
        vec![Mode::Mesh, Mode::TabbyReflector, Mode::BirdReflector]
    } else {
        args.modes
    };
    let before = load_average()?;
    let mut reports = Vec::new();
    for mode in modes {
        let report = convergence::run(mode, args.nodes, args.samples, args.baseline.as_deref())
            .with_context(|| format!("{mode:?} with {} nodes", args.nodes))?;
        println!("{mode:?}: {} samples", report.workspace.add.len());
        reports.push(report);
    }
    let after = load_average()?;
    println!("\nload average before: {before}; after: {after}\n");
    println!("| mode | nodes | plugins | samples | measure | p50 | p99 | max |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for report in &reports {
        rows(report, "workspace", &report.workspace);
        if let Some(baseline) = &report.baseline {
            rows(report, "baseline", baseline);
        }
    }
    for report in &reports {
        println!(
            "\n{:?}: where the workspace's CNI ADD spends its time\n",
            report.mode
        );
        println!("| stage | calls | p50 | p99 |");
        println!("| --- | --- | --- | --- |");
        for (stage, samples) in convergence::stages::table(&report.stages) {
            println!(
                "| {stage} | {} | {} | {} |",
                samples.len(),
                ms(percentile(&samples, 50.0)),
                ms(percentile(&samples, 99.0)),
            );
        }
    }
    Ok(())
}

fn rows(report: &Report, plugins: &str, series: &Series) {
    let measures = [
        ("CNI ADD → route on every other node", &series.add),
        ("CNI ADD → route on the first other node", &series.add_first),
        ("CNI ADD call itself", &series.cni_add),
        ("block released → route gone everywhere", &series.withdraw),
    ];
    for (measure, samples) in measures {
        println!(
            "| {:?} | {} | {plugins} | {} | {measure} | {} | {} | {} |",
            report.mode,
            report.nodes,
            samples.len(),
            ms(percentile(samples, 50.0)),
            ms(percentile(samples, 99.0)),
            ms(percentile(samples, 100.0)),
        );
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}
