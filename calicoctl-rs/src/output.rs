//! Output formats (`-o`) and exit codes, shared by every command, and the printing of
//! resources in each format.

use std::fmt;
use std::path::PathBuf;
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
    /// Columns as calicoctl prints them (`ps`, calicoctl's name for it, works too).
    #[default]
    #[value(alias = "ps")]
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

/// What `get -o` prints: a format, or one of calicoctl's `custom-columns=HEADING,...`
/// (headings of the wide table, in any case), `go-template=TEMPLATE` and
/// `go-template-file=FILE`. Templates run over the JSON form of the `<Kind>List`, so
/// fields go by their YAML names (`{{range .items}}{{.metadata.name}} {{end}}`), not
/// by calicoctl's Go names (`.Items`, `.ObjectMeta.Name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetOutput {
    Format(OutputFormat),
    CustomColumns(Vec<String>),
    GoTemplate(String),
    GoTemplateFile(PathBuf),
}

impl GetOutput {
    pub fn is_tabular(&self) -> bool {
        matches!(
            self,
            Self::Format(OutputFormat::Table | OutputFormat::Wide) | Self::CustomColumns(_)
        )
    }
}

impl FromStr for GetOutput {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let Some((name, value)) = text.split_once('=') else {
            return text.parse().map(Self::Format).map_err(|e: UnknownFormat| {
                format!(
                    "{e}, custom-columns=HEADING,..., go-template=TEMPLATE or go-template-file=FILE"
                )
            });
        };
        if value.is_empty() {
            return Err(format!("-o {name}= needs a value after the ="));
        }
        match name {
            "custom-columns" => Ok(Self::CustomColumns(
                value.split(',').map(|c| c.trim().to_uppercase()).collect(),
            )),
            "go-template" => Ok(Self::GoTemplate(value.to_owned())),
            "go-template-file" => Ok(Self::GoTemplateFile(value.into())),
            _ => Err(format!(
                "unknown output format {name:?}: use custom-columns=, go-template= or \
                 go-template-file="
            )),
        }
    }
}

/// The `headings` columns of the wide table, as calicoctl's `-o custom-columns`.
pub fn custom_columns<R: CliResource>(
    resources: &[R],
    headings: &[String],
    context: &TableContext,
) -> Result<String, String> {
    let known = R::columns(true);
    let picked = headings
        .iter()
        .map(|heading| {
            known.iter().position(|k| k == heading).ok_or_else(|| {
                format!(
                    "-o custom-columns: {} has no column {heading:?}; its columns: {}",
                    R::KIND,
                    known.join(",")
                )
            })
        })
        .collect::<Result<Vec<usize>, String>>()?;
    let mut table = Table::new(picked.iter().map(|&i| known[i]).collect());
    for resource in resources {
        let row = resource.row(true, context);
        table.push(picked.iter().map(|&i| row[i].clone()).collect());
    }
    Ok(table.render())
}

/// Go's text/template over the resources' `<Kind>List` JSON form.
pub fn go_template<R: CliResource>(resources: &[R], template: &str) -> Result<String, String> {
    let parsed = gotmpl::Template::new("go-template")
        .parse(template)
        .map_err(|e| format!("-o go-template: {e}"))?;
    let data = gotmpl::to_value(&list_json(resources))
        .map_err(|e| format!("-o go-template: the resources as template data: {e}"))?;
    parsed
        .execute_to_string(&data)
        .map_err(|e| format!("-o go-template: {e}"))
}

fn list_json<R: CliResource>(resources: &[R]) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": api::resources::API_VERSION,
        "kind": format!("{}List", R::KIND),
        "items": resources,
    })
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
        OutputFormat::Json => pretty_json(&list_json(resources)),
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

    #[test]
    fn get_takes_calicoctls_ps_custom_columns_and_templates() {
        assert_eq!("ps".parse(), Ok(GetOutput::Format(OutputFormat::Table)));
        assert_eq!(
            "custom-columns=name, cidr".parse(),
            Ok(GetOutput::CustomColumns(vec!["NAME".into(), "CIDR".into()]))
        );
        assert_eq!(
            "go-template={{.kind}}".parse(),
            Ok(GetOutput::GoTemplate("{{.kind}}".into()))
        );
        assert_eq!(
            "custom-columns=".parse::<GetOutput>(),
            Err("-o custom-columns= needs a value after the =".into())
        );
        let unknown = "jsonpath={.items}".parse::<GetOutput>().unwrap_err();
        assert!(
            unknown.starts_with("unknown output format \"jsonpath\""),
            "{unknown}"
        );
    }
}
