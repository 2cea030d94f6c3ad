//! The route-reflector benchmark (see `lab::bgperf` and docs/benchmarks.md):
//!
//! ```text
//! tabby-bgperf --target bird --target frr --workload w1 --workload w3 --runs 3
//! ```
//!
//! Prints each run as it ends and then a Markdown table of medians.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use lab::bgperf::{self, Options, Outcome, TargetKind, Workload};

#[derive(Debug, Parser)]
#[command(about = "tester -> route reflector -> monitor benchmark against real daemons")]
struct Args {
    /// Targets to measure (tabby, bird, frr, gobgp); all when none is given.
    #[arg(long = "target")]
    targets: Vec<TargetKind>,
    /// Workloads to run (w1 to w5); all when none is given.
    #[arg(long = "workload")]
    workloads: Vec<Workload>,
    /// Runs per target and workload; the table shows the median.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Seconds to wait between the sessions coming up and the first UPDATE.
    #[arg(long, default_value_t = 0.0)]
    settle: f64,
    /// Seconds any wait may take before the run fails.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

fn main() {
    if let Err(error) = run(Args::parse()) {
        eprintln!("tabby-bgperf: {error:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        anyhow::bail!("needs root (network namespaces)");
    }
    let targets = or_all(args.targets, &TargetKind::ALL);
    let workloads = or_all(args.workloads, &Workload::ALL);
    let options = Options {
        timeout: Duration::from_secs(args.timeout),
        settle: Duration::from_secs_f64(args.settle),
    };
    let mut rows = Vec::new();
    for &workload in &workloads {
        for &target in &targets {
            let mut outcomes = Vec::new();
            for index in 1..=args.runs {
                let outcome = bgperf::run(target, workload, &options)
                    .with_context(|| format!("{workload} against {target}, run {index}"))?;
                println!(
                    "{workload} {target} run {index}: {}",
                    describe(workload, &outcome)
                );
                outcomes.push(outcome);
            }
            rows.push(Row::median(workload, target, &outcomes));
        }
    }
    println!(
        "\n| workload | target | time (median) | runs | target CPU s | peak RSS | RSS growth per route |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for row in rows {
        println!("{row}");
    }
    Ok(())
}

fn or_all<T: Copy>(given: Vec<T>, all: &[T]) -> Vec<T> {
    if given.is_empty() {
        all.to_vec()
    } else {
        given
    }
}

/// The time a workload is judged by: convergence, or for churn the median wave.
fn time(workload: Workload, outcome: &Outcome) -> Duration {
    if workload.waves() == 0 {
        return outcome.convergence;
    }
    median(outcome.waves.clone())
}

fn describe(workload: Workload, outcome: &Outcome) -> String {
    let waves: Vec<String> = outcome
        .waves
        .iter()
        .map(|w| format!("{:.3}", w.as_secs_f64()))
        .collect();
    format!(
        "convergence {:.3} s{}, CPU {:.2} s, peak RSS {:.1} MB (idle {:.1} MB)",
        outcome.convergence.as_secs_f64(),
        if waves.is_empty() {
            String::new()
        } else {
            format!(
                ", waves {} s (median {:.3})",
                waves.join(" "),
                time(workload, outcome).as_secs_f64()
            )
        },
        outcome.cpu_seconds(),
        mb(outcome.end.peak_rss),
        mb(outcome.idle.rss),
    )
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn median<T: PartialOrd + Copy>(mut values: Vec<T>) -> T {
    values.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    values[values.len() / 2]
}

struct Row {
    workload: Workload,
    target: TargetKind,
    time: Duration,
    times: Vec<Duration>,
    cpu: f64,
    peak: u64,
    per_route: f64,
}

impl Row {
    fn median(workload: Workload, target: TargetKind, outcomes: &[Outcome]) -> Self {
        let times: Vec<Duration> = outcomes.iter().map(|o| time(workload, o)).collect();
        let growth = |o: &Outcome| o.end.peak_rss.saturating_sub(o.idle.rss) as f64;
        Self {
            workload,
            target,
            time: median(times.clone()),
            times,
            cpu: median(outcomes.iter().map(Outcome::cpu_seconds).collect()),
            peak: median(outcomes.iter().map(|o| o.end.peak_rss).collect()),
            per_route: median(outcomes.iter().map(growth).collect())
                / f64::from(workload.prefixes()),
        }
    }
}

impl std::fmt::Display for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let times: Vec<String> = self
            .times
            .iter()
            .map(|t| format!("{:.3}", t.as_secs_f64()))
            .collect();
        write!(
            f,
            "| {} | {} | {:.3} s | {} | {:.2} | {:.1} MB | {:.0} B |",
            self.workload,
            self.target,
            self.time.as_secs_f64(),
            times.join(" / "),
            self.cpu,
            mb(self.peak),
            self.per_route,
        )
    }
}
