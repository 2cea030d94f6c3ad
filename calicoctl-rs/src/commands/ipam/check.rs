//! `ipam check`: the `ipam` crate's consistency checker, leaks included; exit 1 when
//! it finds anything. Problems with one address each (there may be thousands) are
//! counted by kind, and listed with `--show-problem-ips` as calicoctl does; the
//! others are always listed. `-o FILE` writes the report as JSON (`-` for standard
//! output, the summary then going to standard error), for `ipam release
//! --from-report`.

use std::collections::BTreeMap;

use ipam::check::{Problem, Report};

use super::describe;
use crate::cli::CheckArgs;
use crate::error::CliError;
use crate::output::{exit, pretty_json};
use crate::session::Session;

pub async fn check(session: &mut Session<'_>, args: CheckArgs) -> Result<i32, CliError> {
    let store = session.store().await?;
    let report = ipam::check::check(&*store, true).await?;
    let summary = summary(&report, args.show_problem_ips);
    match args.output.as_deref() {
        Some("-") => {
            session.print(&pretty_json(
                &serde_json::to_value(&report).expect("reports serialise"),
            ))?;
            for line in summary.lines() {
                session.warn(line)?;
            }
        }
        Some(path) => {
            let json = pretty_json(&serde_json::to_value(&report).expect("reports serialise"));
            std::fs::write(path, json).map_err(CliError::io(format!("writing {path}")))?;
            session.print(&summary)?;
        }
        None => session.print(&summary)?,
    }
    Ok(if report.is_consistent() {
        exit::OK
    } else {
        exit::PROBLEM
    })
}

fn summary(report: &Report, show_problem_ips: bool) -> String {
    let mut text = format!(
        "Checked {} blocks, {} allocations, {} handles and {} affinities: ",
        report.blocks, report.allocations, report.handles, report.affinities
    );
    if report.is_consistent() {
        text.push_str("no problems found.\n");
        return text;
    }
    let count = report.problems.len();
    text.push_str(&format!(
        "{count} problem{} found:\n",
        if count == 1 { "" } else { "s" }
    ));
    let mut addresses: BTreeMap<&str, usize> = BTreeMap::new();
    for problem in &report.problems {
        match address_kind(problem) {
            Some(kind) if !show_problem_ips => *addresses.entry(kind).or_default() += 1,
            _ => text.push_str(&format!("- {}\n", describe::problem(problem))),
        }
    }
    for (kind, count) in addresses {
        text.push_str(&format!(
            "- {count} address{} {kind} (--show-problem-ips lists them)\n",
            if count == 1 { "" } else { "es" }
        ));
    }
    text
}

/// What is wrong, for a problem about one address.
fn address_kind(problem: &Problem) -> Option<&'static str> {
    match problem {
        Problem::Leak { .. } => Some("leaked"),
        Problem::DoubleAllocation { .. } => Some("allocated more than once"),
        Problem::AddressWithoutHandle { .. } => Some("without a valid handle"),
        Problem::TunnelAddressNotAllocated { .. } => {
            Some("recorded as tunnel address but not held")
        }
        Problem::DoubleOwnership { .. }
        | Problem::BlockWithoutAffinity { .. }
        | Problem::StaleAffinity { .. }
        | Problem::HandleCountMismatch { .. }
        | Problem::HandleWithoutAddresses { .. }
        | Problem::BlockOutsidePools { .. } => None,
    }
}
