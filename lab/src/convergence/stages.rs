//! Where a CNI ADD's time goes, stage by stage: the spans tabby-cni and
//! tabby-ipam write to the stage file (`telemetry::stages`), turned into one
//! duration per stage per call, and a p50 / p99 table over the calls.
//!
//! Besides the spans, three stages are measured between processes: each plugin's
//! start (from its caller's spawn, or tabby-cni's delegation, to the first line
//! of its `main`: `nsenter`, exec, loading) and tabby-cni's exit (from its last
//! span until its caller has the answer). Spans nest (`cni.ipam` holds all of
//! tabby-ipam; `ipam.write` the datastore writes in it); spans of one name in one
//! call add up (two reads at once count twice).

use std::collections::BTreeMap;
use std::time::Duration;

use telemetry::stages::Stage;

use telemetry::stages::LOGGING as STARTED;

/// One call's stages: name → time spent (spans of one name added up), in the
/// order they began.
pub type Stages = Vec<(String, Duration)>;

/// The stages of one call that began at `call_us` and whose answer was read at
/// `answered_us` (microseconds since the Unix epoch), from every line written
/// since (`lines` may hold other calls' too: only those inside the call count).
pub fn of_call(lines: &[Stage], call_us: u64, answered_us: u64) -> Stages {
    let inside: Vec<&Stage> = lines
        .iter()
        .filter(|s| s.start_us >= call_us && s.end_us <= answered_us)
        .collect();
    let mut firsts: BTreeMap<String, u64> = BTreeMap::new();
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    let mut add = |name: String, start: u64, micros: u64| {
        let first = firsts.entry(name.clone()).or_insert(start);
        *first = (*first).min(start);
        *totals.entry(name).or_default() += micros;
    };
    for stage in &inside {
        let name = if stage.stage == STARTED {
            format!("{}: {STARTED}", stage.process)
        } else {
            stage.stage.clone()
        };
        add(name, stage.start_us, stage.micros());
    }
    let began = |process: &str| {
        inside
            .iter()
            .filter(|s| s.process == process && s.stage == STARTED)
            .map(|s| s.start_us)
            .min()
    };
    if let Some(cni) = began("tabby-cni") {
        add("tabby-cni: process start".into(), call_us, cni - call_us);
    }
    let delegated = inside
        .iter()
        .find(|s| s.process == "tabby-cni" && s.stage == "cni.ipam");
    if let (Some(ipam), Some(delegated)) = (began("tabby-ipam"), delegated) {
        let from = delegated.start_us.min(ipam);
        add("tabby-ipam: process start".into(), from, ipam - from);
    }
    let cni_end = inside
        .iter()
        .filter(|s| s.process == "tabby-cni")
        .map(|s| s.end_us)
        .max();
    if let Some(end) = cni_end {
        add("tabby-cni: exit".into(), end, answered_us - end);
    }
    let mut stages: Vec<(u64, String, Duration)> = totals
        .into_iter()
        .map(|(name, micros)| (firsts[&name], name, Duration::from_micros(micros)))
        .collect();
    stages.sort();
    stages.into_iter().map(|(_, name, d)| (name, d)).collect()
}

/// Per stage over many calls: its name and its durations (from the calls that
/// have it), stages in the order they first appear.
pub fn table(calls: &[Stages]) -> Vec<(String, Vec<Duration>)> {
    let mut order: Vec<String> = Vec::new();
    for call in calls {
        for (name, _) in call {
            if !order.contains(name) {
                order.push(name.clone());
            }
        }
    }
    order
        .into_iter()
        .map(|name| {
            let durations = calls
                .iter()
                .filter_map(|call| call.iter().find(|(n, _)| *n == name).map(|(_, d)| *d))
                .collect();
            (name, durations)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(process: &str, stage: &str, start_us: u64, end_us: u64) -> Stage {
        Stage {
            process: process.into(),
            pid: 1,
            stage: stage.into(),
            start_us,
            end_us,
        }
    }

    #[test]
    fn observability_a_calls_stages_include_process_starts_and_exit_and_add_up_repeats() {
        let lines = [
            stage("tabby-cni", STARTED, 1_100, 1_300),
            stage("tabby-cni", "cni.ipam", 1_400, 5_000),
            stage("tabby-ipam", STARTED, 2_000, 2_100),
            stage("tabby-ipam", "datastore.get IPPool", 3_000, 3_500),
            stage("tabby-ipam", "datastore.get IPPool", 3_000, 3_700),
            stage("tabby-cni", "cni.veth", 5_000, 6_000),
            // Another call's.
            stage("tabby-cni", "cni.veth", 9_000, 9_500),
        ];
        let ms = |us: u64| Duration::from_micros(us);
        let call = of_call(&lines, 1_000, 7_000);
        assert_eq!(
            call,
            vec![
                ("tabby-cni: process start".to_owned(), ms(100)),
                (format!("tabby-cni: {STARTED}"), ms(200)),
                ("cni.ipam".to_owned(), ms(3_600)),
                ("tabby-ipam: process start".to_owned(), ms(600)),
                (format!("tabby-ipam: {STARTED}"), ms(100)),
                ("datastore.get IPPool".to_owned(), ms(1_200)),
                ("cni.veth".to_owned(), ms(1_000)),
                ("tabby-cni: exit".to_owned(), ms(1_000)),
            ]
        );
        let rows = table(&[call.clone(), call[..2].to_vec()]);
        assert_eq!(
            rows[0],
            ("tabby-cni: process start".to_owned(), vec![ms(100); 2])
        );
        assert_eq!(rows[2].1.len(), 1);
    }
}
