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

use std::path::PathBuf;

use crate::cli::{Cli, Command};
use crate::error::CliError;
use crate::input::{self, Document, Input};
use crate::kinds::ResourceKind;
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
        Command::Version => {
            // calicoctl's layout, so scripts that read it keep working. tabby keeps no
            // ClusterInformation: there is no cluster-wide version to show.
            let cluster_type = session.datastore_type()?;
            session.print(&format!(
                "Client Version:    v{}\nCluster Version:   n/a (tabby keeps no ClusterInformation)\n\
                 Cluster Type:      tabby,bgp,{cluster_type}\n",
                env!("CARGO_PKG_VERSION")
            ))?;
            Ok(exit::OK)
        }
        Command::Completion(args) => {
            let mut script = Vec::new();
            clap_complete::generate(args.shell, &mut Cli::command(), "calicoctl-rs", &mut script);
            session.print(&String::from_utf8_lossy(&script))?;
            Ok(exit::OK)
        }
    }
}

/// `kind`, when write commands may write it; a usage error naming who writes it
/// otherwise (see [`ResourceKind::writable`]).
fn writable(kind: ResourceKind) -> Result<ResourceKind, CliError> {
    if kind.writable() {
        return Ok(kind);
    }
    Err(CliError::Usage(format!(
        "{}s are written by the CNI plugin, one per pod interface; calicoctl-rs only shows them",
        kind.name()
    )))
}

/// Tells the operator, on standard error, what converting Calico's YAML changed.
fn print_notes(session: &mut Session<'_>, input: &Input) -> Result<(), CliError> {
    for document in &input.documents {
        for note in &document.notes {
            session.warn(&format!(
                "note: {}, {}: {note}",
                document.origin,
                document.resource.describe()
            ))?;
        }
    }
    for notice in &input.notices {
        for note in &notice.notes {
            session.warn(&format!("note: {}: {note}", notice.origin))?;
        }
    }
    Ok(())
}

/// The resources of the files for a command that writes: its notes printed, and
/// nothing at all when any document cannot be used (every problem printed).
fn read_resources(session: &mut Session<'_>, files: &[PathBuf]) -> Result<Vec<Document>, CliError> {
    let input = input::read_all(files, session.stdin)?;
    print_notes(session, &input)?;
    input.all_or_nothing(|problem| session.warn(&format!("error: {problem}")))
}
