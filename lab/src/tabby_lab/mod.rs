//! `tabby-lab`: a real tabby cluster on this machine, built with [`harness::e2e`]:
//! nodes in network namespaces (on one subnet, or two behind a router), the
//! datastore in the router's namespace (the Kubernetes API double by default, or
//! etcd), the cluster's resources applied with `calicoctl-rs`,
//! `tabby-reflector`s in lab nodes of their own (the node-to-node mesh off) or the
//! mesh, a top-of-rack router (BIRD or FRR) in the router's namespace peering
//! eBGP with every node, a `tabby-agent` per node, and pods attached by
//! `tabby-cni` with `tabby-ipam`. [`Lab::up`] builds it and waits until every
//! check passes; [`Lab::report`] reads back what it did (BGP sessions, routes,
//! pod-to-pod reachability); dropping it removes everything.
//!
//! IPIP is refused: this host's kernel lacks it (the QEMU harness has it:
//! `scripts/test -E 'test(/ipip/)'`).

mod operator;
mod report;
mod show;
mod state;
mod tor;

pub use operator::{CLUSTER_AS, TOR_AS};
pub use report::{Report, Session};
pub use state::{STATE_FILE, claim, down, running};
pub use tor::{TopOfRack, Tor};

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use api::datastore::config::DatastoreType;

use harness::e2e::{Clients, Cluster, Pod, address_with_subnet};

/// How long agents get to become ready, and the whole lab to pass its checks.
const READY: Duration = Duration::from_secs(90);
const CONVERGED: Duration = Duration::from_secs(60);
/// The pool every pod's address comes from.
pub const POOL: &str = "10.244.0.0/16";
/// What the top-of-rack router is called in the report.
const TOR_NAME: &str = "ToR";

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

impl Mode {
    /// The pool's `vxlanMode`, and how the report explains it.
    fn vxlan(self) -> Result<(&'static str, &'static str)> {
        Ok(match self {
            Mode::Direct => ("Never", "plain routes, one subnet"),
            Mode::Vxlan => ("Always", "VXLAN between every pair of nodes"),
            Mode::Crosssubnet => ("CrossSubnet", "direct within a subnet, VXLAN across"),
            Mode::Ipip => bail!(
                "--mode ipip: this host's kernel has no IPIP (CONFIG_NET_IPIP is off); \
                 tabby's IPIP dataplane runs inside a QEMU VM with Debian's kernel: \
                 scripts/test -E 'test(/ipip/)'"
            ),
        })
    }
}

/// What to build.
#[derive(Debug, Clone)]
pub struct Options {
    pub nodes: usize,
    pub mode: Mode,
    pub pods_per_node: usize,
    /// `tabby-reflector`s (0: the node-to-node mesh instead).
    pub reflectors: usize,
    pub tor: Tor,
    pub datastore: DatastoreType,
}

impl Options {
    fn check(&self) -> Result<()> {
        if !(2..=8).contains(&self.nodes) {
            bail!("--nodes {}: between 2 and 8 fit this machine", self.nodes);
        }
        if !(1..=4).contains(&self.pods_per_node) {
            bail!("--pods {}: between 1 and 4 per node", self.pods_per_node);
        }
        if self.reflectors > 2 {
            bail!(
                "--reflectors {}: 0 (the node-to-node mesh), 1 or 2",
                self.reflectors
            );
        }
        self.mode.vxlan().map(drop)
    }
}

/// A running lab. Fields drop in order: the reflectors and the ToR stop before
/// the cluster's namespaces go.
#[derive(Debug)]
pub struct Lab {
    pub tor: Option<TopOfRack>,
    /// The reflectors' lab nodes; the cluster runs them.
    pub reflectors: Vec<String>,
    pub cluster: Cluster,
    pub pods: Vec<Pod>,
    pub options: Options,
    /// From the first agent's start until every check but the pings passed;
    /// `None` when they did not within a minute.
    pub convergence: Option<Duration>,
    nodes: Vec<String>,
    /// Who speaks BGP from each address: nodes, reflectors, the ToR.
    names: BTreeMap<IpAddr, String>,
    /// The resources applied with calicoctl-rs, and what it said.
    resources: PathBuf,
    applied: Vec<String>,
}

impl Lab {
    /// Builds the cluster and waits until every session is up and every node's
    /// kernel routes are what the datastore implies. `name` names its namespaces
    /// and logs.
    pub fn up(name: &str, options: Options) -> Result<Self> {
        options.check()?;
        let (vxlan_mode, _) = options.mode.vxlan()?;
        let nodes: Vec<String> = (1..=options.nodes).map(|i| format!("n{i}")).collect();
        let reflectors: Vec<String> = (1..=options.reflectors).map(|i| format!("rr{i}")).collect();
        // Direct routes need one subnet; the other modes put the second half of
        // the nodes (and the second reflector) behind the router.
        let (split, racks) = match options.mode {
            Mode::Direct => (options.nodes, &["a"][..]),
            _ => (options.nodes.div_ceil(2), &["a", "b"][..]),
        };
        let mut builder = harness::Lab::new(name)
            .subnet("a", "10.0.1.0/24")
            .subnet("b", "10.0.2.0/24");
        for (i, node) in nodes.iter().enumerate() {
            builder = builder.node(node, if i < split { "a" } else { "b" });
        }
        for (i, rr) in reflectors.iter().enumerate() {
            builder = builder.node(rr, racks[i % racks.len()]);
        }
        let mut cluster = Cluster::on(builder.build()?, options.datastore)?;
        // calicoctl-rs, as a newcomer runs it, reads etcd's default prefix.
        cluster.set_prefix(api::datastore::ETCD_DEFAULT_PREFIX);

        let router = cluster.lab.router().context("no router")?;
        let like = cluster.lab.node(&nodes[0]).address();
        let tor_addresses: Vec<(String, IpAddr)> = match options.tor {
            Tor::None => Vec::new(),
            _ => racks
                .iter()
                .map(|rack| {
                    Ok((
                        rack.to_string(),
                        router
                            .address_in(rack, like)
                            .with_context(|| format!("the router on {rack}"))?,
                    ))
                })
                .collect::<Result<_>>()?,
        };
        let shape = operator::Shape {
            pool: POOL,
            vxlan_mode,
            reflectors: reflectors
                .iter()
                .map(|rr| Ok((rr.clone(), address_with_subnet(cluster.lab.node(rr))?)))
                .collect::<Result<_>>()?,
            tor: tor_addresses.clone(),
        };
        let resources = logs(&cluster).join("cluster.yaml");
        std::fs::write(&resources, operator::resources(&shape))?;
        let applied = operator::apply(&cluster, &resources)?;

        let mut names: BTreeMap<IpAddr, String> = nodes
            .iter()
            .chain(&reflectors)
            .map(|n| (cluster.lab.node(n).address(), n.clone()))
            .collect();
        for (_, address) in &tor_addresses {
            names.insert(*address, TOR_NAME.to_owned());
        }
        let node_addresses: Vec<IpAddr> = nodes
            .iter()
            .map(|n| cluster.lab.node(n).address())
            .collect();
        let tor_id = router.address_in("a", like).context("the router on a")?;
        let tor = TopOfRack::start(options.tor, router, tor_id, &node_addresses)?;
        let cluster_id = operator::REFLECTOR_CLUSTER_ID.parse()?;
        for rr in &reflectors {
            cluster.start_reflector(rr, operator::CLUSTER_AS, cluster_id, Clients::Datastore)?;
        }

        let started = Instant::now();
        for node in &nodes {
            let rack = cluster.lab.node(node).subnet().to_owned();
            cluster.start_agent_with(node, &[&format!("--node-labels=rack={rack}")])?;
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
        let mut lab = Self {
            tor,
            reflectors,
            cluster,
            pods,
            options,
            convergence: None,
            nodes,
            names,
            resources,
            applied,
        };
        // Not converging is a finding of the report, not an error.
        let converged = harness::wait_until(CONVERGED, "the lab to converge", || {
            let problems = lab.observe(false)?.problems();
            anyhow::Ok(problems.is_empty().then_some(()).ok_or(problems.join("; ")))
        });
        lab.convergence = converged.is_ok().then(|| started.elapsed());
        Ok(lab)
    }

    /// Sessions, routes and reachability, read now.
    pub fn report(&self) -> Result<Report> {
        self.observe(true)
    }

    /// What [`Lab::report`] reads; the pod-to-pod pings only when `ping`.
    fn observe(&self, ping: bool) -> Result<Report> {
        report::observe(self, ping)
    }

    /// Where its logs (and the resources applied) are; they stay after it is gone.
    pub fn logs(&self) -> PathBuf {
        logs(&self.cluster)
    }

    /// The sessions `node` should have.
    fn expected_peers(&self, node: &str) -> Vec<String> {
        let mut peers: Vec<String> = if self.reflectors.is_empty() {
            self.nodes.iter().filter(|n| *n != node).cloned().collect()
        } else {
            self.reflectors.clone()
        };
        if self.tor.is_some() {
            peers.push(TOR_NAME.to_owned());
        }
        peers
    }

    /// The name of the speaker at `address` (the address when it is none of the
    /// lab's).
    fn name_of(&self, address: &str) -> String {
        address
            .parse()
            .ok()
            .and_then(|a| self.names.get(&a).cloned())
            .unwrap_or_else(|| address.to_owned())
    }

    /// How to look at the running lab from a shell.
    pub fn how_to_reach(&self) -> String {
        let router = self
            .cluster
            .lab
            .router()
            .map(|r| r.netns().name().to_owned());
        let router = router.unwrap_or_default();
        let flags = self.cluster.operator_flags().join(" ");
        let mut text = String::new();
        let _ = writeln!(text, "Reach it (as root):");
        let _ = writeln!(
            text,
            "  ip netns exec {router} calicoctl-rs {flags} get ippools -o wide"
        );
        let _ = writeln!(
            text,
            "  ip netns exec {router} calicoctl-rs {flags} ipam show --show-blocks"
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
        if self.tor.is_some() {
            let _ = writeln!(
                text,
                "  ip netns exec {router} ip route           # what the ToR learned (BIRD installs it)"
            );
        }
        let _ = writeln!(text, "  logs: {}", self.logs().display());
        text
    }
}

/// The cluster's log directory, without `..` (it is shown to people).
fn logs(cluster: &Cluster) -> PathBuf {
    let path = cluster.lab.logs().path();
    path.canonicalize().unwrap_or_else(|_| path.to_owned())
}
