//! `ipam release`: frees addresses by hand. An address whose owner still exists (a
//! live pod, a node's tunnel, or one nothing names) is refused unless `--force`:
//! IPAM would hand it out again while it is in use. Each release is pinned to the
//! allocation looked at (its handle and sequence number), so an address freed and
//! reallocated in between is left alone.

use std::net::IpAddr;

use api::datastore::Backend;
use ipam::check::{Problem, Report, Snapshot};
use ipam::inventory::{Owner, owner_alive};
use ipam::release::{Expect, release_ip};
use ipam::table::{AllocationTable, ordinal_in};

use super::describe;
use crate::cli::ReleaseArgs;
use crate::error::CliError;
use crate::output::exit;
use crate::session::Session;

/// What to release: an address, and the handle a report saw holding it.
struct Target {
    ip: IpAddr,
    reported_handle: Option<String>,
}

pub async fn release(session: &mut Session<'_>, args: ReleaseArgs) -> Result<i32, CliError> {
    let mut targets: Vec<Target> = args
        .ips
        .iter()
        .map(|&ip| Target {
            ip,
            reported_handle: None,
        })
        .collect();
    if let Some(path) = &args.from_report {
        targets.extend(leaks_in(path)?);
    }
    let store = session.store().await?;
    let snapshot = Snapshot::read(&*store).await?;
    let mut failed = false;
    for target in targets {
        let from_report = target.reported_handle.is_some();
        match release_one(&*store, &snapshot, &target, args.force).await {
            Ok(line) => session.print(&line)?,
            // A report's leak that is gone or alive again is not a failure.
            Err(Skip(line)) if from_report => session.warn(&format!("skipped: {line}"))?,
            Err(Skip(line)) => {
                session.warn(&format!("error: {line}"))?;
                failed = true;
            }
        }
    }
    Ok(if failed { exit::PROBLEM } else { exit::OK })
}

/// Why an address was not released.
struct Skip(String);

impl From<CliError> for Skip {
    fn from(error: CliError) -> Self {
        Skip(error.to_string())
    }
}

impl From<ipam::IpamError> for Skip {
    fn from(error: ipam::IpamError) -> Self {
        Skip(CliError::from(error).to_string())
    }
}

async fn release_one(
    store: &dyn Backend,
    snapshot: &Snapshot,
    target: &Target,
    force: bool,
) -> Result<String, Skip> {
    let ip = target.ip;
    let allocation = snapshot
        .blocks
        .iter()
        .find(|b| b.spec.cidr.0.contains(&ip))
        .and_then(|b| ordinal_in(&b.spec, ip).and_then(|o| b.spec.allocation(o)));
    let Some(allocation) = allocation else {
        return Err(Skip(format!("IP {ip} is not assigned: nothing released")));
    };
    if let Some(reported) = &target.reported_handle
        && allocation.handle != Some(reported.as_str())
    {
        return Err(Skip(format!(
            "IP {ip} is held by handle {} now, not {reported} as the report says: nothing \
             released",
            allocation.handle.unwrap_or("(none)")
        )));
    }
    let owner = Owner::of(&allocation);
    if !force && owner_alive(store, &owner, ip).await? {
        return Err(Skip(format!(
            "IP {ip} is in use by {}, which exists: releasing it would let IPAM hand it out \
             again; release it anyway with --force",
            describe::owner(&owner)
        )));
    }
    let expect = Expect {
        handle: allocation.handle.map(str::to_owned),
        sequence: allocation.sequence,
    };
    release_ip(store, ip, &expect).await?;
    Ok(format!(
        "released {ip} (was {}, handle {})\n",
        describe::owner(&owner),
        expect.handle.as_deref().unwrap_or("none")
    ))
}

/// The leaks an `ipam check -o FILE` report lists.
fn leaks_in(path: &std::path::Path) -> Result<Vec<Target>, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(CliError::io(format!("reading {}", path.display())))?;
    let report: Report = serde_json::from_str(&text).map_err(|e| {
        CliError::Usage(format!(
            "{} is not an `ipam check -o` report: {e}",
            path.display()
        ))
    })?;
    Ok(report
        .problems
        .into_iter()
        .filter_map(|problem| match problem {
            Problem::Leak { ip, handle, .. } => Some(Target {
                ip,
                reported_handle: Some(handle.unwrap_or_default()),
            }),
            _ => None,
        })
        .collect())
}
