//! One measured run: a fresh lab and target, the client sessions, the clock.
//!
//! ```text
//!  tb-<id>-target   10.0.0.10/16   the target daemon (passive)
//!  tb-<id>-clients  10.0.1.1.../16  this process's tester and monitor sessions
//! ```

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use futures::future::try_join_all;

use super::session::{self, Client};
use super::stream;
use super::target::{Target, TargetKind, Usage};
use super::workload::{Role, Workload};
use harness::Lab;

/// The AS of the target and every client: iBGP.
pub const ASN: u32 = 64512;
const BGP_PORT: u16 = 179;

#[derive(Debug, Clone)]
pub struct Options {
    /// How long every wait (sessions, convergence) may take.
    pub timeout: Duration,
    /// A pause between the sessions coming up and the first UPDATE.
    pub settle: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(600),
            settle: Duration::ZERO,
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// First UPDATE written until every monitor holds every prefix.
    pub convergence: Duration,
    /// W5: each wave, from its first withdrawal until every monitor holds every
    /// prefix again.
    pub waves: Vec<Duration>,
    /// The target with its sessions up, before the first UPDATE.
    pub idle: Usage,
    /// The target after the last wave.
    pub end: Usage,
}

impl Outcome {
    pub fn cpu_seconds(&self) -> f64 {
        self.end.cpu_seconds - self.idle.cpu_seconds
    }
}

/// Runs `workload` once against a fresh `kind`.
pub fn run(kind: TargetKind, workload: Workload, options: &Options) -> Result<Outcome> {
    let lab = Lab::new(&format!("bgperf-{kind}-{workload}"))
        .subnet("a", "10.0.0.0/16")
        .node("target", "a")
        .node("clients", "a")
        .build()?;
    let (target_node, clients_node) = (lab.node("target"), lab.node("clients"));
    let roles = workload.roles();
    let addresses: Vec<Ipv4Addr> = (0..roles.len() as u32)
        .map(|i| Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 1, 1)) + i))
        .collect();
    let batch = addresses
        .iter()
        .map(|a| format!("addr add {a}/16 dev eth0 nodad\n"))
        .collect::<String>();
    let batch_file = lab.logs().path().join("client-addresses.batch");
    std::fs::write(&batch_file, batch)?;
    clients_node.ip(&format!("-batch {}", batch_file.display()))?;
    let router_id = target_node
        .ipv4()
        .context("the target has no IPv4 address")?;
    let target = Target::start(kind, target_node, router_id, ASN, &addresses)
        .with_context(|| format!("starting {kind}"))?;

    // Encoded before any session exists: the clock never sees encoding.
    let distinct = workload.distinct_attributes();
    let streams: Vec<Option<Streams>> = roles
        .iter()
        .zip(&addresses)
        .map(|(role, address)| Streams::encode(role, *address, distinct, workload.waves() > 0))
        .collect::<Result<_>>()?;

    let endpoint = SocketAddrV4::new(router_id, BGP_PORT);
    clients_node.run(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("building the client runtime")?;
        runtime.block_on(measure(
            &target, &roles, &addresses, &streams, endpoint, workload, options,
        ))
    })?
}

/// A tester's pre-encoded UPDATEs.
#[derive(Debug)]
struct Streams {
    announce: Bytes,
    /// W5: withdrawal and re-announcement of the churned tenth.
    churn: Option<(Bytes, Bytes)>,
}

impl Streams {
    fn encode(
        role: &Role,
        next_hop: Ipv4Addr,
        distinct: bool,
        churn: bool,
    ) -> Result<Option<Self>> {
        if role.announces.is_empty() {
            return Ok(None);
        }
        let announce = stream::announce(role.announces.clone(), next_hop, distinct)?;
        let churn = match churn {
            true => {
                let tenth =
                    role.announces.start..role.announces.start + role.announces.len() as u32 / 10;
                Some((
                    stream::withdraw(tenth.clone())?,
                    stream::announce(tenth, next_hop, distinct)?,
                ))
            }
            false => None,
        };
        Ok(Some(Self { announce, churn }))
    }
}

async fn measure(
    target: &Target,
    roles: &[Role],
    addresses: &[Ipv4Addr],
    streams: &[Option<Streams>],
    endpoint: SocketAddrV4,
    workload: Workload,
    options: &Options,
) -> Result<Outcome> {
    let epoch = Instant::now();
    let deadline = epoch + options.timeout;
    let size = workload.prefixes();
    let clients = try_join_all(roles.iter().zip(addresses).map(|(role, address)| {
        session::establish(
            *address,
            endpoint,
            ASN,
            epoch,
            size,
            role.announces.clone(),
            deadline,
        )
    }))
    .await?;
    tokio::time::sleep(options.settle).await;
    let idle = target.usage()?;
    let monitors: Vec<(&Client, usize)> = clients
        .iter()
        .zip(roles)
        .filter(|(_, role)| role.monitors)
        .map(|(client, role)| (client, size as usize - role.announces.len()))
        .collect();

    let start = epoch.elapsed();
    send(&clients, streams, |s| Some(&s.announce))?;
    let done = converge(&monitors, 0, deadline).await?;
    let convergence = done - start;

    let mut waves = Vec::new();
    let churned = (roles[0].announces.len() / 10) as isize;
    for _ in 0..workload.waves() {
        let start = epoch.elapsed();
        send(&clients, streams, |s| s.churn.as_ref().map(|c| &c.0))?;
        converge(&monitors, -churned, deadline).await?;
        send(&clients, streams, |s| s.churn.as_ref().map(|c| &c.1))?;
        let done = converge(&monitors, 0, deadline).await?;
        waves.push(done - start);
    }
    Ok(Outcome {
        convergence,
        waves,
        idle,
        end: target.usage()?,
    })
}

fn send(
    clients: &[Client],
    streams: &[Option<Streams>],
    pick: impl Fn(&Streams) -> Option<&Bytes>,
) -> Result<()> {
    for (client, stream) in clients.iter().zip(streams) {
        if let Some(bytes) = stream.as_ref().and_then(&pick) {
            client
                .send
                .send(bytes.clone())
                .map_err(|_| anyhow::anyhow!("session {} is gone", client.address))?;
        }
    }
    Ok(())
}

/// Waits until every monitor holds its full count plus `offset`; returns when the
/// last of them got there (time since the epoch).
async fn converge(
    monitors: &[(&Client, usize)],
    offset: isize,
    deadline: Instant,
) -> Result<Duration> {
    loop {
        if let Some((client, _)) = monitors.iter().find(|(c, _)| c.progress.failed()) {
            bail!("session {} failed", client.address);
        }
        let complete = monitors
            .iter()
            .all(|(c, full)| c.progress.held() as isize == *full as isize + offset);
        if complete {
            return Ok(monitors
                .iter()
                .map(|(c, _)| c.progress.changed_at())
                .max()
                .unwrap_or_default());
        }
        if Instant::now() > deadline {
            let held: Vec<usize> = monitors.iter().map(|(c, _)| c.progress.held()).collect();
            bail!("no convergence before the deadline; monitors hold {held:?}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
