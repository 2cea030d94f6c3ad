//! End-to-end clusters: a lab, a datastore in its router namespace (its first
//! top-of-rack router in a lab of racks; every node reaches it, as nodes reach a
//! real cluster's API server or etcd), `tabby-agent` processes on the nodes, and
//! pods attached by `tabby-cni` with `tabby-ipam`, called as a runtime calls them.
//! The datastore is etcd (each cluster under a prefix of its own) or the
//! Kubernetes API double as a process, every binary with its own credentials
//! (see [`datastore`]).
//!
//! The API, for tests and for the lab:
//! - [`Cluster::new`] (etcd) or [`Cluster::on`] (either datastore) on a [`Lab`]
//!   with a router; [`Cluster::create`] and [`Cluster::datastore`] write resources
//!   (pools, BGP configuration, peers);
//! - [`Cluster::start_agent`] (`_with` extra flags), [`Cluster::wait_ready`],
//!   [`Cluster::kill_agent`], [`Cluster::socket`] (the status API);
//! - [`Cluster::start_reflector`] (tabby-reflector, see [`reflector`]),
//!   [`Cluster::wait_reflector_ready`], [`Cluster::kill_reflector`];
//! - [`Cluster::add_pod`] / [`Cluster::delete_pod`] (CNI ADD / DEL), [`Cluster::cni`]
//!   for any other call; [`Cluster::add_sandbox`], [`Cluster::cni_sandbox`] and
//!   [`Cluster::start_cni`] for a pod's sandbox made again or a call stopped midway;
//! - [`Cluster::start_containerd`] and [`Cluster::containerd`]: a real runtime on a
//!   node, calling the plugins as `manifests/` installs them (see [`crate::cri`]);
//! - [`Cluster::start_controller`] (tabby-ipam-controller) and
//!   [`Cluster::controller_passes`];
//! - [`Cluster::agent_metrics`], [`Cluster::reflector_metrics`],
//!   [`Cluster::controller_metrics`]: each daemon's `/metrics` page, read with
//!   [`sample`];
//! - [`Pings`] in the background, counted by ping, while a test breaks something;
//! - [`Cluster::expected_routes`], [`Cluster::wait_for_routes`] and [`ping_all`]
//!   check the result.
//!
//! ```no_run
//! # fn f(lab: harness::Lab) -> anyhow::Result<()> {
//! # use std::time::Duration;
//! use api::resources::{Cidr, IPPool, IPPoolSpec};
//! let mut cluster = harness::e2e::Cluster::new(lab)?;
//! cluster.create(&IPPool::new("default", IPPoolSpec::new(Cidr("10.244.0.0/16".parse()?))))?;
//! cluster.start_agent("n1")?;
//! cluster.wait_ready("n1", Duration::from_secs(60))?;
//! let pod = cluster.add_pod("n1", "web")?;
//! cluster.wait_for_routes(&["n1"], &[pod], Duration::from_secs(30))?;
//! # Ok(()) }
//! ```

mod controller;
mod cri;
pub mod datastore;
mod expect;
pub mod metrics;
mod pings;
pub mod reflector;

pub use crate::binaries::{binary, plain_environment};
pub use controller::Passes;
pub use expect::{Facts, ping_all};
pub use metrics::sample;
pub use pings::{PingStats, Pings};
pub use reflector::{Clients, list_peers, wait_bfd_up};

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use api::datastore::config::DatastoreType;
use api::datastore::{Backend, Datastore};
use api::resources::Resource;
use serde_json::{Value, json};

use crate::kube_api::objects;
use crate::kube_api::process::Identity;
use crate::lab::{Lab, Node};
use crate::netns::Netns;
use crate::process::Process;
use datastore::Backing;

/// The interface name pods get.
const POD_INTERFACE: &str = "eth0";
/// The CNI network's name (handles start with it).
const NETWORK: &str = "k8s-pod-network";
/// The Kubernetes namespace of every pod.
pub const NAMESPACE: &str = "e2e";

/// A pod attached by tabby-cni.
#[derive(Debug)]
pub struct Pod {
    pub name: String,
    pub node: String,
    /// The sandbox's `CNI_CONTAINERID`.
    pub container: String,
    pub ip: IpAddr,
    /// Every address it has, one per family the cluster assigns ([`Cluster::set_pod_families`]).
    pub ips: Vec<IpAddr>,
    /// The host end of its veth.
    pub veth: String,
    pub netns: Netns,
}

/// The cluster; everything stops and goes on drop.
#[derive(Debug)]
pub struct Cluster {
    /// First to go: their sandboxes' CNI DEL needs the cluster's datastore.
    containerds: BTreeMap<String, crate::cri::Containerd>,
    agents: BTreeMap<String, Process>,
    reflectors: BTreeMap<String, Process>,
    controller: Option<controller::Controller>,
    extra_args: BTreeMap<String, Vec<String>>,
    /// The families pods get an address of: IPv4, IPv6.
    pod_families: (bool, bool),
    backing: Backing,
    /// Nodes whose core Node is registered (Kubernetes datastore).
    registered: BTreeSet<String>,
    agent: PathBuf,
    cni: PathBuf,
    /// CNI_PATH: holds tabby-ipam.
    cni_path: tempfile::TempDir,
    /// Variables every plugin call gets besides the CNI ones.
    plugin_env: Vec<(String, String)>,
    /// Sockets, MTU and node-name files, IPAM state, per node.
    dir: tempfile::TempDir,
    pub lab: Lab,
}

impl Cluster {
    /// etcd on the lab's router (its first IPv4 address, else its IPv6 one; see
    /// [`Lab::core`]), the binaries built.
    pub fn new(lab: Lab) -> Result<Self> {
        Self::on(lab, DatastoreType::Etcd)
    }

    /// As [`Cluster::new`], on the datastore `kind`.
    pub fn on(lab: Lab, kind: DatastoreType) -> Result<Self> {
        let backing = Backing::start(kind, &lab)?;
        let cni_path = tempfile::tempdir()?;
        std::os::unix::fs::symlink(binary("tabby-ipam")?, cni_path.path().join("tabby-ipam"))?;
        Ok(Self {
            containerds: BTreeMap::new(),
            agents: BTreeMap::new(),
            reflectors: BTreeMap::new(),
            controller: None,
            extra_args: BTreeMap::new(),
            pod_families: (true, false),
            backing,
            registered: BTreeSet::new(),
            agent: binary("tabby-agent")?,
            cni: binary("tabby-cni")?,
            cni_path,
            plugin_env: Vec::new(),
            dir: tempfile::tempdir()?,
            lab,
        })
    }

    /// Runs the CNI plugins (tabby-cni and tabby-ipam) from `dir` from now on: another
    /// build's, for a benchmark's baseline, or the workspace's again
    /// (`binaries::binary("tabby-cni")`'s directory).
    pub fn use_plugins(&mut self, dir: &Path) -> Result<()> {
        let ipam = self.cni_path.path().join("tabby-ipam");
        std::fs::remove_file(&ipam)?;
        std::os::unix::fs::symlink(dir.join("tabby-ipam"), &ipam)?;
        self.cni = dir.join("tabby-cni");
        Ok(())
    }

    /// Gives every later plugin call the variable `name` (a benchmark's
    /// `TABBY_STAGES_FILE`).
    pub fn set_plugin_env(&mut self, name: &str, value: &str) {
        self.plugin_env.push((name.to_owned(), value.to_owned()));
    }

    /// Keeps the cluster's resources under `prefix` (before any agent starts) on
    /// etcd: a lab that tools such as calicoctl-rs read uses etcd's default prefix.
    pub fn set_prefix(&mut self, prefix: &str) {
        if let Backing::Etcd { prefix: mine, .. } = &mut self.backing {
            *mine = prefix.to_owned();
        }
    }

    /// Runs `work` against the cluster's datastore as an admin, from the router's
    /// namespace.
    pub fn datastore<T: Send>(
        &self,
        work: impl AsyncFnOnce(Arc<dyn Backend>) -> T + Send,
    ) -> Result<T> {
        self.lab.core().context("no router")?.run(|| {
            crate::runtime().block_on(async {
                let store = self.backing.connect().await?;
                anyhow::Ok(work(store).await)
            })
        })?
    }

    /// Creates `resource` in the cluster's datastore.
    pub fn create<R: Resource>(&self, resource: &R) -> Result<R> {
        self.datastore(async |store| store.create(resource).await)?
            .with_context(|| format!("creating {} {}", R::KIND, resource.name()))
    }

    /// The datastore flags an operator's tool (calicoctl-rs) takes to reach the
    /// cluster's datastore as an admin from the router's namespace.
    pub fn operator_flags(&self) -> Vec<String> {
        self.backing.args(&Identity::Admin)
    }

    /// `calicoctl-rs` with [`Cluster::operator_flags`], run from the router's
    /// namespace, as an operator runs it.
    pub fn calicoctl(&self) -> Result<std::process::Command> {
        let core = self.lab.core().context("no router")?;
        let mut command = core.command(binary("calicoctl-rs")?);
        command.args(self.operator_flags());
        Ok(command)
    }

    /// Which families pods get an address of (IPv4 only unless set): tabby-ipam's
    /// `assign_ipv4` and `assign_ipv6`.
    pub fn set_pod_families(&mut self, ipv4: bool, ipv6: bool) {
        self.pod_families = (ipv4, ipv6);
    }

    /// A directory for the test's own files (e.g. BGP passwords), removed with
    /// the cluster.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn node_dir(&self, node: &str) -> PathBuf {
        self.dir.path().join(node)
    }

    /// The agent's status socket on `node`.
    pub fn socket(&self, node: &str) -> PathBuf {
        self.node_dir(node).join("agent.sock")
    }

    /// Starts tabby-agent on `node`, speaking from its lab address.
    pub fn start_agent(&mut self, node: &str) -> Result<()> {
        self.start_agent_with(node, &[])
    }

    /// Starts tabby-agent on `node` with extra flags (kept for restarts).
    pub fn start_agent_with(&mut self, node: &str, extra: &[&str]) -> Result<()> {
        if !extra.is_empty() {
            self.extra_args.insert(
                node.to_owned(),
                extra.iter().map(|s| s.to_string()).collect(),
            );
        }
        self.register_node(node)?;
        let lab_node = self.lab.node(node);
        let dir = self.node_dir(node);
        std::fs::create_dir_all(&dir)?;
        let path = |file: &str| dir.join(file).display().to_string();
        let mut args = vec![format!("--node-name={node}")];
        args.extend(self.backing.args(&Identity::Agent(node.to_owned())));
        args.extend([
            // Each family the node has an address of; `none` for IPv4 on an
            // IPv6-only node.
            format!(
                "--ip={}",
                address_with_subnet(lab_node).unwrap_or_else(|_| "none".into())
            ),
            format!("--socket={}", path("agent.sock")),
            format!("--mtu-file={}", path("mtu")),
            format!("--nodename-file={}", path("nodename")),
            format!("--last-view-file={}", path("last-view.json")),
            // Password files the tests write (see `Cluster::dir`).
            format!("--bgp-password-dir={}", self.dir.path().display()),
            "--resync-interval=5s".into(),
        ]);
        if let Some(v6) = lab_node.addresses.iter().find(|a| a.addr().is_ipv6()) {
            args.push(format!("--ip6={v6}"));
        }
        let extra = self.extra_args.get(node).cloned().unwrap_or_default();
        if !extra
            .iter()
            .any(|a| a.starts_with("--log=") || a.starts_with("--log-level"))
        {
            args.push("--log=info,agent=debug".into());
        }
        args.extend(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let label = format!("agent-{node}");
        let agent = self.agent.display().to_string();
        let process = lab_node.spawn(&label, &agent, &args)?;
        self.agents.insert(node.to_owned(), process);
        Ok(())
    }

    /// Starts the agent of every node in `nodes`, then waits until each is ready
    /// (started together, so they come up side by side).
    pub fn start_agents(&mut self, nodes: &[&str], ready: Duration) -> Result<()> {
        for node in nodes {
            self.start_agent(node)?;
        }
        for node in nodes {
            self.wait_ready(node, ready)?;
        }
        Ok(())
    }

    /// SIGKILLs the agent on `node`: nothing of it runs any more.
    pub fn kill_agent(&mut self, node: &str) {
        if let Some(mut process) = self.agents.remove(node) {
            process.kill();
        }
    }

    /// The agent process on `node`.
    pub fn agent(&mut self, node: &str) -> Option<&mut Process> {
        self.agents.get_mut(node)
    }

    /// What the agent on `node` says of itself (`tabby.agent.v1.GetNode`).
    pub fn node_status(&self, node: &str) -> Result<proto::agent::GetNodeResponse> {
        let socket = self.socket(node);
        crate::runtime().block_on(async {
            let channel = proto::client::connect_unix(&socket).await?;
            let mut client = proto::agent::agent_status_client::AgentStatusClient::new(channel);
            Ok(client
                .get_node(proto::agent::GetNodeRequest {})
                .await?
                .into_inner())
        })
    }

    /// Waits until the agent on `node` is ready (its `/readyz` condition, read
    /// over its status socket); fails at once if the agent exits.
    pub fn wait_ready(&mut self, node: &str, timeout: Duration) -> Result<()> {
        let socket = self.socket(node);
        let what = format!("the agent on {node} to be ready");
        crate::wait::wait_serving(self.agents.get_mut(node), timeout, &what, || {
            crate::runtime().block_on(async {
                let channel = proto::client::connect_unix(&socket).await?;
                let mut client = proto::agent::agent_status_client::AgentStatusClient::new(channel);
                let me = client
                    .get_node(proto::agent::GetNodeRequest {})
                    .await?
                    .into_inner();
                anyhow::Ok(if me.ready {
                    Ok(())
                } else {
                    Err(format!("{me:?}"))
                })
            })
        })
    }

    /// The CNI network config every node uses.
    fn conf(&self, node: &str) -> Value {
        let mut conf = json!({
            "cniVersion": "1.0.0",
            "name": NETWORK,
            "type": "tabby-cni",
            "mtu_file": self.node_dir(node).join("mtu"),
            "nodename": node,
            "ipam": {
                "type": "tabby-ipam",
                "state_dir": self.node_dir(node).join("ipam"),
                "assign_ipv4": self.pod_families.0.to_string(),
                "assign_ipv6": self.pod_families.1.to_string(),
            },
        });
        if let (Some(conf), Value::Object(keys)) =
            (conf.as_object_mut(), self.backing.cni_keys(node))
        {
            conf.extend(keys);
        }
        conf
    }

    /// Calls tabby-cni on `node` for pod `name` in its first sandbox, `ctr-<name>`
    /// (netns `None`: it is gone).
    pub fn cni(
        &self,
        command: &str,
        node: &str,
        name: &str,
        netns: Option<&Path>,
    ) -> Result<Value> {
        let container = format!("ctr-{name}");
        let sandbox = Sandbox {
            node,
            pod: name,
            container: &container,
            netns,
        };
        self.cni_sandbox(command, &sandbox)
    }

    /// Calls tabby-cni for `sandbox`; an error answer is an error.
    pub fn cni_sandbox(&self, command: &str, sandbox: &Sandbox<'_>) -> Result<Value> {
        let child = self.start_cni(command, sandbox, self.cni_path.path())?;
        let output = child.wait_with_output().context("waiting for tabby-cni")?;
        let answer = crate::cni::answer(&output)?;
        if !answer.success {
            bail!(
                "CNI {command} of {} ({}) on {}: {} {}",
                sandbox.pod,
                sandbox.container,
                sandbox.node,
                answer.json,
                answer.stderr
            );
        }
        Ok(answer.json)
    }

    /// Starts tabby-cni for `sandbox`, its IPAM plugin looked up in `cni_path`
    /// (`CNI_PATH`; a test may put a wrapper of [`Cluster::ipam_plugin`] there).
    pub fn start_cni(
        &self,
        command: &str,
        sandbox: &Sandbox<'_>,
        cni_path: &Path,
    ) -> Result<std::process::Child> {
        let netns = sandbox
            .netns
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let args = format!(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE={NAMESPACE};K8S_POD_NAME={}",
            sandbox.pod
        );
        let cni_path = cni_path.display().to_string();
        let mut vars = vec![
            ("CNI_COMMAND", command),
            ("CNI_CONTAINERID", sandbox.container),
            ("CNI_NETNS", &netns),
            ("CNI_IFNAME", POD_INTERFACE),
            ("CNI_ARGS", &args),
            ("CNI_PATH", &cni_path),
        ];
        vars.extend(
            self.plugin_env
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        crate::cni::start_plugin(
            self.lab.node(sandbox.node).command(&self.cni),
            &vars,
            &self.conf(sandbox.node),
        )
    }

    /// The tabby-ipam binary tabby-cni delegates to.
    pub fn ipam_plugin(&self) -> Result<PathBuf> {
        binary("tabby-ipam")
    }

    /// A new pod on `node`, attached as kubelet's runtime attaches one.
    pub fn add_pod(&self, node: &str, name: &str) -> Result<Pod> {
        let netns = self.lab.pod(name)?;
        self.add_sandbox(node, name, &format!("ctr-{name}"), netns)
    }

    /// Pod `name` on `node` attached in a sandbox of its own: container id
    /// `container`, namespace `netns` (a pod's sandbox made again gets new ones).
    /// On the Kubernetes datastore the Pod object is made first, as kubelet's is.
    pub fn add_sandbox(
        &self,
        node: &str,
        name: &str,
        container: &str,
        netns: Netns,
    ) -> Result<Pod> {
        self.as_kubelet(async |client| objects::put_pod(&client, NAMESPACE, name, node).await)
            .with_context(|| format!("creating the Pod {name}"))?;
        let path = netns.path();
        let sandbox = Sandbox {
            node,
            pod: name,
            container,
            netns: Some(&path),
        };
        let result = self.cni_sandbox("ADD", &sandbox)?;
        let mut ips = Vec::new();
        for entry in result["ips"].as_array().into_iter().flatten() {
            let address = entry["address"].as_str().unwrap_or_default();
            let ip: IpAddr = address
                .split('/')
                .next()
                .unwrap_or_default()
                .parse()
                .with_context(|| format!("ADD of {name}: address {address:?}"))?;
            ips.push(ip);
        }
        let ip = *ips
            .first()
            .ok_or_else(|| anyhow!("ADD of {name} returned no address: {result}"))?;
        Ok(Pod {
            name: name.to_owned(),
            node: node.to_owned(),
            container: container.to_owned(),
            ip,
            ips,
            veth: crate::cni::veth_name(NAMESPACE, name)?,
            netns,
        })
    }

    /// One pod on each node of `nodes`, named `pod-<node>`.
    pub fn add_pod_per_node(&self, nodes: &[&str]) -> Result<Vec<Pod>> {
        nodes
            .iter()
            .map(|node| self.add_pod(node, &format!("pod-{node}")))
            .collect()
    }

    /// Deletes `pod` as kubelet does: CNI DEL, then the Pod object goes.
    pub fn delete_pod(&self, pod: Pod) -> Result<()> {
        let path = pod.netns.path();
        let sandbox = Sandbox {
            node: &pod.node,
            pod: &pod.name,
            container: &pod.container,
            netns: Some(&path),
        };
        self.cni_sandbox("DEL", &sandbox)?;
        self.as_kubelet(async |client| objects::delete_pod(&client, NAMESPACE, &pod.name).await)
    }
}

/// One sandbox of a pod, as the runtime names it to the CNI plugins.
#[derive(Debug, Clone, Copy)]
pub struct Sandbox<'a> {
    pub node: &'a str,
    pub pod: &'a str,
    /// `CNI_CONTAINERID`: each sandbox the runtime makes for a pod has its own.
    pub container: &'a str,
    /// `CNI_NETNS`; `None` once the namespace is gone.
    pub netns: Option<&'a Path>,
}

/// The node's lab IPv4 address with its subnet's length.
pub fn address_with_subnet(node: &Node) -> Result<String> {
    node.addresses
        .iter()
        .find(|a| a.addr().is_ipv4())
        .map(ToString::to_string)
        .context("the node has no IPv4 address")
}
