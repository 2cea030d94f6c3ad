//! The plugins' logging, set up from the network config before anything else:
//! a successful call's stderr is lost, so, as Calico's plugins do, every line
//! also goes to a size-capped file the config names (Calico's keys):
//!
//! ```json
//! "log_file_path": "/var/log/tabby/cni.log",   (the default; "" for no file)
//! "log_file_max_size": 100,                    (MB before it is rotated)
//! "log_file_max_count": 10,                    (rotated files kept)
//! "log_level": "info"                          (a filter; TABBY_LOG wins)
//! ```
//!
//! `TABBY_CNI_LOG_FILE` in the plugin's environment wins over `log_file_path`
//! (tests set it empty, so the plugins they run write nothing on the host).

use std::io::{Cursor, Read};

use serde_json::Value;
use telemetry::{LogFile, LogFlags};

pub const DEFAULT_PATH: &str = "/var/log/tabby/cni.log";
pub const PATH_VAR: &str = "TABBY_CNI_LOG_FILE";
const DEFAULT_MAX_MB: u64 = 100;
const DEFAULT_COUNT: u32 = 10;

/// What the config says about logging, and what it says wrongly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub file: Option<LogFile>,
    pub level: Option<String>,
    pub problems: Vec<String>,
}

/// The logging keys of `config` (stdin as given: a config that is no JSON
/// object gives the defaults, and the call itself reports it), the file's path
/// `path_var` when that is set.
pub fn settings(config: &[u8], path_var: Option<String>) -> Settings {
    let value: Value = serde_json::from_slice(config).unwrap_or(Value::Null);
    let mut problems = Vec::new();
    let mut number = |key: &str, default: u64| match value.get(key) {
        None | Some(Value::Null) => default,
        Some(v) => v.as_u64().unwrap_or_else(|| {
            problems.push(format!("{key}: {v} is not a whole number; using {default}"));
            default
        }),
    };
    let max_mb = number("log_file_max_size", DEFAULT_MAX_MB);
    let keep = number("log_file_max_count", DEFAULT_COUNT.into());
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    let path = path_var
        .or_else(|| text("log_file_path"))
        .unwrap_or_else(|| DEFAULT_PATH.to_owned());
    let file = (!path.is_empty()).then(|| LogFile {
        path: path.into(),
        max_bytes: max_mb.saturating_mul(1024 * 1024),
        keep: u32::try_from(keep).unwrap_or(u32::MAX),
    });
    Settings {
        file,
        level: text("log_level"),
        problems,
    }
}

/// Reads stdin, starts `binary`'s logging as its config says, logs the call,
/// and gives stdin back for the plugin to read. A log file that cannot be
/// opened is named on stderr and the call goes on without it.
pub fn start(binary: &str, mut stdin: impl Read) -> Replay {
    let began = std::time::SystemTime::now();
    let mut raw = Vec::new();
    let read = stdin.read_to_end(&mut raw);
    let settings = settings(&raw, std::env::var(PATH_VAR).ok());
    let mut flags = LogFlags::from_env();
    flags.filter = flags.filter.or(settings.level);
    let (file, unopened) = match &settings.file {
        None => (None, None),
        Some(log) => match log.open() {
            Ok(file) => (Some(file), None),
            Err(error) => (None, Some(format!("{}: {error}", log.path().display()))),
        },
    };
    let default = if file.is_some() { "info" } else { "warn" };
    if let Err(error) = flags.init_with_file(binary, default, &Default::default(), file) {
        eprintln!("{error}");
    }
    if let Some(unopened) = unopened {
        tracing::warn!("log file not written: {unopened}");
    }
    for problem in settings.problems {
        tracing::warn!("{problem}");
    }
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    tracing::info!(
        plugin = binary,
        pid = std::process::id(),
        command = var("CNI_COMMAND"),
        container = var("CNI_CONTAINERID"),
        netns = var("CNI_NETNS"),
        ifname = var("CNI_IFNAME"),
        "CNI call"
    );
    telemetry::stages::record(telemetry::stages::LOGGING, began);
    Replay(read.map(|_| Cursor::new(raw)).map_err(Some))
}

/// Stdin as it was read: its bytes, or the error reading it.
#[derive(Debug)]
pub struct Replay(Result<Cursor<Vec<u8>>, Option<std::io::Error>>);

impl Read for Replay {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match &mut self.0 {
            Ok(bytes) => bytes.read(buf),
            Err(error) => Err(error
                .take()
                .unwrap_or_else(|| std::io::Error::other("reading stdin failed"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observability_the_log_file_is_calicos_default_unless_the_config_names_another_or_none() {
        let defaults = settings(br#"{"cniVersion": "1.0.0"}"#, None);
        assert_eq!(
            defaults.file,
            Some(LogFile {
                path: DEFAULT_PATH.into(),
                max_bytes: 100 * 1024 * 1024,
                keep: 10,
            })
        );
        let chosen = settings(
            br#"{"log_file_path": "/tmp/x.log", "log_file_max_size": 1, "log_file_max_count": 2, "log_level": "debug"}"#,
            None,
        );
        assert_eq!(
            (chosen.file.unwrap().max_bytes, chosen.level.as_deref()),
            (1024 * 1024, Some("debug"))
        );
        assert_eq!(settings(br#"{"log_file_path": ""}"#, None).file, None);
        let overridden = settings(br#"{"log_file_path": "/tmp/x.log"}"#, Some(String::new()));
        assert_eq!(overridden.file, None);
        let wrong = settings(br#"{"log_file_max_size": "big"}"#, None);
        assert_eq!(
            wrong.problems,
            ["log_file_max_size: \"big\" is not a whole number; using 100"]
        );
    }
}
