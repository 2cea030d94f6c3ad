//! calicoctl-rs, the operator CLI for tabby, in the style of calicoctl and kubectl.
//!
//! - [`cli`]: commands and flags; [`commands`]: what each does.
//! - [`config`]: which datastore (flags, `TABBY_*`, calicoctl's config file, Calico's
//!   variables); `api::datastore::connect` opens it.
//! - [`input`]: reading `-f` files (YAML or JSON, several documents, lists), all
//!   validated before anything is written; [`calico`]: Calico's v3 YAML converted.
//! - [`output`], [`table`], [`columns`]: tables as calicoctl prints them, YAML, JSON.
//! - [`error`]: one-line errors and exit codes 0 / 1 / 2.

pub mod calico;
pub mod cli;
pub mod columns;
pub mod commands;
pub mod config;
pub mod error;
pub mod input;
pub mod kinds;
pub mod merge_patch;
pub mod output;
pub mod session;
pub mod table;

use clap::Parser;

pub use cli::Cli;
pub use session::Session;

/// Parses `args` (the program name first) and runs the command; the exit code.
/// Errors are printed to the session's standard error as one line.
pub async fn run<I, T>(args: I, session: &mut Session<'_>) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                output::exit::USAGE
            } else {
                output::exit::OK
            };
            let rendered = e.render().to_string();
            let stream = if e.use_stderr() {
                &mut session.err
            } else {
                &mut session.out
            };
            let _ = stream.write_all(rendered.as_bytes());
            return code;
        }
    };
    execute(cli, session).await
}

/// Runs a parsed command line; the exit code.
pub async fn execute(cli: Cli, session: &mut Session<'_>) -> i32 {
    match commands::run(cli.command, session).await {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(session.err, "error: {e}");
            e.exit_code()
        }
    }
}

use std::io::Write;
