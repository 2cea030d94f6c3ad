//! One logging setup for every binary: a `tracing` filter from `--log` /
//! `TABBY_LOG` (`info`, `warn,bgp=debug`, ...), lines as JSON with `--log-json` /
//! `TABBY_LOG_JSON`, always to stderr (stdout is a protocol for the CNI plugins
//! and a report for `--once` runs). Spellings used before are accepted and named
//! in a deprecation warning once logging is up ([`Renamed`]).

use std::ffi::OsString;

use tracing_subscriber::EnvFilter;

pub const LOG_VAR: &str = "TABBY_LOG";
pub const LOG_JSON_VAR: &str = "TABBY_LOG_JSON";

/// The logging flags every daemon flattens into its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct LogFlags {
    /// Log filter: error, warn, info, debug, trace, or per module
    /// (info,bgp=debug) [default: info]
    #[arg(long = "log", env = LOG_VAR, value_name = "FILTER", alias = "log-level")]
    pub filter: Option<String>,
    /// Log lines as JSON
    #[arg(long = "log-json", env = LOG_JSON_VAR)]
    pub json: bool,
}

impl LogFlags {
    /// The flags from the environment alone, for binaries without a command line
    /// of their own (the CNI plugins).
    pub fn from_env() -> Self {
        let json = std::env::var(LOG_JSON_VAR)
            .is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false" | "no" | "off"));
        Self {
            filter: std::env::var(LOG_VAR).ok(),
            json,
        }
    }

    /// Starts logging for `binary` with `default` as the filter when none is
    /// given, then warns about the old spellings `renamed` found.
    pub fn init(&self, binary: &str, default: &str, renamed: &Renamed) -> Result<(), LogError> {
        let filter = self.filter.as_deref().unwrap_or(default);
        let filter = EnvFilter::try_new(filter).map_err(|error| LogError {
            binary: binary.to_owned(),
            filter: filter.to_owned(),
            problem: error.to_string(),
        })?;
        let logs = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(filter);
        // A second setup (tests that start a daemon twice) keeps the first.
        let _ = if self.json {
            logs.json().try_init()
        } else {
            logs.try_init()
        };
        renamed.warn();
        Ok(())
    }
}

/// A log filter that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{binary}: --log ({LOG_VAR}) {filter:?}: {problem}")]
pub struct LogError {
    pub binary: String,
    pub filter: String,
    pub problem: String,
}

/// Old spellings of flags and variables still accepted: each use is remembered and
/// named in a warning once logging is up.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Renamed {
    notes: Vec<String>,
}

impl Renamed {
    /// The value of the old variable `old` when the new one, `new`, is unset.
    pub fn var(&mut self, old: &str, new: &str) -> Option<String> {
        self.var_in(old, new, |name| std::env::var_os(name))
    }

    /// [`Renamed::var`] over another environment (tests).
    pub fn var_in(
        &mut self,
        old: &str,
        new: &str,
        env: impl Fn(&str) -> Option<OsString>,
    ) -> Option<String> {
        if env(new).is_some() {
            return None;
        }
        let value = env(old)?.into_string().ok()?;
        self.notes.push(format!(
            "{old} is deprecated and will be removed: set {new}"
        ));
        Some(value)
    }

    /// Notes the old flag `--old` on the command line `args` (clap takes it as an
    /// alias of `--new`).
    pub fn flag(&mut self, args: &[OsString], old: &str, new: &str) {
        let given = args.iter().any(|arg| {
            arg.to_str().is_some_and(|arg| {
                arg.strip_prefix("--")
                    .and_then(|a| a.strip_prefix(old))
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('='))
            })
        });
        if given {
            self.notes.push(format!(
                "--{old} is deprecated and will be removed: use --{new}"
            ));
        }
    }

    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    fn warn(&self) {
        for note in &self.notes {
            tracing::warn!("{note}");
        }
    }
}

/// The filter and JSON switch for a daemon with `flags`, taking the old
/// `TABBY_LOG_LEVEL` (and `--log-level`) as deprecated spellings.
pub fn with_renames(mut flags: LogFlags, args: &[OsString], renamed: &mut Renamed) -> LogFlags {
    renamed.flag(args, "log-level", "log");
    if flags.filter.is_none() {
        flags.filter = renamed.var("TABBY_LOG_LEVEL", LOG_VAR);
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_variable_counts_only_when_the_new_one_is_unset_and_is_named() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        let mut renamed = Renamed::default();
        let old_only = env(&[("TABBY_LOG_LEVEL", "debug")]);
        assert_eq!(
            renamed.var_in("TABBY_LOG_LEVEL", "TABBY_LOG", old_only),
            Some("debug".into())
        );
        assert_eq!(
            renamed.notes(),
            ["TABBY_LOG_LEVEL is deprecated and will be removed: set TABBY_LOG"]
        );
        let mut renamed = Renamed::default();
        let both = env(&[("TABBY_LOG_LEVEL", "debug"), ("TABBY_LOG", "warn")]);
        assert_eq!(renamed.var_in("TABBY_LOG_LEVEL", "TABBY_LOG", both), None);
        assert!(renamed.notes().is_empty());
    }

    #[test]
    fn an_old_flag_on_the_command_line_is_named() {
        let args: Vec<OsString> = ["tabby-agent", "--log-level=debug"]
            .iter()
            .map(OsString::from)
            .collect();
        let mut renamed = Renamed::default();
        renamed.flag(&args, "log-level", "log");
        renamed.flag(&args, "metrics-listen", "metrics-address");
        assert_eq!(
            renamed.notes(),
            ["--log-level is deprecated and will be removed: use --log"]
        );
    }

    #[test]
    fn a_filter_that_does_not_parse_names_the_flag_and_the_value() {
        let flags = LogFlags {
            filter: Some("info,bgp=loud".into()),
            json: false,
        };
        let error = flags
            .init("tabby-test", "info", &Renamed::default())
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("tabby-test: --log (TABBY_LOG) \"info,bgp=loud\": "),
            "{error}"
        );
    }
}
