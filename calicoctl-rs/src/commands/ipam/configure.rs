//! `ipam configure`: the cluster's IPAM configuration.

use api::resources::{IPAMConfig, IPAMConfigSpec, Object, Resource};

use super::IPAM_CONFIG;
use crate::cli::ConfigureArgs;
use crate::commands::retry::write_with_retry;
use crate::error::CliError;
use crate::output::exit;
use crate::session::Session;

/// Changes the settings given, creating the configuration with defaults for the
/// rest if there is none yet.
pub async fn configure(session: &mut Session<'_>, args: ConfigureArgs) -> Result<i32, CliError> {
    let store = session.store().await?;
    let outcome = write_with_retry::<IPAMConfig>(&*store, IPAM_CONFIG, |current| {
        let mut next = current
            .cloned()
            .unwrap_or_else(|| Object::new(IPAM_CONFIG, IPAMConfigSpec::default()));
        let spec = &mut next.spec;
        if let Some(strict) = args.strictaffinity {
            spec.strict_affinity = strict;
        }
        if let Some(max) = args.max_blocks_per_host {
            spec.max_blocks_per_host = max;
        }
        if let Some(auto) = args.autoallocateblocks {
            spec.auto_allocate_blocks = auto;
        }
        Ok(next)
    })
    .await?;
    let config: IPAMConfig = api::datastore::Datastore::get(&*store, IPAM_CONFIG).await?;
    let spec = &config.spec;
    session.print(&format!(
        "{}/{} {}: strictAffinity={} maxBlocksPerHost={} autoAllocateBlocks={}\n",
        IPAMConfig::KIND.to_lowercase(),
        IPAM_CONFIG,
        outcome.verb(),
        spec.strict_affinity,
        spec.max_blocks_per_host,
        spec.auto_allocate_blocks
    ))?;
    Ok(exit::OK)
}
