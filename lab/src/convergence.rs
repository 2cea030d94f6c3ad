//! Pod-route convergence, the benchmark behind `tabby-convergence`: the time from
//! the start of a pod's CNI ADD on one node until the route to its block is in the
//! kernel of every other node, over many pods on a cluster of [`Cluster`] nodes.
//!
//! Each sample's pod needs a new block (the node has none left): after it is
//! measured, the pod is deleted (CNI DEL), IPAM's housekeeping releases the empty
//! block, and the withdrawal's convergence (release to gone everywhere) is
//! measured too. Kernel routes are watched with `ip -o monitor route` in every
//! node, each line timestamped as it arrives, so no polling interval hides in the
//! figures ([`RouteWatch`], which `lab::failover` uses too).
//!
//! Where the CNI ADD's time goes is read from the stages the plugins record
//! ([`stages`]). With a baseline (the plugins of another build, e.g. main's), the
//! samples alternate between the two plugin builds round by round on the same
//! cluster, so both meet the same load.
//!
//! Modes: the node-to-node mesh, or the mesh off and one route reflector every node
//! peers with (a global `BGPPeer`): `tabby-reflector` finding the nodes in etcd,
//! or BIRD with every node a configured client.

pub mod stages;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use api::datastore::Backend;
use api::resources::{
    BGPConfiguration, BGPConfigurationSpec, BGPPeer, BGPPeerSpec, Cidr, IPPool, IPPoolSpec,
};
use ipnet::IpNet;

use harness::Lab;
use harness::e2e::{Clients, Cluster};
use harness::peers::{BgpConfig, BgpPeer, Bird, Neighbor};
use harness::wait_until;

/// How the nodes exchange routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Mesh,
    /// One tabby-reflector (`--datastore-type etcdv3`), the mesh off.
    TabbyReflector,
    /// One BIRD route reflector, the mesh off.
    BirdReflector,
}

/// The pool's block size: every sample claims one block.
const BLOCK: u8 = 26;
const AS: u32 = 64512;
/// Longest any one convergence may take before the run fails.
const DEADLINE: Duration = Duration::from_secs(30);

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Report {
    pub mode: Mode,
    pub nodes: usize,
    /// With the workspace's plugins.
    pub workspace: Series,
    /// With the baseline's plugins, when there is one.
    pub baseline: Option<Series>,
    /// Where each workspace CNI ADD's time went.
    pub stages: Vec<stages::Stages>,
}

/// The measures of one plugin build.
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// CNI ADD start → the block's route in the last other node's kernel.
    pub add: Vec<Duration>,
    /// CNI ADD start → the block's route in the first other node's kernel.
    pub add_first: Vec<Duration>,
    /// Block released → its route gone from the last other node's kernel.
    pub withdraw: Vec<Duration>,
    /// How long the CNI ADD call itself took.
    pub cni_add: Vec<Duration>,
}

/// Runs `samples` pods on a cluster of `nodes` nodes in `mode`; with `baseline`
/// (a directory holding another build's tabby-cni and tabby-ipam), every other
/// round of `nodes` pods uses those plugins.
pub fn run(mode: Mode, nodes: usize, samples: usize, baseline: Option<&Path>) -> Result<Report> {
    let names: Vec<String> = (1..=nodes).map(|i| format!("n{i}")).collect();
    let mut builder = Lab::new(&format!("convergence_{mode:?}").to_lowercase())
        .subnet("a", "10.0.0.0/16")
        .router();
    for name in &names {
        builder = builder.node(name, "a");
    }
    if mode != Mode::Mesh {
        builder = builder.node("rr", "a");
    }
    let mut cluster = Cluster::new(builder.build()?)?;
    let mut pool = IPPoolSpec::new(Cidr("10.244.0.0/16".parse()?));
    pool.block_size = Some(BLOCK);
    cluster.create(&IPPool::new("default-ipv4-ippool", pool))?;
    if mode != Mode::Mesh {
        reflector_peer(&cluster)?;
    }
    let bird = match mode {
        Mode::Mesh => None,
        Mode::TabbyReflector => {
            let id = cluster.lab.node("rr").ipv4().context("rr has no IPv4")?;
            cluster.start_reflector("rr", AS, id, Clients::Datastore)?;
            cluster.wait_reflector_ready("rr", DEADLINE)?;
            None
        }
        Mode::BirdReflector => Some(bird_reflector(&cluster, &names)?),
    };
    for name in &names {
        cluster.start_agent_with(name, &["--log=warn"])?;
    }
    for name in &names {
        cluster.wait_ready(name, Duration::from_secs(120))?;
    }
    if let Some(bird) = &bird {
        for name in &names {
            bird.wait_established(cluster.lab.node(name).address(), DEADLINE)?;
        }
    }
    if mode == Mode::TabbyReflector {
        let clients: Vec<&str> = names.iter().map(String::as_str).collect();
        cluster.wait_reflector_established("rr", &clients, DEADLINE)?;
    }
    let watch = RouteWatch::start(&cluster, &names)?;
    let stage_file = tempfile::NamedTempFile::new()?;
    cluster.set_plugin_env(
        telemetry::stages::FILE_VAR,
        &stage_file.path().display().to_string(),
    );
    let own: PathBuf = harness::binaries::binary("tabby-cni")?
        .parent()
        .context("the plugins' directory")?
        .to_owned();
    let mut report = Report {
        mode,
        nodes,
        workspace: Series::default(),
        baseline: baseline.map(|_| Series::default()),
        stages: Vec::new(),
    };
    // The first pod (not counted) shows every watcher is live.
    for index in 0..=samples {
        let node = &names[index % names.len()];
        let others: Vec<&String> = names.iter().filter(|n| *n != node).collect();
        let from_baseline = baseline.filter(|_| (index / names.len()) % 2 == 1);
        cluster.use_plugins(from_baseline.unwrap_or(&own))?;
        let measured = sample(&cluster, &watch, node, &others, index)
            .with_context(|| format!("sample {index} on {node}"))?;
        let lines = telemetry::stages::read(stage_file.path())?;
        stage_file.as_file().set_len(0)?;
        if index == 0 {
            continue;
        }
        let series = match (from_baseline, &mut report.baseline) {
            (Some(_), Some(series)) => series,
            _ => {
                let (call, answered) = measured.call;
                report.stages.push(stages::of_call(&lines, call, answered));
                &mut report.workspace
            }
        };
        series.add.push(measured.add);
        series.add_first.push(measured.first);
        series.cni_add.push(measured.cni);
        series.withdraw.push(measured.withdraw);
    }
    Ok(report)
}

/// What one pod measured.
struct Sample {
    /// CNI ADD → the route on the first other node, and on every other node.
    first: Duration,
    add: Duration,
    /// The CNI ADD call, and its start and end in microseconds since the Unix
    /// epoch (the stages' clock).
    cni: Duration,
    call: (u64, u64),
    /// Block released → gone everywhere.
    withdraw: Duration,
}

/// One pod: its CNI ADD (the pod's namespace made before it starts), the route
/// everywhere, its CNI DEL and its block's release.
fn sample(
    cluster: &Cluster,
    watch: &RouteWatch,
    node: &str,
    others: &[&String],
    index: usize,
) -> Result<Sample> {
    let name = format!("c{index}");
    let netns = cluster.lab.pod(&name)?;
    let call = telemetry::stages::unix_micros(SystemTime::now());
    let start = Instant::now();
    let pod = cluster.add_sandbox(node, &name, &format!("ctr-{name}"), netns)?;
    let cni = start.elapsed();
    let answered = telemetry::stages::unix_micros(SystemTime::now());
    let block = IpNet::new(pod.ip, BLOCK)?.trunc();
    let (first, last) = watch.wait_all(others, block, true)?;
    let since_start = |at: Instant| at.saturating_duration_since(start);
    cluster.delete_pod(pod)?;
    let owner = node.to_owned();
    let released = Instant::now();
    let freed = cluster.datastore(async move |store: Arc<dyn Backend>| {
        ipam::Allocator::new(store, owner)
            .release_empty_blocks()
            .await
    })??;
    if freed.is_empty() {
        bail!("IPAM released no block after deleting the pod in {block}");
    }
    let (_, gone) = watch.wait_all(others, block, false)?;
    Ok(Sample {
        first: since_start(first),
        add: since_start(last),
        cni,
        call: (call, answered),
        withdraw: gone.saturating_duration_since(released),
    })
}

/// The mesh off, and every node peering with the reflector on `rr` (a global
/// `BGPPeer`).
fn reflector_peer(cluster: &Cluster) -> Result<()> {
    let bgp: BGPConfigurationSpec = serde_json::from_value(
        serde_json::json!({"nodeToNodeMeshEnabled": false, "asNumber": AS}),
    )?;
    cluster.create(&BGPConfiguration::new("default", bgp))?;
    let address = cluster.lab.node("rr").address().to_string();
    let peer: BGPPeerSpec =
        serde_json::from_value(serde_json::json!({"peerIP": address, "asNumber": AS}))?;
    cluster.create(&BGPPeer::new("reflector", peer))?;
    Ok(())
}

/// BIRD as the reflector on `rr`, every node of `names` its passive client.
fn bird_reflector(cluster: &Cluster, names: &[String]) -> Result<Bird> {
    let machine = cluster.lab.node("rr");
    let ipv4 = machine
        .ipv4()
        .context("the reflector has no IPv4 address")?;
    let mut config = BgpConfig::new(AS, ipv4).cluster_id(ipv4);
    for name in names {
        let address = cluster.lab.node(name).address();
        config = config.neighbor(Neighbor::new(address, AS).passive().rr_client());
    }
    Bird::start(machine, &config)
}

/// When a route was last added or deleted, per node and prefix, and its next hop.
type Seen = BTreeMap<(String, IpNet), (bool, Instant, IpAddr)>;

/// `ip -o monitor route` in every node, read by a thread each: when each route
/// through another node (tabby's, proto 84, or BIRD's) came and went.
#[derive(Debug)]
pub struct RouteWatch {
    seen: Arc<Mutex<Seen>>,
    monitors: Vec<Child>,
}

impl RouteWatch {
    pub fn start(cluster: &Cluster, names: &[String]) -> Result<Self> {
        let seen = Arc::new(Mutex::new(Seen::new()));
        let mut monitors = Vec::new();
        for name in names {
            let mut child = cluster
                .lab
                .node(name)
                .command("ip")
                .args(["-o", "monitor", "route"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .spawn()
                .with_context(|| format!("ip monitor route in {name}"))?;
            let stdout = child.stdout.take().context("ip monitor's stdout")?;
            monitors.push(child);
            let (seen, node) = (seen.clone(), name.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { return };
                    if let Some((prefix, via, added)) = parse(&line) {
                        let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                        seen.insert((node.clone(), prefix), (added, Instant::now(), via));
                    }
                }
            });
        }
        Ok(Self { seen, monitors })
    }

    /// Waits until every node of `nodes` has last seen `prefix` added (or
    /// deleted); returns when the first and the last of them saw it.
    fn wait_all(
        &self,
        nodes: &[&String],
        prefix: IpNet,
        added: bool,
    ) -> Result<(Instant, Instant)> {
        let what = if added { "added" } else { "deleted" };
        wait_until(DEADLINE, &format!("{prefix} {what} on every node"), || {
            let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            let mut times = Vec::new();
            for node in nodes {
                match seen.get(&(node.to_string(), prefix)) {
                    Some((state, at, _)) if *state == added => times.push(*at),
                    _ => return anyhow::Ok(Err(format!("not yet on {node}"))),
                }
            }
            let span = times.iter().min().zip(times.iter().max());
            anyhow::Ok(
                span.map(|(first, last)| (*first, *last))
                    .ok_or_else(|| "no node to wait for".to_owned()),
            )
        })
    }
}

impl RouteWatch {
    /// Waits, at most `cap`, until every node of `nodes` has seen each of
    /// `prefixes` deleted after `since`; returns when the last of them did, or
    /// `None` when `cap` passed first.
    pub fn wait_gone(
        &self,
        nodes: &[&String],
        prefixes: &BTreeSet<IpNet>,
        since: Instant,
        cap: Duration,
    ) -> Option<Instant> {
        loop {
            let last = {
                let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
                let mut last = Some(since);
                for node in nodes {
                    for prefix in prefixes {
                        last = match seen.get(&(node.to_string(), *prefix)) {
                            Some((false, at, _)) if *at >= since => last.map(|l| l.max(*at)),
                            _ => None,
                        };
                    }
                }
                last
            };
            if last.is_some() || since.elapsed() >= cap {
                return last;
            }
            // The times come from the monitors' lines, not from this loop.
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for RouteWatch {
    fn drop(&mut self) {
        for child in &mut self.monitors {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A route through another node (`<prefix> via <next hop> ... proto 84`, or
/// BIRD's `proto bird`), added or deleted.
fn parse(line: &str) -> Option<(IpNet, IpAddr, bool)> {
    let (added, rest) = match line.strip_prefix("Deleted ") {
        Some(rest) => (false, rest),
        None => (true, line),
    };
    if !rest.contains(" proto 84") && !rest.contains(" proto bird") {
        return None;
    }
    let mut words = rest.split_whitespace();
    let prefix = words.next()?.parse().ok()?;
    let via = words.skip_while(|w| *w != "via").nth(1)?.parse().ok()?;
    Some((prefix, via, added))
}

/// The machine's load averages (1, 5, 15 minutes), for a benchmark's report.
pub fn load_average() -> Result<String> {
    let text = std::fs::read_to_string("/proc/loadavg").context("reading /proc/loadavg")?;
    Ok(text
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" "))
}

/// The `p`-th percentile (nearest rank) of `samples`.
pub fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_lines_of_routes_through_other_nodes_are_parsed() {
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        let hop: IpAddr = "10.0.0.12".parse().unwrap();
        assert_eq!(
            parse("10.244.3.0/26 via 10.0.0.12 dev eth0 proto 84 "),
            Some((net("10.244.3.0/26"), hop, true))
        );
        assert_eq!(
            parse("Deleted 10.244.3.0/26 via 10.0.0.12 dev eth0 proto 84 "),
            Some((net("10.244.3.0/26"), hop, false))
        );
        assert_eq!(parse("blackhole 10.244.3.0/26 proto 84 "), None);
        assert_eq!(
            parse("10.250.2.0/24 via 10.0.0.12 dev eth0 proto bird metric 32 "),
            Some((net("10.250.2.0/24"), hop, true))
        );
        assert_eq!(
            parse("10.9.0.0/16 via 10.0.0.1 dev eth0 proto kernel "),
            None
        );
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&samples, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&samples, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&samples[..1], 99.0), Duration::from_millis(1));
    }
}
