//! One logging setup for every binary: a `tracing` filter from `--log` /
//! `TABBY_LOG` (`info`, `warn,bgp=debug`, ...), lines as JSON with `--log-json` /
//! `TABBY_LOG_JSON`, always to stderr (stdout is a protocol for the CNI plugins
//! and a report for `--once` runs), and also to a size-capped [`LogFile`] for the
//! CNI plugins, whose stderr is lost when a call succeeds. Spellings used before
//! are accepted and named in a deprecation warning once logging is up
//! ([`Renamed`]).

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::fmt::writer::MakeWriterExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

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
        self.init_with_file(binary, default, renamed, None)
    }

    /// [`LogFlags::init`], every line also appended to `file` (without colours).
    pub fn init_with_file(
        &self,
        binary: &str,
        default: &str,
        renamed: &Renamed,
        file: Option<File>,
    ) -> Result<(), LogError> {
        let filter = self.filter.as_deref().unwrap_or(default);
        let filter = EnvFilter::try_new(filter).map_err(|error| LogError {
            binary: binary.to_owned(),
            filter: filter.to_owned(),
            problem: error.to_string(),
        })?;
        let to_file = file.is_some();
        // With no file the second writer takes nothing.
        let writer = std::io::stderr.and(Mutex::new(file.map_or(Sink::Nowhere, Sink::File)));
        // A span's close is a line (with its busy and idle time) when the filter
        // lets the span through: the stages of `crate::stages` at debug.
        let logs = tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_ansi(!to_file)
            .with_span_events(FmtSpan::CLOSE);
        let logs: Box<dyn Layer<Registry> + Send + Sync> = if self.json {
            logs.json().boxed()
        } else {
            logs.boxed()
        };
        // The stage file, when asked for, takes every stage whatever the filter.
        let stages = crate::stages::layer(binary).map(crate::stages::StageLayer::filtered);
        // A second setup (tests that start a daemon twice) keeps the first.
        let _ = tracing_subscriber::registry()
            .with(logs.with_filter(filter))
            .with(stages)
            .try_init();
        renamed.warn();
        Ok(())
    }
}

/// The second writer: the log file, or none.
#[derive(Debug)]
enum Sink {
    Nowhere,
    File(File),
}

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Nowhere => Ok(buf.len()),
            Self::File(file) => file.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Nowhere => Ok(()),
            Self::File(file) => file.flush(),
        }
    }
}

/// A log file appended to by short-lived processes (many at once): when it has
/// grown past `max_bytes`, the process opening it rotates it first (`cni.log` to
/// `cni.log.1`, `.1` to `.2`, ... keeping `keep` old files), so the files never
/// hold much more than `(keep + 1) × max_bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFile {
    pub path: PathBuf,
    pub max_bytes: u64,
    pub keep: u32,
}

impl LogFile {
    /// Opens the file for appending, rotating it first when it is over the cap,
    /// and creating its directory.
    pub fn open(&self) -> std::io::Result<File> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let over = std::fs::metadata(&self.path).is_ok_and(|m| m.len() >= self.max_bytes);
        if over {
            self.rotate()?;
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
    }

    fn rotate(&self) -> std::io::Result<()> {
        let old = |n: u32| -> PathBuf {
            let mut name = self.path.clone().into_os_string();
            name.push(format!(".{n}"));
            name.into()
        };
        if self.keep == 0 {
            return std::fs::remove_file(&self.path);
        }
        for n in (1..self.keep).rev() {
            // Another process may have moved it already.
            let _ = std::fs::rename(old(n), old(n + 1));
        }
        match std::fs::rename(&self.path, old(1)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
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
    fn observability_a_log_file_over_its_cap_is_rotated_keeping_the_newest_old_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/cni.log");
        let file = LogFile {
            path: path.clone(),
            max_bytes: 10,
            keep: 2,
        };
        let read = |name: &str| std::fs::read_to_string(dir.path().join("logs").join(name)).ok();
        for line in ["first line\n", "second line\n", "third\n", "fourth line\n"] {
            use std::io::Write;
            file.open().unwrap().write_all(line.as_bytes()).unwrap();
        }
        // "fourth line" was appended to "third" (under the cap when opened).
        assert_eq!(read("cni.log").as_deref(), Some("third\nfourth line\n"));
        assert_eq!(read("cni.log.1").as_deref(), Some("second line\n"));
        assert_eq!(read("cni.log.2").as_deref(), Some("first line\n"));
        assert_eq!(read("cni.log.3"), None);
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
