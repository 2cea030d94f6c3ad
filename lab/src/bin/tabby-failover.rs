//! Failover after a cut link (see `lab::failover` and docs/benchmarks.md):
//!
//! ```text
//! tabby-failover --nodes 5 --samples 20 --interval-ms 300 --interval-ms 50
//! ```
//!
//! Every mode (tabby mesh, tabby behind tabby-reflector, BIRD mesh) is run with
//! BFD at each interval (× `--multiplier`) and without BFD (waits capped at
//! `--cap-s`). Prints a Markdown table: p50, p99 and max of each row, with the
//! machine's load before and after.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use lab::convergence::{load_average, percentile};
use lab::failover::{self, Mode, Report, Setup};

#[derive(Debug, Parser)]
#[command(
    about = "time from a node's link going down until its routes are gone from every other node's kernel"
)]
struct Args {
    /// Nodes that speak BGP (a reflector comes on top).
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Cuts per row.
    #[arg(long, default_value_t = 20)]
    samples: usize,
    /// Modes to measure; all when none is given.
    #[arg(long = "mode")]
    modes: Vec<Mode>,
    /// BFD intervals (transmit and receive) to measure, in milliseconds.
    #[arg(long = "interval-ms", default_values_t = [300])]
    intervals: Vec<u64>,
    /// BFD's detection multiplier.
    #[arg(long, default_value_t = 3)]
    multiplier: u8,
    /// The longest wait for one cut without BFD, in seconds; 0 to leave BFD-off
    /// rows out.
    #[arg(long = "cap-s", default_value_t = 5)]
    cap: u64,
}

fn main() {
    if let Err(error) = run(Args::parse()) {
        eprintln!("tabby-failover: {error:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        anyhow::bail!("needs root (network namespaces)");
    }
    if args.nodes < 2 || args.multiplier == 0 {
        anyhow::bail!("--nodes needs at least 2 and --multiplier at least 1");
    }
    let modes = if args.modes.is_empty() {
        vec![Mode::Mesh, Mode::TabbyReflector, Mode::BirdMesh]
    } else {
        args.modes
    };
    let mut bfds: Vec<Option<(Duration, u8)>> = args
        .intervals
        .iter()
        .map(|ms| Some((Duration::from_millis(*ms), args.multiplier)))
        .collect();
    if args.cap > 0 {
        bfds.push(None);
    }
    let before = load_average()?;
    let mut reports = Vec::new();
    for mode in modes {
        for bfd in &bfds {
            let setup = Setup {
                mode,
                nodes: args.nodes,
                bfd: *bfd,
                // With BFD the cap is only a guard: ten times the detection time,
                // at least 5 s.
                cap: match bfd {
                    Some((interval, multiplier)) => {
                        (*interval * u32::from(*multiplier) * 10).max(Duration::from_secs(5))
                    }
                    None => Duration::from_secs(args.cap),
                },
            };
            let report =
                failover::run(setup, args.samples).with_context(|| format!("{setup:?}"))?;
            println!("{}: {} samples", bfd_label(&setup), report.gone.len());
            reports.push(report);
        }
    }
    let after = load_average()?;
    println!("\nload average before: {before}; after: {after}\n");
    println!("| mode | nodes | BFD | samples | p50 | p99 | max | capped |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for report in &reports {
        row(report);
    }
    Ok(())
}

fn bfd_label(setup: &Setup) -> String {
    match setup.bfd {
        Some((interval, multiplier)) => format!(
            "{:?}, BFD {} ms × {multiplier}",
            setup.mode,
            interval.as_millis()
        ),
        None => format!("{:?}, no BFD (cap {} s)", setup.mode, setup.cap.as_secs()),
    }
}

fn row(report: &Report) {
    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
    let setup = &report.setup;
    let bfd = match setup.bfd {
        Some((interval, multiplier)) => format!("{} ms × {multiplier}", interval.as_millis()),
        None => "off".to_owned(),
    };
    println!(
        "| {:?} | {} | {bfd} | {} | {} | {} | {} | {} |",
        setup.mode,
        setup.nodes,
        report.gone.len(),
        ms(percentile(&report.gone, 50.0)),
        ms(percentile(&report.gone, 99.0)),
        ms(percentile(&report.gone, 100.0)),
        report.capped,
    );
}
