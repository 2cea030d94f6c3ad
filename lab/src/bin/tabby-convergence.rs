//! Pod-route convergence on a cluster of `tabby-agent`s (see
//! `lab::convergence` and docs/benchmarks.md):
//!
//! ```text
//! tabby-convergence --nodes 10 --samples 100 --mode mesh --mode tabby-reflector --mode bird-reflector
//! ```
//!
//! Prints a Markdown table: p50, p99 and max of each measure, with the machine's
//! load before and after.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use lab::convergence::{self, Mode, Report, load_average, percentile};

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
        let report = convergence::run(mode, args.nodes, args.samples)
            .with_context(|| format!("{mode:?} with {} nodes", args.nodes))?;
        println!("{mode:?}: {} samples", report.add.len());
        reports.push(report);
    }
    let after = load_average()?;
    println!("\nload average before: {before}; after: {after}\n");
    println!("| mode | nodes | samples | measure | p50 | p99 | max |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for report in &reports {
        row(report, "CNI ADD → route on every other node", &report.add);
        row(
            report,
            "CNI ADD → route on the first other node",
            &report.add_first,
        );
        row(report, "CNI ADD call itself", &report.cni_add);
        row(
            report,
            "block released → route gone everywhere",
            &report.withdraw,
        );
    }
    Ok(())
}

fn row(report: &Report, measure: &str, samples: &[Duration]) {
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    println!(
        "| {:?} | {} | {} | {measure} | {} | {} | {} |",
        report.mode,
        report.nodes,
        samples.len(),
        ms(percentile(samples, 50.0)),
        ms(percentile(samples, 99.0)),
        ms(percentile(samples, 100.0)),
    );
}
