//! tabby-cni, the interface plugin: the pod's veth, addresses and routes, its
//! addresses from the IPAM plugin, the pod recorded in the datastore.
//!
//! ```text
//!  runtime ── env + stdin ──▶ invoke ─┬─ ADD:   ipam ADD ─▶ pod::attach ─▶ workload::register
//!                                     │         ─▶ result JSON (failure: detach, ipam DEL, error)
//!                                     ├─ DEL:   pod::detach ─▶ workload::unregister ─▶ ipam DEL
//!                                     ├─ CHECK: pod::check against prevResult ─▶ ipam CHECK
//!                                     └─ VERSION; STATUS and GC (CNI 1.1) go to the IPAM plugin
//! ```
//!
//! IPAM is whatever `ipam.type` names on `CNI_PATH` (`tabby-ipam`, or `host-local`),
//! run with the same stdin and environment as the standard delegation asks
//! ([`delegate`]). With a datastore configured (`datastore_type`, `etcd_endpoints`,
//! `kubernetes`), the pod is recorded as a `WorkloadEndpoint` for IPAM's garbage
//! collector and the CLI ([`workload`]). The kernel work is the agent's
//! `dataplane::pod`.

pub mod delegate;
pub mod workload;

use std::fs::File;
use std::net::IpAddr;
use std::path::Path;

use agent::dataplane::Mac;
use agent::dataplane::pod::{self, HOST_MAC, Workload};
use ipnet::IpNet;

use crate::Outcome;
use crate::error::{CniError, code};
use crate::spec::config::NetConf;
use crate::spec::env::{Command, Env};
use crate::spec::result::{CniResult, Interface, IpConfig, RouteEntry};
use crate::spec::version;

/// One plugin call: the environment through `var`, the network config on `stdin`.
pub fn invoke(var: &dyn Fn(&str) -> Option<String>, stdin: impl std::io::Read) -> Outcome {
    let (raw, version) = crate::read_stdin(stdin);
    Outcome::of(&version, raw.and_then(|raw| dispatch(var, &raw, &version)))
}

fn dispatch(
    var: &dyn Fn(&str) -> Option<String>,
    raw: &[u8],
    version: &str,
) -> Result<String, CniError> {
    let config = tracing::debug_span!(target: "stage", "cni.config").entered();
    let env = Env::read(var)?;
    if env.command == Command::Version {
        return Ok(version::reply(version));
    }
    let conf = NetConf::parse(raw)?;
    for warning in &conf.warnings {
        tracing::warn!("{warning}");
    }
    version::allows(env.command, &conf.cni_version)?;
    drop(config);
    let ipam = &conf.ipam_plugin;
    let path = &env.path;
    match env.command {
        Command::Add => add(&env, &conf, var, raw),
        Command::Del => {
            pod::detach(&env.host_veth())?;
            if conf.has_datastore() {
                workload::unregister(&conf, &env)?;
            }
            delegate::run(ipam, path, Command::Del, raw)?;
            Ok(String::new())
        }
        Command::Check => check(&env, &conf, raw).map(|()| String::new()),
        // tabby-cni keeps no state of its own: readiness and stale attachments
        // are the IPAM plugin's business, as CNI 1.1 asks of delegating plugins.
        Command::Status | Command::Gc => {
            delegate::run(ipam, path, env.command, raw)?;
            Ok(String::new())
        }
        Command::Version => unreachable!("answered above"),
    }
}

fn add(
    env: &Env,
    conf: &NetConf,
    var: &dyn Fn(&str) -> Option<String>,
    raw: &[u8],
) -> Result<String, CniError> {
    let mtu = conf.mtu()?;
    // Opened before IPAM, so a pod without a namespace allocates nothing.
    let (netns_path, netns) =
        tracing::debug_span!(target: "stage", "cni.netns").in_scope(|| open_netns(env))?;
    let ipam = &conf.ipam_plugin;
    let allocated = tracing::debug_span!(target: "stage", "cni.ipam")
        .in_scope(|| delegate::add(ipam, &env.path, raw))?;
    let addresses: Vec<IpAddr> = allocated.ips.iter().map(|ip| ip.address.addr()).collect();
    let host_veth = env.host_veth();
    let workload = Workload {
        host_veth: &host_veth,
        ifname: &env.ifname,
        netns: &netns,
        mtu,
        addresses: &addresses,
    };
    let attached = if addresses.is_empty() {
        Err(CniError::Delegate {
            plugin: ipam.to_owned(),
            command: "ADD",
            code: code::IO,
            msg: "returned no address: check the IPAM configuration's pools or ranges".into(),
            details: String::new(),
        })
    } else {
        tracing::debug_span!(target: "stage", "cni.veth")
            .in_scope(|| pod::attach(&workload))
            .map_err(CniError::from)
            .and_then(|pod_mac| {
                if conf.has_datastore() {
                    let pod = workload::Attached {
                        host_veth: &host_veth,
                        mac: pod_mac,
                        addresses: &addresses,
                    };
                    tracing::debug_span!(target: "stage", "cni.workload")
                        .in_scope(|| workload::register(conf, var, env, &pod))?;
                }
                Ok(pod_mac)
            })
    };
    match attached {
        Ok(pod_mac) => Ok(
            tracing::debug_span!(target: "stage", "cni.result").in_scope(|| {
                add_result(&workload, netns_path, pod_mac, allocated)
                    .for_version(&conf.cni_version)
                    .to_json()
            }),
        ),
        Err(error) => {
            // Undo in reverse; the runtime needs the original error, and a
            // failed undo is left to its DEL (which the spec has it send).
            if let Err(undo) = pod::detach(&host_veth) {
                tracing::warn!(%undo, "removing {host_veth} after a failed ADD");
            }
            if let Err(undo) = delegate::run(ipam, &env.path, Command::Del, raw) {
                tracing::warn!(%undo, "releasing the address after a failed ADD");
            }
            Err(error)
        }
    }
}

fn add_result(
    workload: &Workload<'_>,
    netns_path: &Path,
    pod_mac: Option<Mac>,
    allocated: CniResult,
) -> CniResult {
    CniResult {
        cni_version: version::LATEST.to_owned(),
        interfaces: vec![
            Interface {
                name: workload.host_veth.to_owned(),
                mac: HOST_MAC.to_string(),
                sandbox: String::new(),
            },
            Interface {
                name: workload.ifname.to_owned(),
                mac: pod_mac.map(|m| m.to_string()).unwrap_or_default(),
                sandbox: netns_path.display().to_string(),
            },
        ],
        ips: workload
            .addresses
            .iter()
            .map(|&ip| IpConfig {
                version: None,
                address: IpNet::from(ip),
                gateway: None,
                interface: Some(1),
            })
            .collect(),
        routes: pod::default_routes(workload.addresses)
            .into_iter()
            .map(|(dst, gw)| RouteEntry { dst, gw: Some(gw) })
            .collect(),
        dns: allocated.dns,
    }
}

fn check(env: &Env, conf: &NetConf, raw: &[u8]) -> Result<(), CniError> {
    let prev = conf.prev_result()?;
    let (_, netns) = open_netns(env)?;
    let addresses: Vec<IpAddr> = prev.ips.iter().map(|ip| ip.address.addr()).collect();
    let pod_mac = prev
        .interfaces
        .iter()
        .find(|i| i.name == env.ifname && !i.sandbox.is_empty() && !i.mac.is_empty())
        .map(|i| i.mac.as_str());
    let host_veth = env.host_veth();
    pod::check(
        &Workload {
            host_veth: &host_veth,
            ifname: &env.ifname,
            netns: &netns,
            mtu: conf.mtu()?,
            addresses: &addresses,
        },
        pod_mac,
    )?;
    delegate::run(&conf.ipam_plugin, &env.path, Command::Check, raw)?;
    Ok(())
}

fn open_netns(env: &Env) -> Result<(&Path, File), CniError> {
    let path = env.netns.as_deref().ok_or(CniError::Env {
        name: "CNI_NETNS",
        problem: "is not set".into(),
    })?;
    let file = File::open(path).map_err(|source| CniError::UnknownContainer {
        path: path.to_owned(),
        source,
    })?;
    Ok((path, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(vars: &[(&str, &str)], stdin: &str) -> Outcome {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        invoke(
            &|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
            stdin.as_bytes(),
        )
    }

    #[test]
    fn version_lists_the_supported_spec_versions() {
        let outcome = call(&[("CNI_COMMAND", "VERSION")], "");
        assert!(outcome.success);
        let json: serde_json::Value = serde_json::from_str(&outcome.stdout).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "cniVersion": "1.0.0",
                "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
            })
        );
    }

    #[test]
    fn an_error_after_the_config_is_read_speaks_the_configs_version() {
        let outcome = call(
            &[
                ("CNI_COMMAND", "CHECK"),
                ("CNI_CONTAINERID", "c1"),
                ("CNI_NETNS", "/nonexistent/netns"),
                ("CNI_IFNAME", "eth0"),
                ("CNI_PATH", "/nonexistent"),
            ],
            r#"{"cniVersion":"0.3.1","name":"k8s","type":"tabby-cni","ipam":{"type":"host-local"}}"#,
        );
        assert!(!outcome.success);
        let json: serde_json::Value = serde_json::from_str(&outcome.stdout).unwrap();
        assert_eq!(json["cniVersion"], "0.3.1");
        assert_eq!(json["code"], 1);
    }
}
