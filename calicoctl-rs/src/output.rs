//! Output formats (`-o`) and exit codes, shared by every command.

use std::fmt;
use std::str::FromStr;

/// Exit codes, as calicoctl users script against them.
pub mod exit {
    /// The command did what was asked and found nothing wrong.
    pub const OK: i32 = 0;
    /// The command ran and found a problem (e.g. `ipam check` found a leak).
    pub const PROBLEM: i32 = 1;
    /// The command line itself was wrong; nothing was done.
    pub const USAGE: i32 = 2;
}

/// How `get` and friends print resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    #[default]
    Table,
    Wide,
    Yaml,
    Json,
}

impl OutputFormat {
    const ALL: [(&'static str, OutputFormat); 4] = [
        ("table", OutputFormat::Table),
        ("wide", OutputFormat::Wide),
        ("yaml", OutputFormat::Yaml),
        ("json", OutputFormat::Json),
    ];
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown output format {0:?}: use one of table, wide, yaml, json")]
pub struct UnknownFormat(String);

impl FromStr for OutputFormat {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s))
            .map(|&(_, format)| format)
            .ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = Self::ALL.iter().find(|(_, v)| v == self).map(|(n, _)| *n);
        f.write_str(name.unwrap_or("table"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_parses_back_from_its_name() {
        for (_, format) in OutputFormat::ALL {
            assert_eq!(format.to_string().parse::<OutputFormat>(), Ok(format));
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
