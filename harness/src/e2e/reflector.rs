//! `tabby-reflector` processes on lab nodes, configured as an operator configures
//! one: a YAML file with the AS and cluster id, and the clients either discovered
//! from the cluster's datastore (every `Node`) or accepted
//! from a listen range (the nodes' subnet). The agents reach them through
//! `BGPPeer` resources, which the test creates.
//!
//! ```no_run
//! # fn f(mut cluster: harness::e2e::Cluster) -> anyhow::Result<()> {
//! # use std::time::Duration;
//! use harness::e2e::Clients;
//! let id = "10.0.1.250".parse()?;
//! cluster.start_reflector("rr1", 64512, id, Clients::Datastore)?;
//! cluster.wait_reflector_ready("rr1", Duration::from_secs(30))?;
//! cluster.wait_reflector_established("rr1", &["n1", "n2"], Duration::from_secs(30))?;
//! # Ok(()) }
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use ipnet::IpNet;
use proto::bgp_status::bgp_status_client::BgpStatusClient;
use proto::bgp_status::{HealthRequest, ListPeersRequest, Peer, SessionState};

use api::resources::{
    BGPConfiguration, BGPConfigurationSpec, BGPPeer, BGPPeerSpec, BfdSpec, Cidr, IPPool, IPPoolSpec,
};
use serde_json::json;

use super::{Cluster, binary};
use crate::Lab;
use crate::kube_api::process::Identity;
use crate::process::Process;
use crate::wait::wait_until;
use api::datastore::config::DatastoreType;

/// Where a reflector's clients come from.
#[derive(Debug, Clone, Copy)]
pub enum Clients {
    /// The cluster's datastore: every `Node` of the cluster, followed with a watch.
    Datastore,
    /// Any speaker of the AS connecting from this prefix.
    ListenRange(IpNet),
    /// As `ListenRange`, proposing this hold time (seconds; keepalives every
    /// third of it): a silent peer is dropped in moments, not minutes.
    ListenRangeHolding(IpNet, u16),
}

/// Most sessions a listen range accepts.
const MAX_SESSIONS: usize = 1000;

impl Cluster {
    /// The reflector's status socket on `node`.
    pub fn reflector_socket(&self, node: &str) -> PathBuf {
        self.node_dir(node).join("reflector.sock")
    }

    /// Starts tabby-reflector on `node`, in `as_number` with `cluster_id`, its
    /// router id the node's address.
    pub fn start_reflector(
        &mut self,
        node: &str,
        as_number: u32,
        cluster_id: Ipv4Addr,
        clients: Clients,
    ) -> Result<()> {
        self.start_reflector_with(node, as_number, cluster_id, clients, "")
    }

    /// As [`Cluster::start_reflector`], with `extra` lines of YAML (top-level
    /// fields such as `bfd: {enabled: true}`) in its file.
    pub fn start_reflector_with(
        &mut self,
        node: &str,
        as_number: u32,
        cluster_id: Ipv4Addr,
        clients: Clients,
        extra: &str,
    ) -> Result<()> {
        let lab_node = self.lab.node(node);
        let router_id = lab_node
            .ipv4()
            .context("the reflector has no IPv4 address")?;
        let dir = self.node_dir(node);
        std::fs::create_dir_all(&dir)?;
        let mut config = format!(
            "asNumber: {as_number}\nrouterId: {router_id}\nclusterId: {cluster_id}\n\
             api: {{socket: {}}}\nmetrics: {{address: '{}'}}\n",
            self.reflector_socket(node).display(),
            SocketAddr::new(router_id.into(), super::metrics::REFLECTOR_PORT),
        );
        config.push_str(extra);
        let mut command = lab_node.command(binary("tabby-reflector")?);
        command.arg(format!("--config={}", dir.join("reflector.yaml").display()));
        match clients {
            Clients::Datastore => {
                command.args(self.backing.args(&Identity::Reflector));
                command.arg(format!("--node-name={node}"));
            }
            Clients::ListenRange(prefix) => config.push_str(&format!(
                "listenRanges:\n- {{prefix: {prefix}, asNumber: {as_number}, \
                 maxSessions: {MAX_SESSIONS}}}\n"
            )),
            Clients::ListenRangeHolding(prefix, hold) => config.push_str(&format!(
                "listenRanges:\n- {{prefix: {prefix}, asNumber: {as_number}, \
                 maxSessions: {MAX_SESSIONS}, holdTime: {hold}, keepaliveTime: {}}}\n",
                (hold / 3).max(1)
            )),
        }
        std::fs::write(dir.join("reflector.yaml"), config)?;
        command.env("TABBY_LOG", "info,bgp=debug,reflector=debug");
        let process = Process::spawn(command, lab_node.logs(), &format!("reflector-{node}"))?;
        self.reflectors.insert(node.to_owned(), process);
        Ok(())
    }

    /// SIGKILLs the reflector on `node`: it sends no NOTIFICATION.
    pub fn kill_reflector(&mut self, node: &str) {
        if let Some(mut process) = self.reflectors.remove(node) {
            process.kill();
        }
    }

    /// Waits until the reflector on `node` answers Health ready over its status
    /// socket; fails at once if it exits.
    pub fn wait_reflector_ready(&mut self, node: &str, timeout: Duration) -> Result<()> {
        let socket = self.reflector_socket(node);
        let what = format!("the reflector on {node} to be ready");
        crate::wait::wait_serving(self.reflectors.get_mut(node), timeout, &what, || {
            crate::runtime().block_on(async {
                let channel = proto::client::connect_unix(&socket).await?;
                let health = BgpStatusClient::new(channel)
                    .health(HealthRequest {})
                    .await?
                    .into_inner();
                anyhow::Ok(if health.ready {
                    Ok(())
                } else {
                    Err(format!("{health:?}"))
                })
            })
        })
    }

    /// Every session of the reflector on `node`, as its ListPeers shows them.
    pub fn reflector_peers(&self, node: &str) -> Result<Vec<Peer>> {
        list_peers(&self.reflector_socket(node))
    }

    /// The pid of the reflector on `node`, while it runs.
    pub fn reflector_pid(&self, node: &str) -> Option<u32> {
        self.reflectors.get(node).map(Process::pid)
    }

    /// With the reflector on `reflector` started: once it serves, agents on
    /// `nodes`, each with an Established session with it, a pod on each node,
    /// every node's routes as the datastore implies, and every pod reaching every
    /// other. The pods, in `nodes`' order.
    pub fn start_behind_reflector(
        &mut self,
        reflector: &str,
        nodes: &[&str],
        ready: Duration,
        converged: Duration,
    ) -> Result<Vec<super::Pod>> {
        self.wait_reflector_ready(reflector, ready)?;
        self.start_agents(nodes, ready)?;
        self.wait_reflector_established(reflector, nodes, converged)?;
        let pods = self.add_pod_per_node(nodes)?;
        self.wait_for_routes(nodes, &pods, converged)?;
        super::ping_all(&pods)?;
        Ok(pods)
    }

    /// Waits until the reflector on `node` has an Established session with each
    /// of `clients` (lab nodes).
    pub fn wait_reflector_established(
        &self,
        node: &str,
        clients: &[&str],
        timeout: Duration,
    ) -> Result<()> {
        let addresses: Vec<String> = clients
            .iter()
            .map(|c| self.lab.node(c).address().to_string())
            .collect();
        wait_until(
            timeout,
            &format!("{node}'s sessions with {clients:?}"),
            || {
                let peers = self.reflector_peers(node)?;
                let down: Vec<&String> = addresses
                    .iter()
                    .filter(|a| {
                        !peers
                            .iter()
                            .any(|p| &p.address == *a && p.state() == SessionState::Established)
                    })
                    .collect();
                anyhow::Ok(if down.is_empty() {
                    Ok(())
                } else {
                    Err(format!("not established: {down:?}; peers {peers:?}"))
                })
            },
        )
    }
}

/// Waits until the daemon (agent or reflector) serving `socket`, named `name` in
/// the error, has `peers` sessions, every one with BFD Up: before that a cut link
/// has no Up to fall from, and BFD detects nothing.
pub fn wait_bfd_up(socket: &Path, name: &str, peers: usize, timeout: Duration) -> Result<()> {
    crate::wait_until(timeout, &format!("{name}'s BFD sessions up"), || {
        let listed = list_peers(socket)?;
        let states: Vec<(String, String)> = listed
            .iter()
            .map(|p| (p.address.clone(), p.bfd_state.clone()))
            .collect();
        anyhow::Ok(
            if listed.len() == peers && states.iter().all(|(_, s)| s == "Up") {
                Ok(())
            } else {
                Err(format!("{states:?}"))
            },
        )
    })
}

/// Every session of the daemon (agent or reflector) serving BgpStatus on `socket`.
pub fn list_peers(socket: &std::path::Path) -> Result<Vec<Peer>> {
    crate::runtime().block_on(async {
        let channel = proto::client::connect_unix(socket).await?;
        let peers = BgpStatusClient::new(channel)
            .list_peers(ListPeersRequest {})
            .await?;
        Ok(peers.into_inner().peers)
    })
}

impl Cluster {
    /// `machines` on one `subnet` behind a router, the default pool
    /// (10.244.0.0/16), the mesh off in AS `as_number`, and a global `BGPPeer` per
    /// machine in `reflectors` (whose reflectors the test starts), on `datastore`.
    pub fn with_reflectors(
        test: &str,
        subnet: &str,
        machines: &[&str],
        reflectors: &[&str],
        as_number: u32,
        datastore: DatastoreType,
    ) -> Result<Cluster> {
        Self::with_reflectors_and_bfd(
            test, subnet, machines, reflectors, as_number, datastore, None,
        )
    }

    /// As [`Cluster::with_reflectors`], each `BGPPeer` with the `bfd` block given.
    pub fn with_reflectors_and_bfd(
        test: &str,
        subnet: &str,
        machines: &[&str],
        reflectors: &[&str],
        as_number: u32,
        datastore: DatastoreType,
        bfd: Option<BfdSpec>,
    ) -> Result<Cluster> {
        let mut builder = Lab::new(test).subnet("a", subnet).router();
        for machine in machines {
            builder = builder.node(machine, "a");
        }
        let cluster = Cluster::on(builder.build()?, datastore)?;
        let pool = IPPoolSpec::new(Cidr("10.244.0.0/16".parse()?));
        cluster.create(&IPPool::new("default-ipv4-ippool", pool))?;
        let bgp: BGPConfigurationSpec =
            serde_json::from_value(json!({"nodeToNodeMeshEnabled": false, "asNumber": as_number}))?;
        cluster.create(&BGPConfiguration::new("default", bgp))?;
        for rr in reflectors {
            let address = cluster.lab.node(rr).address().to_string();
            let mut peer: BGPPeerSpec =
                serde_json::from_value(json!({"peerIP": address, "asNumber": as_number}))?;
            peer.bfd = bfd;
            cluster.create(&BGPPeer::new(*rr, peer))?;
        }
        Ok(cluster)
    }
}
