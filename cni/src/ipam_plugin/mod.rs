//! `tabby-ipam`, the CNI IPAM plugin (spec 1.0.0; 0.3.x, 0.4.0 and 1.1.0 configs
//! too). `tabby-cni` runs it the standard way, with the runtime's stdin and
//! environment.
//!
//! ```text
//!  ADD     lock the node ─ load view ─ assign (handle <network>.<container id>) ─ save ─ result
//!  DEL     lock the node ─ release the handle (nothing held: success) ─ save
//!  CHECK   the handle holds the addresses of prevResult
//!  STATUS  the datastore answers and a pool is enabled       (CNI 1.1)
//!  GC      release this network's handles on the node that the runtime's
//!          cni.dev/valid-attachments no longer lists         (CNI 1.1)
//!  VERSION the versions above
//! ```
//!
//! A repeated ADD for one container returns what the first one allocated.

pub mod config;
pub mod state_file;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::IpAddr;
use std::sync::Arc;

use api::datastore::{Backend, ConnectError, DatastoreConfig, list_all};
use api::resources::IPPool;
use futures::FutureExt;
use futures::future::BoxFuture;
use ipam::assign::{Allocator, AssignRequest, ExistingHandle};
use ipam::error::IpamError;
use ipam::handles::{addresses_of, cni_handle_id, cni_handle_prefix};
use ipam::table::attr;
use tracing::Instrument;

use self::config::IpamNetConf;
use self::state_file::NodeLock;
use crate::Outcome;
use crate::error::CniError;
use crate::spec::env::{Command, Env};
use crate::spec::result::CniResult;
use crate::spec::version;

/// Opens the datastore a config names: [`connect`] in the binary, a memory store in
/// tests.
pub type Connect = dyn Fn(&DatastoreConfig) -> BoxFuture<'static, Result<Arc<dyn Backend>, ConnectError>>
    + Send
    + Sync;

/// The binary's [`Connect`]: `api::datastore::connect`.
pub fn connect(
    conf: &DatastoreConfig,
) -> BoxFuture<'static, Result<Arc<dyn Backend>, ConnectError>> {
    let conf = conf.clone();
    async move { api::datastore::connect(&conf).await }.boxed()
}

/// One plugin call: environment through `var`, network config on `stdin`.
pub async fn invoke(
    var: &(dyn Fn(&str) -> Option<String> + Sync),
    stdin: impl Read,
    connect: &Connect,
) -> Outcome {
    let (raw, version) = crate::read_stdin(stdin);
    let result = match raw {
        Ok(raw) => dispatch(var, &raw, &version, connect).await,
        Err(error) => Err(error),
    };
    Outcome::of(&version, result)
}

async fn dispatch(
    var: &(dyn Fn(&str) -> Option<String> + Sync),
    raw: &[u8],
    version: &str,
    connect: &Connect,
) -> Result<String, CniError> {
    let (env, conf, node) = {
        let _config = tracing::debug_span!(target: "stage", "ipam.config").entered();
        let env = Env::read(var)?;
        if env.command == Command::Version {
            return Ok(version::reply(version));
        }
        let conf = IpamNetConf::parse(raw)?;
        for warning in &conf.net.warnings {
            tracing::warn!("{warning}");
        }
        version::allows(env.command, &conf.net.cni_version)?;
        let node = conf.net.node(var)?;
        (env, conf, node)
    };
    let store = connect(&conf.datastore)
        .instrument(tracing::debug_span!(target: "stage", "datastore.connect"))
        .await
        .map_err(|source| CniError::Connect {
            store: conf.datastore.to_string(),
            source,
        })?;
    let handle = cni_handle_id(&conf.net.name, &env.container_id);
    match env.command {
        Command::Add => add(&env, &conf, &node, store, &handle).await,
        Command::Del => {
            locked(&conf, &node, store, async |allocator| {
                allocator.release_handle(&handle).await.map(drop)
            })
            .await?;
            Ok(String::new())
        }
        Command::Check => check(&conf, &node, &*store, &handle)
            .await
            .map(|()| String::new()),
        Command::Status => status(&*store).await.map(|()| String::new()),
        Command::Gc => {
            locked(&conf, &node, store, async |allocator| {
                gc(&conf, allocator).await
            })
            .await?;
            Ok(String::new())
        }
        Command::Version => unreachable!("answered above"),
    }
}

/// Runs `work` holding the node's lock, with the saved view; saves it after (a view
/// that cannot be saved is a warning: the datastore has the change already).
async fn locked<T>(
    conf: &IpamNetConf,
    node: &str,
    store: Arc<dyn Backend>,
    work: impl AsyncFnOnce(&Allocator) -> Result<T, IpamError>,
) -> Result<T, CniError> {
    let (lock, state) = tracing::debug_span!(target: "stage", "ipam.lock").in_scope(|| {
        let lock = NodeLock::acquire(&conf.ipam.state_dir, node, conf.ipam.lock_timeout)?;
        let state = lock.load(node);
        Ok::<_, CniError>((lock, state))
    })?;
    let allocator = Allocator::with_state(store, state);
    let outcome = work(&allocator)
        .instrument(tracing::debug_span!(target: "stage", "ipam.work"))
        .await;
    // Saved also after a failure: the view is as current as the datastore left it.
    let state = allocator.state().await;
    if let Err(error) =
        tracing::debug_span!(target: "stage", "ipam.save").in_scope(|| lock.save(&state))
    {
        tracing::warn!(%error, "the next call on this node starts from the datastore");
    }
    Ok(outcome?)
}

async fn add(
    env: &Env,
    conf: &IpamNetConf,
    node: &str,
    store: Arc<dyn Backend>,
    handle: &str,
) -> Result<String, CniError> {
    let mut attrs = BTreeMap::from([
        (attr::NODE.to_owned(), node.to_owned()),
        (attr::CONTAINER_ID.to_owned(), env.container_id.clone()),
        (attr::INTERFACE.to_owned(), env.ifname.clone()),
    ]);
    if let (Some(namespace), Some(pod)) = (&env.pod.namespace, &env.pod.name) {
        attrs.insert(attr::NAMESPACE.to_owned(), namespace.clone());
        attrs.insert(attr::POD.to_owned(), pod.clone());
    }
    let requested: Vec<IpAddr> = env
        .pod
        .requested_ips
        .iter()
        .chain(&conf.net.requested_ips)
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let addresses = locked(conf, node, store, async |allocator| {
        if requested.is_empty() {
            let request = AssignRequest {
                attrs,
                pools_v4: conf.ipam.ipv4_pools.clone(),
                pools_v6: conf.ipam.ipv6_pools.clone(),
                existing_handle: ExistingHandle::Reuse,
                ..AssignRequest::new(
                    handle,
                    usize::from(conf.ipam.assign_ipv4),
                    usize::from(conf.ipam.assign_ipv6),
                )
            };
            let assigned = allocator.auto_assign(&request).await?;
            Ok(assigned.addresses.into_iter().map(|a| a.ip).collect())
        } else {
            assign_requested(allocator, handle, &requested, attrs).await
        }
    })
    .await?;
    let _result = tracing::debug_span!(target: "stage", "ipam.result").entered();
    Ok(CniResult::addresses(&conf.net.cni_version, addresses).to_json())
}

/// Assigns the requested addresses; one already held by this handle (a repeated
/// ADD) is fine. All or nothing.
async fn assign_requested(
    allocator: &Allocator,
    handle: &str,
    requested: &[IpAddr],
    attrs: BTreeMap<String, String>,
) -> Result<Vec<IpAddr>, IpamError> {
    for &ip in requested {
        match allocator.assign_ip(ip, handle, attrs.clone()).await {
            Ok(_) => {}
            Err(IpamError::InUse { holder, .. }) if holder.as_deref() == Some(handle) => {}
            Err(error) => {
                if let Err(undo) = allocator.release_handle(handle).await {
                    tracing::warn!(%undo, handle, "releasing after a refused address");
                }
                return Err(error);
            }
        }
    }
    Ok(requested.to_vec())
}

async fn check(
    conf: &IpamNetConf,
    node: &str,
    store: &dyn Backend,
    handle: &str,
) -> Result<(), CniError> {
    let held: BTreeSet<IpAddr> = addresses_of(store, handle, node)
        .await?
        .into_iter()
        .map(|a| a.ip)
        .collect();
    if held.is_empty() {
        return Err(CniError::Check(format!(
            "handle {handle} holds no address: the attachment lost its IPAM allocation; \
             delete and re-add the pod"
        )));
    }
    let expected: BTreeSet<IpAddr> = conf
        .net
        .prev_result()?
        .ips
        .iter()
        .map(|ip| ip.address.addr())
        .collect();
    let missing: Vec<String> = expected
        .difference(&held)
        .map(|ip| ip.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(CniError::Check(format!(
            "prevResult lists {} but handle {handle} holds {}: delete and re-add the pod",
            missing.join(", "),
            held.iter()
                .map(|ip| ip.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(())
}

async fn status(store: &dyn Backend) -> Result<(), CniError> {
    let pools = list_all::<IPPool, _>(store, None)
        .await
        .map_err(|e| CniError::NotReady(e.to_string()))?
        .items;
    if pools.iter().all(|p| p.spec.disabled) {
        return Err(CniError::NotReady(
            "no enabled IPPool: create one, or enable a disabled pool".into(),
        ));
    }
    Ok(())
}

/// Releases the network's handles in the node's blocks that the runtime no longer
/// lists. Addresses borrowed from other nodes' blocks are left to the controller.
async fn gc(conf: &IpamNetConf, allocator: &Allocator) -> Result<(), IpamError> {
    let prefix = cni_handle_prefix(&conf.net.name);
    let valid: BTreeSet<String> = conf
        .net
        .valid_attachments
        .iter()
        .map(|a| cni_handle_id(&conf.net.name, &a.container_id))
        .collect();
    let local = allocator.local_handles(&prefix).await?;
    for handle in local.difference(&valid) {
        tracing::info!(
            handle,
            "GC: releasing an attachment the runtime no longer lists"
        );
        allocator.release_handle(handle).await?;
    }
    Ok(())
}
