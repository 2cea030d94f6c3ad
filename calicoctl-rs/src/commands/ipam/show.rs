//! `ipam show`: per pool how many addresses are in use, and on request the blocks
//! with their owners, borrowed addresses, every allocation, or who holds one address.

use std::net::IpAddr;

use api::datastore::{Datastore, Error};
use api::resources::{IPAMBlock, IPAMConfig, IPPool};
use ipam::check::Snapshot;
use ipam::inventory::Owner;
use ipam::pools::pool_holding;
use ipam::table::{AllocationTable, ordinal_in};

use super::{IPAM_CONFIG, describe};
use crate::cli::ShowArgs;
use crate::error::CliError;
use crate::output::exit;
use crate::session::Session;
use crate::table::Table;

pub async fn show(session: &mut Session<'_>, args: ShowArgs) -> Result<i32, CliError> {
    let store = session.store().await?;
    if args.show_configuration {
        let config: IPAMConfig = match store.get(IPAM_CONFIG).await {
            Ok(config) => config,
            Err(Error::NotFound { .. }) => IPAMConfig::new(IPAM_CONFIG, Default::default()),
            Err(e) => return Err(e.into()),
        };
        let spec = &config.spec;
        let mut table = Table::new(vec!["PROPERTY", "VALUE"]);
        table.push(vec![
            "StrictAffinity".into(),
            spec.strict_affinity.to_string(),
        ]);
        table.push(vec![
            "AutoAllocateBlocks".into(),
            spec.auto_allocate_blocks.to_string(),
        ]);
        table.push(vec![
            "MaxBlocksPerHost".into(),
            spec.max_blocks_per_host.to_string(),
        ]);
        session.print(&table.render_boxed())?;
        return Ok(exit::OK);
    }
    let snapshot = Snapshot::read(&*store).await?;
    if let Some(ip) = args.ip {
        session.print(&who_holds(&snapshot, ip))?;
        return Ok(exit::OK);
    }
    let pools = selected_pools(&snapshot, args.pool.as_deref())?;
    let mut text = usage_table(&snapshot, &pools, args.show_blocks).render_boxed();
    if args.show_borrowed {
        text.push_str("\nBorrowed addresses\n");
        text.push_str(&borrowed_table(&snapshot, &pools).render_boxed());
    }
    if args.show_allocations {
        text.push_str("\nAllocations\n");
        text.push_str(&allocations_table(&snapshot, &pools).render_boxed());
    }
    session.print(&text)?;
    Ok(exit::OK)
}

/// Every pool, or the one `--pool` names by name or CIDR.
fn selected_pools<'s>(
    snapshot: &'s Snapshot,
    pool: Option<&str>,
) -> Result<Vec<&'s IPPool>, CliError> {
    let Some(wanted) = pool else {
        return Ok(snapshot.pools.iter().collect());
    };
    let found: Vec<&IPPool> = snapshot
        .pools
        .iter()
        .filter(|p| p.metadata.name == wanted || p.spec.cidr.to_string() == wanted)
        .collect();
    if found.is_empty() {
        return Err(CliError::Refused(format!(
            "--pool {wanted:?} names no IP pool (give its name or its CIDR; `calicoctl-rs get \
             ippools` lists them)"
        )));
    }
    Ok(found)
}

/// The pool's blocks in address order.
fn blocks_in<'s>(snapshot: &'s Snapshot, pool: &IPPool) -> Vec<&'s IPAMBlock> {
    let cidr = pool.spec.cidr.0;
    let mut blocks: Vec<&IPAMBlock> = snapshot
        .blocks
        .iter()
        .filter(|b| cidr.contains(&b.spec.cidr.0))
        .collect();
    blocks.sort_by_key(|b| b.spec.cidr);
    blocks
}

/// `count (percent%)`, as calicoctl prints usage.
fn share(count: u128, total: u128) -> String {
    let percent = if total == 0 {
        0.0
    } else {
        count as f64 * 100.0 / total as f64
    };
    format!("{count} ({percent:.0}%)")
}

fn usage_table(snapshot: &Snapshot, pools: &[&IPPool], show_blocks: bool) -> Table {
    let mut columns = vec!["GROUPING", "CIDR", "IPS TOTAL", "IPS IN USE", "IPS FREE"];
    if show_blocks {
        columns.push("OWNER");
    }
    let mut table = Table::new(columns);
    let row = |grouping: &str, cidr: &ipnet::IpNet, used: u128, owner: Option<&str>| {
        let total = ipam::usage::addresses_in(cidr);
        let mut row = vec![
            grouping.to_owned(),
            cidr.to_string(),
            total.to_string(),
            share(used, total),
            share(total.saturating_sub(used), total),
        ];
        if show_blocks {
            row.push(owner.unwrap_or_default().to_owned());
        }
        row
    };
    for pool in pools {
        let blocks = blocks_in(snapshot, pool);
        let used = |b: &IPAMBlock| b.spec.allocations().len() as u128;
        let in_pool = blocks.iter().map(|b| used(b)).sum();
        table.push(row("IP Pool", &pool.spec.cidr.0, in_pool, None));
        if show_blocks {
            for block in blocks {
                let owner = block.spec.affine_node().unwrap_or("(none)");
                table.push(row("Block", &block.spec.cidr.0, used(block), Some(owner)));
            }
        }
    }
    table
}

/// Addresses held by another node than the block's owner.
fn borrowed_table(snapshot: &Snapshot, pools: &[&IPPool]) -> Table {
    let mut table = Table::new(vec![
        "IP",
        "BORROWING-NODE",
        "BLOCK",
        "BLOCK OWNER",
        "ALLOCATED-TO",
    ]);
    for pool in pools {
        for block in blocks_in(snapshot, pool) {
            let owner_node = block.spec.affine_node();
            for allocation in block.spec.allocations() {
                let owner = Owner::of(&allocation);
                let Some(borrower) = owner.node().filter(|n| Some(*n) != owner_node) else {
                    continue;
                };
                table.push(vec![
                    allocation.ip.to_string(),
                    borrower.to_owned(),
                    block.spec.cidr.to_string(),
                    owner_node.unwrap_or("(none)").to_owned(),
                    describe::owner(&owner),
                ]);
            }
        }
    }
    table
}

fn allocations_table(snapshot: &Snapshot, pools: &[&IPPool]) -> Table {
    let mut table = Table::new(vec!["IP", "NODE", "ALLOCATED-TO", "HANDLE"]);
    for pool in pools {
        for block in blocks_in(snapshot, pool) {
            for allocation in block.spec.allocations() {
                let owner = Owner::of(&allocation);
                let node = owner.node().or(block.spec.affine_node());
                table.push(vec![
                    allocation.ip.to_string(),
                    node.unwrap_or("(unknown)").to_owned(),
                    describe::owner(&owner),
                    allocation.handle.unwrap_or("(none)").to_owned(),
                ]);
            }
        }
    }
    table
}

/// Who holds `ip`, or why nobody does.
fn who_holds(snapshot: &Snapshot, ip: IpAddr) -> String {
    let block = snapshot.blocks.iter().find(|b| b.spec.cidr.0.contains(&ip));
    let Some(block) = block else {
        return match pool_holding(&snapshot.pools, &ip.into()) {
            Some(pool) => format!(
                "IP {ip} is not assigned: it is in pool {} ({}), but no node has claimed its \
                 block\n",
                pool.metadata.name, pool.spec.cidr
            ),
            None => format!("IP {ip} is not in any IP pool\n"),
        };
    };
    let owner_node = block.spec.affine_node().unwrap_or("no node");
    let allocation = ordinal_in(&block.spec, ip).and_then(|o| block.spec.allocation(o));
    let Some(allocation) = allocation else {
        return format!(
            "IP {ip} is not assigned (block {} of {owner_node})\n",
            block.spec.cidr
        );
    };
    let mut text = format!(
        "IP {ip} is in use by {}\n  handle:   {}\n  block:    {} (affine to {owner_node})\n",
        describe::owner(&Owner::of(&allocation)),
        allocation.handle.unwrap_or("(none)"),
        block.spec.cidr
    );
    for (key, value) in allocation.secondary {
        text.push_str(&format!("  {key}: {value}\n"));
    }
    text
}
