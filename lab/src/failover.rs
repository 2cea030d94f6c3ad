//! Failover, the benchmark behind `tabby-failover`: the time from the moment a
//! node's underlay link is cut (`ip link set eth0 down` in its namespace) until
//! the routes to its prefixes are gone from the kernel of every other node, over
//! repeated cuts that take each node in turn (the link comes back, and every
//! route with it, before the next cut).
//!
//! Kernel routes are watched with `ip -o monitor route` in every node, each line
//! timestamped as it arrives ([`RouteWatch`], shared with the convergence
//! benchmark), so no polling interval hides in the figures.
//!
//! Speakers: tabby-agents in a node-to-node mesh, tabby-agents behind one
//! tabby-reflector (the reflector itself is never cut), or BIRD on every node in
//! a full iBGP mesh, configured as Calico configures it (`protocol kernel`
//! exporting learned routes, next hops direct) — with BFD (`bfd on`, `protocol
//! bfd`) or without. Without BFD a dead node's routes stay until the hold timer
//! (tabby 90 s, BIRD 240 s): those waits are capped, and a capped sample counts
//! as the cap.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use api::resources::{
    BGPConfiguration, BGPConfigurationSpec, BGPPeer, BGPPeerSpec, BfdSpec, Cidr, EncapsulationMode,
    GoDuration, IPPool, IPPoolSpec,
};
use std::collections::BTreeSet;

use harness::e2e::{Clients, Cluster};
use harness::lab::NODE_INTERFACE;
use harness::peers::{BfdPeer, Bird};
use harness::{Lab, wait_until};
use ipnet::IpNet;

use crate::convergence::RouteWatch;

/// Who speaks BGP on the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// tabby-agents, node-to-node mesh.
    Mesh,
    /// tabby-agents, the mesh off, one tabby-reflector with every node a client.
    TabbyReflector,
    /// BIRD on every node, a full iBGP mesh (Calico's BIRD).
    BirdMesh,
}

/// One row of the benchmark: a mode with BFD at `interval` × `multiplier`, or
/// without BFD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup {
    pub mode: Mode,
    pub nodes: usize,
    /// BFD's transmit and receive interval and multiplier; `None` for no BFD.
    pub bfd: Option<(Duration, u8)>,
    /// The longest wait for one cut's routes to go.
    pub cap: Duration,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Report {
    pub setup: Setup,
    /// Link cut → the victim's last route gone from the last other node (the cap
    /// when it had not gone by then).
    pub gone: Vec<Duration>,
    /// How many samples hit the cap.
    pub capped: usize,
}

const AS: u32 = 64512;
const POOL: &str = "10.244.0.0/16";
const SUBNET: &str = "10.0.0.0/16";
/// Setting up and coming back after a cut.
const DEADLINE: Duration = Duration::from_secs(120);

/// Runs `samples` cuts on a fresh cluster for `setup`.
pub fn run(setup: Setup, samples: usize) -> Result<Report> {
    let names: Vec<String> = (1..=setup.nodes).map(|i| format!("n{i}")).collect();
    let test = format!("failover_{:?}", setup.mode).to_lowercase();
    let mut builder = Lab::new(&test).subnet("a", SUBNET).router();
    for name in &names {
        builder = builder.node(name, "a");
    }
    if setup.mode == Mode::TabbyReflector {
        builder = builder.node("rr", "a");
    }
    let mut cluster = Cluster::new(builder.build()?)?;
    // Before any route: the monitors see every route come.
    let watch = RouteWatch::start(&cluster, &names)?;
    let birds = match setup.mode {
        Mode::BirdMesh => bird_mesh(&cluster, &names, setup.bfd)?,
        Mode::Mesh | Mode::TabbyReflector => {
            tabby(&mut cluster, &names, setup)?;
            Vec::new()
        }
    };
    let mut report = Report {
        setup,
        gone: Vec::new(),
        capped: 0,
    };
    for index in 0..samples {
        let victim = &names[index % names.len()];
        let others: Vec<&String> = names.iter().filter(|n| *n != victim).collect();
        let via = cluster.lab.node(victim).address();
        let prefixes = wait_learned(&cluster, &others, via, setup.mode)?;
        if setup.bfd.is_some() {
            wait_bfd_up(&cluster, &names, setup.mode, &birds)?;
        }
        let node = cluster.lab.node(victim);
        let cut = Instant::now();
        node.ip(&format!("link set dev {NODE_INTERFACE} down"))?;
        match watch.wait_gone(&others, &prefixes, cut, setup.cap) {
            Some(at) => report.gone.push(at.saturating_duration_since(cut)),
            None => {
                report.gone.push(setup.cap);
                report.capped += 1;
            }
        }
        node.ip(&format!("link set dev {NODE_INTERFACE} up"))
            .with_context(|| format!("sample {index}: bringing {victim}'s link back"))?;
    }
    Ok(report)
}

/// Waits until every BFD session beside BGP is Up (after a cut, again): the
/// sessions come up after BGP's, and a link cut before then has no Up for BFD to
/// fall from — the routes would stay until the hold timer.
fn wait_bfd_up(cluster: &Cluster, names: &[String], mode: Mode, birds: &[Bird]) -> Result<()> {
    match mode {
        Mode::Mesh => names.iter().try_for_each(|name| {
            harness::e2e::wait_bfd_up(&cluster.socket(name), name, names.len() - 1, DEADLINE)
        }),
        Mode::TabbyReflector => {
            harness::e2e::wait_bfd_up(&cluster.reflector_socket("rr"), "rr", names.len(), DEADLINE)
        }
        Mode::BirdMesh => {
            for (bird, name) in birds.iter().zip(names) {
                for other in names.iter().filter(|o| *o != name) {
                    let address = cluster.lab.node(other).address();
                    bird.wait_bfd_state(address, bfd::State::Up, DEADLINE)?;
                }
            }
            Ok(())
        }
    }
}

/// Waits until every node of `others` has the same routes through `via` in its
/// kernel, at least one; returns their prefixes. Read from the kernel, not the
/// monitors: a node whose own link went down lost its routes without a word.
fn wait_learned(
    cluster: &Cluster,
    others: &[&String],
    via: std::net::IpAddr,
    mode: Mode,
) -> Result<BTreeSet<IpNet>> {
    let proto = if mode == Mode::BirdMesh { "bird" } else { "84" };
    let hop = format!("via {via} ");
    wait_until(
        DEADLINE,
        &format!("every node's routes through {via}"),
        || {
            let mut sets = Vec::new();
            for node in others {
                let lines = harness::routes::routes(cluster.lab.node(node), proto)?;
                let prefixes: BTreeSet<IpNet> = lines
                    .iter()
                    .filter(|line| line.contains(&hop))
                    .filter_map(|line| line.split_whitespace().next()?.parse().ok())
                    .collect();
                sets.push(prefixes);
            }
            anyhow::Ok(match sets.split_first() {
                Some((first, rest)) if !first.is_empty() && rest.iter().all(|s| s == first) => {
                    Ok(first.clone())
                }
                _ => Err(format!("{sets:?}")),
            })
        },
    )
}

/// The agents (and the reflector) with BFD as `setup` says, a pod on every
/// node, every node's block in every other node's kernel.
fn tabby(cluster: &mut Cluster, names: &[String], setup: Setup) -> Result<()> {
    let mut pool = IPPoolSpec::new(Cidr(POOL.parse()?));
    pool.vxlan_mode = EncapsulationMode::Never;
    cluster.create(&IPPool::new("default-ipv4-ippool", pool))?;
    let bfd = setup.bfd.map(|(interval, multiplier)| BfdSpec {
        enabled: true,
        min_rx: Some(GoDuration(interval)),
        min_tx: Some(GoDuration(interval)),
        multiplier: Some(multiplier),
        ..BfdSpec::default()
    });
    let reflector = setup.mode == Mode::TabbyReflector;
    let config = BGPConfigurationSpec {
        node_to_node_mesh_enabled: Some(!reflector),
        bfd: bfd.filter(|_| !reflector),
        ..BGPConfigurationSpec::default()
    };
    cluster.create(&BGPConfiguration::new("default", config))?;
    if reflector {
        let address = cluster.lab.node("rr").address().to_string();
        let mut peer: BGPPeerSpec =
            serde_json::from_value(serde_json::json!({"peerIP": address, "asNumber": AS}))?;
        peer.bfd = bfd;
        cluster.create(&BGPPeer::new("reflector", peer))?;
        let extra = match setup.bfd {
            Some((interval, multiplier)) => format!(
                "bfd: {{enabled: true, minRx: {}, minTx: {}, multiplier: {multiplier}}}\n",
                GoDuration(interval),
                GoDuration(interval)
            ),
            None => String::new(),
        };
        let id = cluster.lab.node("rr").ipv4().context("rr has no IPv4")?;
        cluster.start_reflector_with("rr", AS, id, Clients::Datastore, &extra)?;
        cluster.wait_reflector_ready("rr", DEADLINE)?;
    }
    for name in names {
        cluster.start_agent_with(name, &["--log=warn"])?;
    }
    for name in names {
        cluster.wait_ready(name, DEADLINE)?;
    }
    let nodes: Vec<&str> = names.iter().map(String::as_str).collect();
    let pods = cluster.add_pod_per_node(&nodes)?;
    cluster.wait_for_routes(&nodes, &pods, DEADLINE)?;
    Ok(())
}

/// BIRD on every node of `names`: iBGP with every other node, one blackhole
/// route of its own (`10.250.<i>.0/24`) announced, learned routes in the kernel;
/// BFD beside every session when `bfd` is given. A session BFD took down is
/// tried again after 1 to 2 s (`error wait time`), not BIRD's 60 s, so that the
/// next cut finds it up.
fn bird_mesh(
    cluster: &Cluster,
    names: &[String],
    bfd: Option<(Duration, u8)>,
) -> Result<Vec<Bird>> {
    let mut birds = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let node = cluster.lab.node(name);
        let id = node.ipv4().context("a node without IPv4")?;
        let mut text = format!(
            "router id {id};\nprotocol device {{}}\n\
             protocol kernel {{ ipv4 {{ export where source = RTS_BGP; }}; }}\n\
             protocol static {{ ipv4; route 10.250.{}.0/24 blackhole; }}\n",
            i + 1
        );
        if let Some((interval, multiplier)) = bfd {
            let ms = interval.as_millis();
            text.push_str(&format!(
                "protocol bfd {{ interface \"*\" {{ min rx interval {ms} ms; \
                 min tx interval {ms} ms; multiplier {multiplier}; }}; }}\n"
            ));
        }
        for (j, other) in names.iter().enumerate().filter(|(j, _)| *j != i) {
            let address = cluster.lab.node(other).address();
            let bfd_on = if bfd.is_some() { "bfd on; " } else { "" };
            text.push_str(&format!(
                "protocol bgp peer{j} {{ local as {AS}; neighbor {address} as {AS}; direct; \
                 {bfd_on}error wait time 1, 2; connect retry time 1; \
                 ipv4 {{ import all; export where source = RTS_STATIC; }}; }}\n"
            ));
        }
        birds.push(Bird::start_text(node, &text)?);
    }
    Ok(birds)
}
