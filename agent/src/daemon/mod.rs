//! `tabby-agent`, the daemon: find this node's address (or take the one the
//! operator pinned in its `Node`), register the node, read
//! the kernel back, follow the datastore and the speaker, and keep kernel and BGP
//! at the desired state ([`agent`] is the loop).

mod agent;
pub mod last_view;
pub mod network;
mod ongoing;
pub mod query;
mod speaker;
pub mod status;
mod sync;
pub mod watch;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use api::datastore::Backend;
use api::resources::{AddressFamily, AsNumber};

use crate::dataplane::netlink::socket::Socket;
use crate::dataplane::{NetlinkError, Reconciler};
use crate::desired::NodeSettings;
use crate::node::autodetect::{self, AddressChoice, DetectError};
use crate::node::{self, Identity, RegisterError};

/// The daemon's settings (from flags and environment, see `config`).
#[derive(Debug, Clone)]
pub struct Options {
    pub node_name: String,
    pub ipv4: AddressChoice,
    pub ipv6: AddressChoice,
    pub as_number: Option<AsNumber>,
    pub router_id: crate::peering::RouterId,
    pub labels: BTreeMap<String, String>,
    /// MTU for tunnels and pods; derived from the underlay when unset.
    pub mtu: Option<u32>,
    pub check_ownership: bool,
    /// BGP password files must be in this directory.
    pub bgp_password_dir: PathBuf,
    /// Full resync of kernel state and NAT.
    pub resync: Duration,
    /// How long an unwanted workload route survives (the CNI plugin's head start).
    pub workload_grace: Duration,
    /// The longest the dataplane keeps gateway routes unchanged after a restart
    /// while BGP re-learns.
    pub bgp_sync_timeout: Duration,
    /// Where the pods' MTU is written for `tabby-cni`.
    pub mtu_file: Option<PathBuf>,
    /// Where this node's name is written for `tabby-cni`.
    pub nodename_file: Option<PathBuf>,
    /// Pools to create while the cluster has none of their family
    /// ([`node::default_pools`]).
    pub default_pools: Vec<api::resources::IPPool>,
    /// Where the last datastore view is kept, to start from when the datastore is
    /// unreachable at start ([`last_view`]).
    pub last_view_file: Option<PathBuf>,
    /// The Kubernetes API to read Services from when the datastore is elsewhere
    /// (etcd); on the Kubernetes datastore its own client is used.
    pub services_api: Option<api::datastore::config::KubernetesConfig>,
}

impl Options {
    /// Options with the defaults for everything but the node's name.
    pub fn new(node_name: impl Into<String>) -> Self {
        Self {
            node_name: node_name.into(),
            ipv4: AddressChoice::Autodetect(autodetect::Method::FirstFound),
            ipv6: AddressChoice::None,
            as_number: None,
            router_id: crate::peering::RouterId::NodeAddress,
            labels: BTreeMap::new(),
            mtu: None,
            check_ownership: true,
            bgp_password_dir: crate::peering::passwords::DEFAULT_DIR.into(),
            resync: Duration::from_secs(30),
            workload_grace: Duration::from_secs(10),
            bgp_sync_timeout: Duration::from_secs(30),
            mtu_file: None,
            nodename_file: None,
            default_pools: Vec::new(),
            last_view_file: None,
            services_api: None,
        }
    }
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("reading this node's interfaces: {0}")]
    Interfaces(NetlinkError),
    #[error("choosing this node's {family} address: {source}")]
    Address {
        family: &'static str,
        source: DetectError,
    },
    #[error(
        "the {family:?} address pinned in Node {node:?} (spec.bgp.pinnedAddresses) cannot be \
         used: {source}; unpin it with calicoctl-rs patch node {node} -p \
         '{{\"spec\":{{\"bgp\":{{\"pinnedAddresses\":null}}}}}}'"
    )]
    Pinned {
        node: String,
        family: AddressFamily,
        source: DetectError,
    },
    #[error("reading the Kubernetes Node's addresses (kubernetes-internal-ip): {0}")]
    NodeAddresses(api::datastore::Error),
    #[error("creating the default pool (CALICO_IPV4POOL_*, CALICO_IPV6POOL_*): {0}")]
    DefaultPool(api::datastore::Error),
    #[error(transparent)]
    Register(#[from] Box<RegisterError>),
    #[error("reading the kernel's routes back: {0}")]
    Kernel(NetlinkError),
    #[error("writing the node's name to {}: {source}", path.display())]
    NodenameFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "IP forwarding (net.{key}) is off and cannot be switched on: {source}; \
         set it on the node (sysctl -w net.{key}=1)"
    )]
    Forwarding {
        key: &'static str,
        source: std::io::Error,
    },
}

/// Writes `content` and a newline to `path` atomically (a reader never sees half
/// a file), creating the directory.
pub(crate) fn write_file(path: &std::path::Path, content: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, format!("{content}\n"))?;
    std::fs::rename(&temporary, path)
}

/// Routing pods' traffic is forwarding; per-interface settings on the pods' veths
/// (set by tabby-cni) cover only what arrives from pods.
fn enable_forwarding(ipv6: bool) -> Result<(), DaemonError> {
    let mut keys = vec!["ipv4.ip_forward"];
    if ipv6 {
        keys.push("ipv6.conf.all.forwarding");
    }
    for key in keys {
        let path = PathBuf::from(format!("/proc/sys/net/{}", key.replace('.', "/")));
        switch_on(&path).map_err(|source| DaemonError::Forwarding { key, source })?;
    }
    Ok(())
}

/// Writes 1 to a sysctl unless it is 1 already: `/proc/sys` is read-only in a
/// container without privileges, and a Kubernetes node forwards already (kubeadm
/// checks it), so tabby-agent's DaemonSet runs with capabilities instead.
fn switch_on(path: &std::path::Path) -> std::io::Result<()> {
    if std::fs::read_to_string(path)?.trim() == "1" {
        return Ok(());
    }
    std::fs::write(path, "1")
}

/// The Kubernetes Node's `InternalIP`s when `kubernetes-internal-ip` is asked for
/// and the datastore has Kubernetes Nodes (`None` otherwise: choosing then says
/// the method needs the kubernetes datastore).
async fn internal_ips(
    options: &Options,
    store: &dyn Backend,
) -> Result<Option<Vec<std::net::IpAddr>>, DaemonError> {
    let wanted = [&options.ipv4, &options.ipv6].into_iter().any(|c| {
        matches!(
            c,
            AddressChoice::Autodetect(autodetect::Method::KubernetesInternalIp)
        )
    });
    match store.inventory() {
        Some(core) if wanted => core
            .internal_ips(&options.node_name)
            .await
            .map(Some)
            .map_err(DaemonError::NodeAddresses),
        _ => Ok(None),
    }
}

pub use query::{Handle, Reporting, channels};
pub use status::Status;

/// Runs the agent until `shutdown` completes, publishing its state and answering
/// questions through `reporting` (see [`channels`]). Must run on a tokio runtime in
/// the node's network namespace.
pub async fn run(
    options: Options,
    store: Arc<dyn Backend>,
    reporting: Reporting,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    let mut socket = Socket::open().map_err(DaemonError::Interfaces)?;
    let interfaces = node::interfaces::read(&mut socket)
        .await
        .map_err(DaemonError::Interfaces)?;
    // An address the operator pinned in the Node wins over --ip/--ip6.
    let (stored, saved) = match node::register::stored(&*store, &options.node_name).await {
        Ok(stored) => (stored, None),
        Err(error) => {
            let saved = options.last_view_file.as_deref().and_then(|path| {
                last_view::load(path)
                    .inspect_err(|e| tracing::warn!(error = %e, "no saved datastore view to use"))
                    .ok()
            });
            let Some(saved) = saved else {
                return Err(Box::new(error).into());
            };
            tracing::warn!(
                %error,
                "the datastore is unreachable: starting from the last view saved, \
                 following the datastore as soon as it answers"
            );
            (saved.nodes.get(&options.node_name).cloned(), Some(saved))
        }
    };
    let pinned = node::register::pinned(stored.as_ref());
    let internal = internal_ips(&options, &*store).await?;
    let choose = |flag: &AddressChoice, family: AddressFamily| {
        let ipv4 = family == AddressFamily::IPv4;
        let family_name = if ipv4 { "IPv4" } else { "IPv6" };
        let Some(address) = pinned.get(&family) else {
            let flag = match &internal {
                Some(internal) => {
                    autodetect::internal_ip(flag, ipv4, internal).map_err(|source| {
                        DaemonError::Address {
                            family: family_name,
                            source,
                        }
                    })?
                }
                None => flag.clone(),
            };
            return autodetect::choose(&flag, ipv4, &interfaces, autodetect::source_towards)
                .map_err(|source| DaemonError::Address {
                    family: family_name,
                    source,
                });
        };
        tracing::info!(%address, "{family:?} address pinned in the Node resource");
        let choice = AddressChoice::Explicit(*address);
        autodetect::choose(&choice, ipv4, &interfaces, autodetect::source_towards).map_err(
            |source| DaemonError::Pinned {
                node: options.node_name.clone(),
                family,
                source,
            },
        )
    };
    let ipv4 = choose(&options.ipv4, AddressFamily::IPv4)?;
    let ipv6 = choose(&options.ipv6, AddressFamily::IPv6)?;
    for detected in ipv4.iter().chain(&ipv6) {
        tracing::info!(
            address = %detected.address,
            interface = %detected.interface,
            mtu = detected.mtu,
            "BGP address"
        );
    }
    let underlay_mtu = ipv4.as_ref().or(ipv6.as_ref()).map_or(1500, |d| d.mtu);
    let identity = Identity {
        name: options.node_name.clone(),
        ipv4: ipv4.map(|d| d.address),
        ipv6: ipv6.map(|d| d.address),
        as_number: options.as_number,
        labels: options.labels.clone(),
    };
    enable_forwarding(identity.ipv6.is_some())?;
    let registering = match saved {
        None => {
            join(&*store, &identity, &options.default_pools).await?;
            None
        }
        Some(_) => Some(tokio::spawn(join_when_reachable(
            store.clone(),
            identity,
            options.default_pools.clone(),
        ))),
    };
    if let Some(path) = &options.nodename_file {
        write_file(path, &options.node_name).map_err(|source| DaemonError::NodenameFile {
            path: path.clone(),
            source,
        })?;
    }

    let mut reconciler = Reconciler::new()
        .map_err(DaemonError::Kernel)?
        .with_workload_grace(options.workload_grace);
    let kernel = reconciler.read().await.map_err(DaemonError::Kernel)?;
    let restarted = !kernel.observed.routes.is_empty();
    if restarted {
        tracing::info!(
            routes = kernel.observed.routes.len(),
            "found tabby's routes in the kernel: keeping them while BGP re-learns"
        );
    }
    let settings = NodeSettings {
        name: options.node_name.clone(),
        underlay_mtu,
        mtu: options.mtu,
        check_ownership: options.check_ownership,
        router_id: options.router_id,
    };
    let (updates, receiver) = watch::channel();
    let mut watchers = watch::follow_all(store.clone(), updates.clone());
    let services_unread = match services_client(&options, &*store).await {
        Ok(client) => {
            watchers.extend(watch::follow_services(client, updates));
            None
        }
        Err(problem) => {
            tracing::info!("{problem}");
            Some(problem)
        }
    };
    let network = tokio::spawn(network::clear_when_ready(
        store.clone(),
        options.node_name.clone(),
        reporting.status.subscribe(),
    ));
    let node_name = options.node_name.clone();
    agent::Agent::new(
        options,
        settings,
        reconciler,
        restarted,
        reporting,
        store.clone(),
    )
    .starting_from(saved)
    .services_unread(services_unread)
    .run(receiver, shutdown)
    .await;
    for task in watchers.into_iter().chain(registering).chain([network]) {
        task.abort();
    }
    network::set_on_stop(&*store, &node_name).await;
    Ok(())
}

/// The client Services and EndpointSlices are read with: the Kubernetes
/// datastore's own, else one for [`Options::services_api`]; why not, otherwise.
async fn services_client(options: &Options, store: &dyn Backend) -> Result<kube::Client, String> {
    if let Some(client) = store.kube_client() {
        return Ok(client);
    }
    let Some(config) = &options.services_api else {
        return Err("Services are not read: the etcd datastore holds none, and no kubeconfig                     names a Kubernetes API (--services-kubeconfig or KUBECONFIG); only the                     configured service ranges are advertised"
            .into());
    };
    api::datastore::kube_client(config).await.map_err(|e| {
        format!("Services are not read ({e}); only the configured service ranges are advertised")
    })
}

/// Registers the node once the datastore answers (started from a saved view).
/// Creates the default pools the cluster lacks, then registers this node.
async fn join(
    store: &dyn Backend,
    identity: &Identity,
    default_pools: &[api::resources::IPPool],
) -> Result<(), DaemonError> {
    let created = node::default_pools::ensure(store, default_pools)
        .await
        .map_err(DaemonError::DefaultPool)?;
    for pool in created {
        tracing::info!(%pool, "default pool created from the environment");
    }
    node::register(store, identity).await.map_err(Box::new)?;
    tracing::info!(node = %identity.name, "node registered");
    Ok(())
}

/// [`join`], retried until the datastore answers (the agent runs from its last
/// view meanwhile).
async fn join_when_reachable(
    store: Arc<dyn Backend>,
    identity: Identity,
    default_pools: Vec<api::resources::IPPool>,
) {
    while let Err(error) = join(&*store, &identity, &default_pools).await {
        tracing::debug!(%error, "registering the node; retrying");
        tokio::time::sleep(REGISTER_RETRY).await;
    }
}

/// The wait between registrations while the datastore is unreachable.
const REGISTER_RETRY: Duration = Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sysctl_already_on_is_left_alone_and_one_off_is_switched_on() {
        let dir = tempfile::tempdir().unwrap();
        let on = dir.path().join("ip_forward");
        std::fs::write(&on, "1\n").unwrap();
        switch_on(&on).unwrap();
        // As the kernel shows it, not as switch_on would write it: untouched.
        assert_eq!(std::fs::read_to_string(&on).unwrap(), "1\n");

        let off = dir.path().join("forwarding");
        std::fs::write(&off, "0\n").unwrap();
        switch_on(&off).unwrap();
        assert_eq!(std::fs::read_to_string(&off).unwrap(), "1");
    }

    #[test]
    fn forwarding_that_cannot_be_switched_on_says_how_to_set_it_on_the_node() {
        let error = DaemonError::Forwarding {
            key: "ipv4.ip_forward",
            source: std::io::Error::from_raw_os_error(libc::EROFS),
        };
        assert_eq!(
            error.to_string(),
            "IP forwarding (net.ipv4.ip_forward) is off and cannot be switched on: \
             Read-only file system (os error 30); set it on the node \
             (sysctl -w net.ipv4.ip_forward=1)"
        );
    }
}
