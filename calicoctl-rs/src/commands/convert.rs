//! `convert`: resources in tabby's form, whatever form the files hold them in; what
//! the conversion dropped goes to standard error.

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
    let documents = input::read_all(&args.files.files, session.stdin)?;
    print_notes(session, &documents)?;
    let resources: Vec<AnyResource> = documents.into_iter().map(|d| d.resource).collect();
    let text = match args.output {
        OutputFormat::Yaml => resources
            .iter()
            .map(|r| with_any!(r, r => output::yaml_documents(std::slice::from_ref(r))))
            .collect::<Vec<_>>()
            .join("---\n"),
        OutputFormat::Json => {
            let items: Vec<serde_json::Value> = resources
                .iter()
                .map(|r| with_any!(r, r => output::json(r)))
                .collect();
            match <[_; 1]>::try_from(items) {
                Ok([item]) => output::pretty_json(&item),
                Err(items) => output::pretty_json(&json!({
                    "apiVersion": api::resources::API_VERSION,
                    "kind": "List",
                    "items": items,
                })),
            }
        }
        OutputFormat::Table | OutputFormat::Wide => {
            return Err(CliError::Usage(
                "convert prints yaml or json, not tables".to_owned(),
            ));
        }
    };
    session.print(&text)?;
    Ok(exit::OK)
}
