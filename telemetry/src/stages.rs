//! Where a short-lived process spends its time, stage by stage.
//!
//! The stages are `tracing` spans at debug level with the target [`TARGET`], named
//! `<area>.<stage>` (`ipam.write`, `datastore.update`; a span's `kind` field, when
//! it has one, is added to the name: `datastore.update IPAMBlock`). An operator
//! sees them in the logs with `TABBY_LOG=info,stage=debug` (each span's close is
//! a line with its busy and idle time). A benchmark sets [`FILE_VAR`] to a file:
//! every stage that closes is then appended there as one JSON line ([`Stage`])
//! with wall-clock start and end,
//! whatever the log filter, so the stages of several processes (tabby-cni and the
//! tabby-ipam it runs) line up on one clock. `tabby-convergence` reads them back.
//!
//! Lines are appended with one `write` each (`O_APPEND`), so processes writing to
//! one file at once do not tear each other's lines.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tracing::Subscriber;
use tracing::span::{Attributes, Id};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The target of every stage span: `debug_span!(target: "stage", "ipam.write")`.
pub const TARGET: &str = "stage";
/// Names the file stages are appended to; unset, nothing is recorded.
pub const FILE_VAR: &str = "TABBY_STAGES_FILE";
/// The stage a process records from the first line of its `main` until its
/// logging is set up ([`record`]).
pub const LOGGING: &str = "process.logging";

/// One stage of one process, as written to the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    pub process: String,
    pub pid: u32,
    pub stage: String,
    /// Microseconds since the Unix epoch.
    pub start_us: u64,
    pub end_us: u64,
}

impl Stage {
    pub fn micros(&self) -> u64 {
        self.end_us.saturating_sub(self.start_us)
    }
}

/// This process's stage file, once [`layer`] opened one (for [`record`]).
static SINK: OnceLock<Arc<Sink>> = OnceLock::new();

/// Where one process's stages go.
#[derive(Debug)]
struct Sink {
    process: String,
    file: Mutex<File>,
}

impl Sink {
    fn write(&self, stage: &str, start_us: u64, end_us: u64) {
        let stage = Stage {
            process: self.process.clone(),
            pid: std::process::id(),
            stage: stage.to_owned(),
            start_us,
            end_us,
        };
        let Ok(mut line) = serde_json::to_vec(&stage) else {
            return;
        };
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        // A full disk loses a benchmark's figure, not the process's work.
        let _ = file.write_all(&line);
    }
}

/// Microseconds since the Unix epoch of `at`.
pub fn unix_micros(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The layer recording `process`'s spans, when [`FILE_VAR`] names a file that
/// opens (one that does not is named on stderr: a benchmark's mistake, never a
/// reason for the process to fail).
pub fn layer(process: &str) -> Option<StageLayer> {
    let path = std::env::var_os(FILE_VAR).filter(|p| !p.is_empty())?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path);
    match file {
        Ok(file) => {
            let layer = StageLayer::new(process, file);
            let _ = SINK.set(layer.sink.clone());
            Some(layer)
        }
        Err(error) => {
            eprintln!(
                "{process}: {FILE_VAR} {}: {error}",
                Path::new(&path).display()
            );
            None
        }
    }
}

/// Records a stage that no span covered (what ran before logging was set up),
/// from `start` until now.
pub fn record(stage: &str, start: SystemTime) {
    if let Some(sink) = SINK.get() {
        sink.write(stage, unix_micros(start), unix_micros(SystemTime::now()));
    }
}

/// Every stage in the file at `path`; lines that do not parse are skipped.
pub fn read(path: &Path) -> std::io::Result<Vec<Stage>> {
    Ok(std::fs::read_to_string(path)?
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect())
}

/// Appends every span that closes to a file; see [`layer`].
#[derive(Debug, Clone)]
pub struct StageLayer {
    sink: Arc<Sink>,
}

impl StageLayer {
    /// The layer taking only stage spans, whatever the log filter.
    pub fn filtered<S>(self) -> impl Layer<S>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        self.with_filter(tracing_subscriber::filter::filter_fn(|m| {
            m.is_span() && m.target() == TARGET
        }))
    }

    /// `process`'s spans, appended to `file`.
    pub fn new(process: &str, file: File) -> Self {
        Self {
            sink: Arc::new(Sink {
                process: process.to_owned(),
                file: Mutex::new(file),
            }),
        }
    }
}

/// When a span was created, and its stage's name.
struct Started(u64, String);

/// A span's `kind` field.
#[derive(Default)]
struct KindField(Option<String>);

impl tracing::field::Visit for KindField {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "kind" {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "kind" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

impl<S> Layer<S> for StageLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut kind = KindField::default();
        attributes.record(&mut kind);
        let name = match kind.0 {
            Some(kind) => format!("{} {kind}", attributes.metadata().name()),
            None => attributes.metadata().name().to_owned(),
        };
        if let Some(span) = ctx.span(id) {
            span.extensions_mut()
                .insert(Started(unix_micros(SystemTime::now()), name));
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        if let Some(Started(start, name)) = span.extensions().get::<Started>() {
            self.sink
                .write(name, *start, unix_micros(SystemTime::now()));
        }
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[test]
    fn observability_every_closed_span_is_one_line_with_its_wall_clock_times() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stages.jsonl");
        let file = File::create(&path).unwrap();
        let subscriber =
            tracing_subscriber::registry().with(StageLayer::new("tabby-test", file).filtered());
        let before = unix_micros(SystemTime::now());
        tracing::subscriber::with_default(subscriber, || {
            let outer = tracing::debug_span!(target: "stage", "test.outer").entered();
            // Not a stage: another target.
            let _other = tracing::debug_span!("Connection").entered();
            tracing::debug_span!(target: "stage", "test.inner", kind = "Block").in_scope(|| {
                std::thread::sleep(std::time::Duration::from_millis(2));
            });
            drop(outer);
        });
        let after = unix_micros(SystemTime::now());
        std::fs::write(&path, {
            let mut text = std::fs::read_to_string(&path).unwrap();
            text.push_str("not a stage\n");
            text
        })
        .unwrap();
        let stages = read(&path).unwrap();
        let names: Vec<&str> = stages.iter().map(|s| s.stage.as_str()).collect();
        assert_eq!(names, ["test.inner Block", "test.outer"]);
        let (inner, outer) = (&stages[0], &stages[1]);
        assert!(inner.micros() >= 2000, "{inner:?}");
        assert!(before <= outer.start_us && outer.start_us <= inner.start_us);
        assert!(inner.end_us <= outer.end_us && outer.end_us <= after);
        assert_eq!(
            (outer.process.as_str(), outer.pid),
            ("tabby-test", std::process::id())
        );
    }
}
