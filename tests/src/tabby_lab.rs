//! `tabby-lab`: a real tabby cluster on this machine, built with [`crate::e2e`]:
//! nodes in network namespaces (on one subnet, or two behind a router), etcd in
//! the router's namespace, a `tabby-agent` per node, a default pool, and pods
//! attached by `tabby-cni` with `tabby-ipam`. [`Lab::up`] builds it and waits for
//! it to converge; [`Lab::report`] reads back what it did (BGP sessions, routes,
//! pod-to-pod reachability); dropping it removes everything.
//!
//! Not here yet (see the lab issue): a top-of-rack router and route reflectors in
//! the lab, and IPIP, which this host's kernel lacks (the QEMU harness has it:
//! `scripts/test -E 'test(/ipip/)'`).

use std::fmt::{self, Write as _};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use api::resources::{Cidr, EncapsulationMode, IPPool, IPPoolSpec};
use proto::bgp::bgp_status_client::BgpStatusClient;
use proto::bgp::{ListPeersRequest, SessionState};

use crate::e2e::{Cluster, Pod};

/// How long agents get to become ready, and routes to match the datastore.
const READY: Duration = Duration::from_secs(90);
const CONVERGED: Duration = Duration::from_secs(60);
/// The pool every pod's address comes from.
pub const POOL: &str = "10.244.0.0/16";

/// How pod traffic crosses between nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Plain routes: every node on one subnet.
    Direct,
    /// VXLAN between every pair of nodes (two subnets).
    Vxlan,
    /// Direct within a subnet, VXLAN across (two subnets).
    Crosssubnet,
    /// IPIP tunl0: needs a kernel with ipip, which this host lacks.
    Ipip,
}

/// What to build.
#[derive(Debug, Clone)]
pub struct Options {
    pub nodes: usize,
    pub mode: Mode,
    pub pods_per_node: usize,
}

/// A running lab.
#[derive(Debug)]
pub struct Lab {
    pub cluster: Cluster,
    pub pods: Vec<Pod>,
    pub options: Options,
    /// From the first agent's start until every node's routes matched.
    pub convergence: Duration,
    nodes: Vec<String>,
}

impl Lab {
    /// Builds the cluster and waits until every node's kernel routes are what the
    /// datastore implies. `name` names its namespaces and logs.
    pub fn up(name: &str, options: Options) -> Result<Self> {
        if !(2..=8).contains(&options.nodes) {
            bail!(
                "--nodes {}: between 2 and 8 fit this machine",
                options.nodes
            );
        }
        if !(1..=4).contains(&options.pods_per_node) {
            bail!("--pods {}: between 1 and 4 per node", options.pods_per_node);
        }
        let vxlan = match options.mode {
            Mode::Direct => EncapsulationMode::Never,
            Mode::Vxlan => EncapsulationMode::Always,
            Mode::Crosssubnet => EncapsulationMode::CrossSubnet,
            Mode::Ipip => bail!(
                "--mode ipip: this host's kernel has no IPIP (CONFIG_NET_IPIP is off); \
                 tabby's IPIP dataplane runs inside a QEMU VM with Debian's kernel: \
                 scripts/test -E 'test(/ipip/)'"
            ),
        };
        let nodes: Vec<String> = (1..=options.nodes).map(|i| format!("n{i}")).collect();
        // Direct routes need one subnet; the other modes put the second half of
        // the nodes behind the router.
        let split = match options.mode {
            Mode::Direct => options.nodes,
            _ => options.nodes.div_ceil(2),
        };
        let mut builder = crate::Lab::new(name)
            .subnet("a", "10.0.1.0/24")
            .subnet("b", "10.0.2.0/24");
        for (i, node) in nodes.iter().enumerate() {
            builder = builder.node(node, if i < split { "a" } else { "b" });
        }
        let mut cluster = Cluster::new(builder.build()?)?;
        // calicoctl-rs reads etcd's default prefix.
        cluster.set_prefix(api::datastore::ETCD_DEFAULT_PREFIX);
        let mut spec = IPPoolSpec::new(Cidr(POOL.parse()?));
        spec.vxlan_mode = vxlan;
        cluster.create(&IPPool::new("default-ipv4-ippool", spec))?;

        let started = Instant::now();
        for node in &nodes {
            cluster.start_agent(node)?;
        }
        for node in &nodes {
            cluster.wait_ready(node, READY)?;
        }
        let mut pods = Vec::new();
        for node in &nodes {
            for i in 1..=options.pods_per_node {
                pods.push(cluster.add_pod(node, &format!("{node}p{i}"))?);
            }
        }
        let names: Vec<&str> = nodes.iter().map(String::as_str).collect();
        cluster.wait_for_routes(&names, &pods, CONVERGED)?;
        Ok(Self {
            convergence: started.elapsed(),
            cluster,
            pods,
            options,
            nodes,
        })
    }

    /// Sessions, routes and reachability, read now.
    pub fn report(&self) -> Result<Report> {
        let mut nodes = Vec::new();
        for name in &self.nodes {
            let node = self.cluster.lab.node(name);
            let socket = self.cluster.socket(name);
            let peers = crate::runtime().block_on(async {
                let channel = proto::client::connect_unix(&socket).await?;
                let peers = BgpStatusClient::new(channel)
                    .list_peers(ListPeersRequest {})
                    .await?
                    .into_inner();
                anyhow::Ok(peers.peers)
            })?;
            let established = peers
                .iter()
                .filter(|p| p.state() == SessionState::Established)
                .count();
            let routes = crate::routes::routes(node, "84")?;
            nodes.push(NodeLine {
                name: name.clone(),
                address: node.address().to_string(),
                subnet: node.subnet().to_owned(),
                established,
                peers: peers.len(),
                routes,
            });
        }
        let reachable = self
            .pods
            .iter()
            .map(|from| {
                self.pods
                    .iter()
                    .map(|to| from.netns.ping(to.ip).is_ok())
                    .collect()
            })
            .collect();
        Ok(Report {
            mode: self.options.mode,
            convergence: self.convergence,
            nodes,
            pods: self
                .pods
                .iter()
                .map(|p| (p.name.clone(), p.node.clone(), p.ip.to_string()))
                .collect(),
            reachable,
        })
    }

    /// How to look at the running lab from a shell.
    pub fn how_to_reach(&self) -> String {
        let router = self
            .cluster
            .lab
            .router()
            .map(|r| r.netns().name().to_owned());
        let router = router.unwrap_or_default();
        let etcd = self.cluster.etcd.endpoint();
        let mut text = String::new();
        let _ = writeln!(text, "Reach it (as root):");
        let _ = writeln!(
            text,
            "  ip netns exec {router} calicoctl-rs --etcd-endpoints {etcd} get ippools -o wide"
        );
        let _ = writeln!(
            text,
            "  ip netns exec {router} calicoctl-rs --etcd-endpoints {etcd} ipam show --show-blocks"
        );
        if let [first, .., last] = self.pods.as_slice() {
            let _ = writeln!(
                text,
                "  ip netns exec {} ping {}      # {} on {} to {} on {}",
                first.netns.name(),
                last.ip,
                first.name,
                first.node,
                last.name,
                last.node
            );
        }
        let first = self.nodes.first().map(String::as_str).unwrap_or("n1");
        let _ = writeln!(
            text,
            "  ip netns exec {} ip route show proto 84   # {first}'s routes from tabby",
            self.cluster.lab.node(first).netns().name()
        );
        let _ = writeln!(text, "  logs: {}", self.cluster.lab.logs().path().display());
        text
    }
}

#[derive(Debug)]
pub struct NodeLine {
    pub name: String,
    pub address: String,
    pub subnet: String,
    pub established: usize,
    pub peers: usize,
    pub routes: std::collections::BTreeSet<String>,
}

/// What [`Lab::report`] saw.
#[derive(Debug)]
pub struct Report {
    pub mode: Mode,
    pub convergence: Duration,
    pub nodes: Vec<NodeLine>,
    /// (pod, node, address)
    pub pods: Vec<(String, String, String)>,
    /// `reachable[i][j]`: pod i pinged pod j.
    pub reachable: Vec<Vec<bool>>,
}

impl Report {
    /// Every session up and every pod reaching every pod.
    pub fn healthy(&self) -> bool {
        self.nodes
            .iter()
            .all(|n| n.established == n.peers && n.peers > 0)
            && self.reachable.iter().flatten().all(|&ok| ok)
    }

    fn pairs(&self) -> (usize, usize) {
        let all = self.reachable.iter().flatten();
        (all.clone().filter(|&&ok| ok).count(), all.count())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "tabby lab: {} nodes, {} pods, {:?} mode, converged in {:.1} s",
            self.nodes.len(),
            self.pods.len(),
            self.mode,
            self.convergence.as_secs_f64()
        )?;
        writeln!(f)?;
        writeln!(f, "  node  address      subnet  BGP sessions  tabby routes")?;
        for node in &self.nodes {
            writeln!(
                f,
                "  {:<5} {:<12} {:<7} {:>2}/{:<2} up      {}",
                node.name,
                node.address,
                node.subnet,
                node.established,
                node.peers,
                node.routes.len()
            )?;
        }
        writeln!(f)?;
        let labels: Vec<String> = (self.pods.iter().enumerate())
            .map(|(i, (pod, node, ip))| format!("{}: {pod}@{node} {ip}", i + 1))
            .collect();
        let width = labels.iter().map(String::len).max().unwrap_or(0).max(16);
        write!(f, "  {:<width$}", "pod-to-pod ping")?;
        for (i, _) in self.pods.iter().enumerate() {
            write!(f, "{:>3}", i + 1)?;
        }
        writeln!(f)?;
        for (label, row) in labels.iter().zip(&self.reachable) {
            write!(f, "  {label:<width$}")?;
            for &ok in row {
                write!(f, "{:>3}", if ok { "✓" } else { "✗" })?;
            }
            writeln!(f)?;
        }
        let (ok, all) = self.pairs();
        writeln!(f)?;
        match self.healthy() {
            true => writeln!(
                f,
                "  OK: {ok}/{all} pod pairs reach each other, every BGP session is up"
            ),
            false => writeln!(
                f,
                "  FAILED: {ok}/{all} pod pairs reach each other (✗ above), sessions as listed"
            ),
        }
    }
}

/// The file `tabby-lab up` holds while it runs: its pid, so that a second `up` is
/// refused and `down` knows whom to stop.
pub const STATE_FILE: &str = "/run/tabby-lab.pid";

/// The pid of a running `tabby-lab up`, if any (a stale file is ignored).
pub fn running() -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(STATE_FILE)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
    alive.then_some(pid)
}

/// Claims [`STATE_FILE`] for this process, refusing when another `up` runs.
pub fn claim() -> Result<()> {
    if let Some(pid) = running() {
        bail!("a lab is already up (tabby-lab up, pid {pid}): run `tabby-lab down` first");
    }
    std::fs::write(STATE_FILE, std::process::id().to_string())
        .with_context(|| format!("writing {STATE_FILE}"))
}

/// Stops a running `up` (it tears its lab down as it exits), then removes what a
/// crashed one left (namespaces, processes).
pub fn down(timeout: Duration) -> Result<String> {
    let mut said = String::new();
    if let Some(pid) = running() {
        let pid = nix::unistd::Pid::from_raw(pid);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)
            .context("stopping tabby-lab up")?;
        crate::wait_until(timeout, "tabby-lab up to tear its lab down", || {
            anyhow::Ok(nix::sys::signal::kill(pid, None).is_err())
        })?;
        let _ = writeln!(said, "stopped tabby-lab up (pid {pid}); its lab is gone");
    }
    let _ = std::fs::remove_file(STATE_FILE);
    let swept = crate::sweep();
    for name in &swept.namespaces {
        let _ = writeln!(said, "removed leftover namespace {name}");
    }
    for pid in &swept.processes {
        let _ = writeln!(said, "killed leftover process {pid}");
    }
    if said.is_empty() {
        said.push_str("no lab was up; nothing left over\n");
    }
    Ok(said)
}
