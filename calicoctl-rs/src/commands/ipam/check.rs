//! `ipam check`: the `ipam` crate's consistency checker, leaks included; exit 1 when
//! it finds anything. `-o FILE` writes the report as JSON (`-` for standard output,
//! the summary then going to standard error), for `ipam release --from-report`.

use ipam::check::Report;

use super::describe;
use crate::cli::CheckArgs;
use crate::error::CliError;
use crate::output::{exit, pretty_json};
use crate::session::Session;

pub async fn check(session: &mut Session<'_>, args: CheckArgs) -> Result<i32, CliError> {
    let store = session.store().await?;
    let report = ipam::check::check(&*store, true).await?;
    let summary = summary(&report);
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

fn summary(report: &Report) -> String {
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
    for problem in &report.problems {
        text.push_str(&format!("- {}\n", describe::problem(problem)));
    }
    text
}
