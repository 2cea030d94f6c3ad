//! What every binary shows about itself: `tabby_build_info` and the `process_*`
//! metrics Prometheus' own client libraries export, read from `/proc` at each
//! scrape.

use std::fmt;

use crate::metrics::{Collector, DescriptorEncoder, Scrape};

/// The collector [`crate::metrics::registry`] registers for `binary`.
#[derive(Debug)]
pub struct Process {
    pub binary: &'static str,
}

impl Collector for Process {
    fn encode(&self, encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let mut page = Scrape::new(encoder);
        page.gauges(
            "tabby_build_info",
            "Always 1: which binary and version this process runs.",
            [(
                [
                    ("binary", self.binary),
                    ("version", env!("CARGO_PKG_VERSION")),
                ],
                1_u64,
            )],
        )?;
        let figures = match Figures::read() {
            Ok(figures) => figures,
            Err(error) => {
                tracing::debug!(%error, "reading /proc/self for the process metrics");
                return Ok(());
            }
        };
        page.counter(
            "process_cpu_seconds_total",
            "User and system CPU time spent.",
            figures.cpu_seconds,
        )?;
        page.gauge(
            "process_resident_memory_bytes",
            "Resident memory size.",
            figures.resident_bytes,
        )?;
        page.gauge(
            "process_virtual_memory_bytes",
            "Virtual memory size.",
            figures.virtual_bytes,
        )?;
        page.gauge(
            "process_open_fds",
            "Open file descriptors.",
            figures.open_fds,
        )?;
        page.gauge(
            "process_max_fds",
            "The limit on open file descriptors.",
            figures.max_fds,
        )?;
        page.gauge(
            "process_start_time_seconds",
            "When the process started (Unix time).",
            figures.start_time_seconds,
        )
    }
}

/// `/proc` counts CPU time in USER_HZ ticks, which Linux fixes at 100 for every
/// architecture's user-visible interfaces.
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug, Clone, PartialEq)]
struct Figures {
    cpu_seconds: f64,
    resident_bytes: u64,
    virtual_bytes: u64,
    open_fds: usize,
    max_fds: u64,
    start_time_seconds: f64,
}

impl Figures {
    fn read() -> std::io::Result<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat")?;
        let status = std::fs::read_to_string("/proc/self/status")?;
        let limits = std::fs::read_to_string("/proc/self/limits")?;
        let boot = std::fs::read_to_string("/proc/stat")?;
        let open_fds = std::fs::read_dir("/proc/self/fd")?.count();
        parse(&stat, &status, &limits, &boot, open_fds).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "unexpected /proc format")
        })
    }
}

fn parse(stat: &str, status: &str, limits: &str, boot: &str, open_fds: usize) -> Option<Figures> {
    // The command name, in parentheses, may hold spaces: fields count after it.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    let ticks = |n: u64| n as f64 / TICKS_PER_SECOND;
    let kilobytes = |key: &str| {
        let line = status.lines().find_map(|l| l.strip_prefix(key))?;
        Some(line.split_whitespace().next()?.parse::<u64>().ok()? * 1024)
    };
    let max_fds = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let booted: u64 = boot
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(Figures {
        cpu_seconds: ticks(field(14)? + field(15)?),
        resident_bytes: kilobytes("VmRSS:")?,
        virtual_bytes: kilobytes("VmSize:")?,
        open_fds,
        max_fds,
        start_time_seconds: booted as f64 + ticks(field(22)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_figures_come_from_the_proc_files_with_a_spaced_command_name() {
        let stat = "4242 (tabby agent) S 1 4242 4242 0 -1 4194560 900 0 0 0 150 50 0 0 20 0 \
                    8 0 123400 26000000 2048 18446744073709551615";
        let status = "Name:\ttabby\nVmSize:\t   25000 kB\nVmRSS:\t    8192 kB\n";
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        let boot = "cpu  1 2 3\nbtime 1700000000\nprocesses 9\n";
        assert_eq!(
            parse(stat, status, limits, boot, 7),
            Some(Figures {
                cpu_seconds: 2.0,
                resident_bytes: 8192 * 1024,
                virtual_bytes: 25000 * 1024,
                open_fds: 7,
                max_fds: 1024,
                start_time_seconds: 1_700_001_234.0,
            })
        );
    }

    #[test]
    fn this_process_reads_its_own_figures() {
        let figures = Figures::read().unwrap();
        assert!(figures.resident_bytes > 0 && figures.open_fds > 0 && figures.max_fds > 0);
        assert!(figures.start_time_seconds > 1_600_000_000.0);
    }
}
