//! One module per command family; [`run`] picks the command.

mod convert;
mod delete;
mod get;
mod ipam;
mod modify;
mod node;
mod retry;
mod write;

use clap::CommandFactory;

use crate::cli::{Cli, Command};
use crate::error::CliError;
use crate::input::Document;
use crate::output::exit;
use crate::session::Session;

/// Runs `command`; the exit code when it ran (0, or 1 when it found a problem).
pub async fn run(command: Command, session: &mut Session<'_>) -> Result<i32, CliError> {
    match command {
        Command::Get(args) => get::get(session, args).await,
        Command::Create(args) => write::create(session, args).await,
        Command::Apply(args) => write::apply(session, args).await,
        Command::Replace(args) => write::replace(session, args).await,
        Command::Delete(args) => delete::delete(session, args).await,
        Command::Patch(args) => modify::patch(session, args).await,
        Command::Label(args) => modify::label(session, args).await,
        Command::Convert(args) => convert::convert(session, args),
        Command::Ipam(command) => ipam::ipam(session, command).await,
        Command::Node(command) => node::node(session, command).await,
        Command::Completion(args) => {
            let mut script = Vec::new();
            clap_complete::generate(args.shell, &mut Cli::command(), "calicoctl-rs", &mut script);
            session.print(&String::from_utf8_lossy(&script))?;
            Ok(exit::OK)
        }
    }
}

/// Tells the operator, on standard error, what converting Calico's YAML changed.
fn print_notes(session: &mut Session<'_>, documents: &[Document]) -> Result<(), CliError> {
    for document in documents {
        for note in &document.notes {
            session.warn(&format!(
                "note: {}, {}: {note}",
                document.origin,
                document.resource.describe()
            ))?;
        }
    }
    Ok(())
}
