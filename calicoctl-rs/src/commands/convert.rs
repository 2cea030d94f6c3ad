//! `convert`: resources in tabby's form, whatever form the files hold them in. What
//! the conversion dropped or does otherwise goes to standard error as notes; a
//! document that cannot be converted is left out with each of its problems, the
//! others are printed, and the exit code says something was left out.

use serde_json::json;

use super::print_notes;
use crate::cli::ConvertArgs;
use crate::error::CliError;
use crate::input;
use crate::kinds::AnyResource;
use crate::output::{self, OutputFormat, exit};
use crate::session::Session;
use crate::with_any;

pub fn convert(session: &mut Session<'_>, args: ConvertArgs) -> Result<i32, CliError> {
    if matches!(args.output, OutputFormat::Table | OutputFormat::Wide) {
        return Err(CliError::Usage(
            "convert prints yaml or json, not tables".to_owned(),
        ));
    }
    let input = input::read_all(&args.files.files, session.stdin)?;
    print_notes(session, &input)?;
    for problem in &input.problems {
        session.warn(&format!("error: {problem}"))?;
    }
    let resources: Vec<AnyResource> = input.documents.into_iter().map(|d| d.resource).collect();
    let text = match args.output {
        OutputFormat::Json => {
            let items: Vec<serde_json::Value> = resources
                .iter()
                .map(|r| with_any!(r, r => output::json(r)))
                .collect();
            match <[_; 1]>::try_from(items) {
                Ok([item]) => output::pretty_json(&item),
                Err(items) if items.is_empty() => String::new(),
                Err(items) => output::pretty_json(&json!({
                    "apiVersion": api::resources::API_VERSION,
                    "kind": "List",
                    "items": items,
                })),
            }
        }
        _ => resources
            .iter()
            .map(|r| with_any!(r, r => output::yaml_documents(std::slice::from_ref(r))))
            .collect::<Vec<_>>()
            .join("---\n"),
    };
    session.print(&text)?;
    if input.problems.is_empty() {
        Ok(exit::OK)
    } else {
        session.warn(&format!(
            "error: {} problems (above): what they concern was left out",
            input.problems.len()
        ))?;
        Ok(exit::PROBLEM)
    }
}
