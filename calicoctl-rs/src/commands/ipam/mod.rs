//! `ipam`: what IPAM holds (`show`), whether it contradicts itself (`check`), freeing
//! a leaked address (`release`), and its configuration (`configure`). The reading
//! and the checks are the `ipam` crate's; this module chooses and prints.

mod check;
mod configure;
mod describe;
mod release;
mod show;

use crate::cli::IpamCommand;
use crate::error::CliError;
use crate::session::Session;

/// The one IPAM configuration's name.
const IPAM_CONFIG: &str = "default";

pub async fn ipam(session: &mut Session<'_>, command: IpamCommand) -> Result<i32, CliError> {
    match command {
        IpamCommand::Show(args) => show::show(session, args).await,
        IpamCommand::Check(args) => check::check(session, args).await,
        IpamCommand::Release(args) => release::release(session, args).await,
        IpamCommand::Configure(args) => configure::configure(session, args).await,
    }
}
