//! Output formats (`-o`) and exit codes, shared by every command, and the printing of
//! resources in each format.

use std::fmt;
use std::str::FromStr;

use clap::ValueEnum;

use crate::kinds::CliResource;
use crate::table::{Table, TableContext};

/// Exit codes, as calicoctl users script against them.
pub mod exit {
    /// The command did what was asked and found nothing wrong.
    pub const OK: i32 = 0;
    /// The command ran and found a problem (e.g. `ipam check` found a leak), or could
    /// not do what was asked (a resource was invalid, missing or refused).
    pub const PROBLEM: i32 = 1;
    /// The command line itself (or the CLI configuration) was wrong; nothing was done.
    pub const USAGE: i32 = 2;
}

/// How `get` and friends print resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OutputFormat {
    /// Columns as calicoctl prints them.
    #[default]
    Table,
    /// The table with more columns.
    Wide,
    /// Multi-document YAML, ready for `apply -f`.
    Yaml,
    /// JSON; several resources come as one `<Kind>List`.
    Json,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown output format {0:?}: use one of table, wide, yaml, json")]
pub struct UnknownFormat(String);

impl FromStr for OutputFormat {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        <Self as ValueEnum>::from_str(s, true).map_err(|_| UnknownFormat(s.to_owned()))
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = self.to_possible_value().expect("no variant is skipped");
        f.write_str(value.get_name())
    }
}

/// Renders resources of one kind in `format`. `single` prints one resource bare
/// (not as a list) in YAML and JSON, as `get KIND NAME` does.
pub fn render<R: CliResource>(
    resources: &[R],
    format: OutputFormat,
    single: bool,
    context: &TableContext,
) -> String {
    match format {
        OutputFormat::Table | OutputFormat::Wide => {
            let wide = format == OutputFormat::Wide;
            let mut table = Table::new(R::columns(wide));
            for resource in resources {
                table.push(resource.row(wide, context));
            }
            table.render()
        }
        OutputFormat::Yaml => yaml_documents(resources),
        OutputFormat::Json if single && resources.len() == 1 => pretty_json(&json(&resources[0])),
        OutputFormat::Json => {
            let list = serde_json::json!({
                "apiVersion": api::resources::API_VERSION,
                "kind": format!("{}List", R::KIND),
                "items": resources,
            });
            pretty_json(&list)
        }
    }
}

/// A resource as JSON. Cannot fail: every field is a plain value or a string, and
/// maps are keyed by strings.
pub fn json<R: serde::Serialize>(resource: &R) -> serde_json::Value {
    serde_json::to_value(resource).expect("resources serialise")
}

/// Resources as `---`-separated YAML documents.
pub fn yaml_documents<R: CliResource>(resources: &[R]) -> String {
    let mut text = String::new();
    for (i, resource) in resources.iter().enumerate() {
        if i > 0 {
            text.push_str("---\n");
        }
        // Serialising a resource cannot fail: every field is a plain value or string.
        text.push_str(&api::yaml::to_string(resource).expect("resources serialise"));
    }
    text
}

/// An enum value as the YAML spells it (`Self`, not the Rust variant `SelfHop`).
pub fn enum_name<T: serde::Serialize + fmt::Debug>(value: &T) -> String {
    match json(value) {
        serde_json::Value::String(name) => name,
        _ => format!("{value:?}"),
    }
}

pub fn pretty_json(value: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("JSON values serialise");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_parses_back_from_its_name() {
        for format in OutputFormat::value_variants() {
            assert_eq!(format.to_string().parse::<OutputFormat>(), Ok(*format));
        }
        assert_eq!("YAML".parse(), Ok(OutputFormat::Yaml));
    }

    #[test]
    fn an_unknown_format_lists_the_known_ones() {
        let err = "xml".parse::<OutputFormat>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown output format \"xml\": use one of table, wide, yaml, json"
        );
    }
}
