//! The runtime's side of the call: the `CNI_*` environment variables, checked as
//! the spec requires them for each command.

use std::net::IpAddr;
use std::path::PathBuf;

use agent::veth::{container_veth_name, host_veth_name};

use super::config::parse_ip;
use crate::error::CniError;

/// `CNI_COMMAND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Version,
    /// CNI 1.1: is the plugin ready for ADDs?
    Status,
    /// CNI 1.1: garbage-collect attachments the runtime no longer knows.
    Gc,
}

impl Command {
    pub fn name(self) -> &'static str {
        match self {
            Self::Add => "ADD",
            Self::Del => "DEL",
            Self::Check => "CHECK",
            Self::Version => "VERSION",
            Self::Status => "STATUS",
            Self::Gc => "GC",
        }
    }
}

/// What `CNI_ARGS` says: the pod's Kubernetes identity (kubelet's runtimes pass
/// it) and addresses asked for explicitly (`IP=`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodArgs {
    /// `K8S_POD_NAMESPACE`
    pub namespace: Option<String>,
    /// `K8S_POD_NAME`
    pub name: Option<String>,
    /// `IP=10.0.0.5,fd00::5`
    pub requested_ips: Vec<IpAddr>,
}

/// The invocation's environment, checked for what the command needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    pub command: Command,
    pub container_id: String,
    /// Absent on DEL when the namespace is already gone.
    pub netns: Option<PathBuf>,
    pub ifname: String,
    pub pod: PodArgs,
    /// `CNI_PATH`: where delegated plugins are looked up.
    pub path: Vec<PathBuf>,
}

impl Env {
    /// Reads the environment through `var` (`std::env::var(..).ok()` in the binary).
    pub fn read(var: impl Fn(&str) -> Option<String>) -> Result<Self, CniError> {
        let value = |name| var(name).filter(|v| !v.is_empty());
        let command = match value("CNI_COMMAND").as_deref() {
            Some("ADD") => Command::Add,
            Some("DEL") => Command::Del,
            Some("CHECK") => Command::Check,
            Some("VERSION") => Command::Version,
            Some("STATUS") => Command::Status,
            Some("GC") => Command::Gc,
            Some(other) => {
                return Err(CniError::Env {
                    name: "CNI_COMMAND",
                    problem: format!(
                        "is {other:?}: expected ADD, DEL, CHECK, VERSION, STATUS or GC"
                    ),
                });
            }
            None => return Err(missing("CNI_COMMAND", "every call")),
        };
        let attaches = matches!(command, Command::Add | Command::Del | Command::Check);
        let required = |name: &'static str| -> Result<String, CniError> {
            match value(name) {
                Some(v) => Ok(v),
                None if attaches => Err(missing(name, command.name())),
                None => Ok(String::new()),
            }
        };
        let container_id = required("CNI_CONTAINERID")?;
        if attaches {
            check_container_id(&container_id)?;
        }
        let ifname = required("CNI_IFNAME")?;
        if attaches {
            check_ifname(&ifname)?;
        }
        let netns = value("CNI_NETNS").map(PathBuf::from);
        if netns.is_none() && matches!(command, Command::Add | Command::Check) {
            return Err(missing("CNI_NETNS", command.name()));
        }
        let path = value("CNI_PATH")
            .map(|p| {
                p.split(':')
                    .filter(|d| !d.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default();
        if attaches && path == Vec::<PathBuf>::new() {
            return Err(missing("CNI_PATH", command.name()));
        }
        Ok(Self {
            command,
            container_id,
            netns,
            ifname,
            pod: parse_args(value("CNI_ARGS").as_deref().unwrap_or(""))?,
            path,
        })
    }

    /// The host side of this workload's veth: Calico's name for a Kubernetes pod,
    /// else a name derived from the container id.
    pub fn host_veth(&self) -> String {
        match (&self.pod.namespace, &self.pod.name) {
            (Some(namespace), Some(name)) => host_veth_name(namespace, name),
            _ => container_veth_name(&self.container_id),
        }
    }
}

fn missing(name: &'static str, command: &str) -> CniError {
    CniError::Env {
        name,
        problem: format!("is not set: the runtime must set it for {command}"),
    }
}

/// The spec: alphanumerics, `_`, `.`, `-`, starting with an alphanumeric.
fn check_container_id(id: &str) -> Result<(), CniError> {
    let mut chars = id.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
        return Ok(());
    }
    Err(CniError::Env {
        name: "CNI_CONTAINERID",
        problem: format!(
            "is {id:?}: must start with a letter or digit and hold only letters, digits, '_', '.', '-'"
        ),
    })
}

/// The kernel's rules for interface names.
fn check_ifname(name: &str) -> Result<(), CniError> {
    let bad = name.len() > 15
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace());
    if bad {
        return Err(CniError::Env {
            name: "CNI_IFNAME",
            problem: format!(
                "is {name:?}: an interface name has 1-15 characters without '/', ':' or spaces"
            ),
        });
    }
    Ok(())
}

/// `K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;IgnoreUnknown=1;IP=10.0.0.5`:
/// other keys are for other plugins and are skipped.
fn parse_args(args: &str) -> Result<PodArgs, CniError> {
    let mut pod = PodArgs::default();
    for pair in args.split(';').filter(|p| !p.is_empty()) {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(CniError::Env {
                name: "CNI_ARGS",
                problem: format!("holds {pair:?}: expected KEY=VALUE pairs separated by ';'"),
            });
        };
        match key {
            "K8S_POD_NAMESPACE" => pod.namespace = Some(value.to_owned()),
            "K8S_POD_NAME" => pod.name = Some(value.to_owned()),
            "IP" => {
                for ip in value.split(',').filter(|v| !v.is_empty()) {
                    let parsed = parse_ip(ip).ok_or_else(|| CniError::Env {
                        name: "CNI_ARGS",
                        problem: format!("IP={ip:?} is not an IP address"),
                    })?;
                    pod.requested_ips.push(parsed);
                }
            }
            _ => {}
        }
    }
    Ok(pod)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(vars: &[(&str, &str)]) -> Result<Env, CniError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env::read(|name| vars.get(name).cloned())
    }

    const ADD: &[(&str, &str)] = &[
        ("CNI_COMMAND", "ADD"),
        ("CNI_CONTAINERID", "3f5b1c"),
        ("CNI_NETNS", "/var/run/netns/cni-1"),
        ("CNI_IFNAME", "eth0"),
        (
            "CNI_ARGS",
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=nginx-5d7f9;K8S_POD_INFRA_CONTAINER_ID=3f5b1c",
        ),
        ("CNI_PATH", "/opt/cni/bin:/usr/lib/cni"),
    ];

    #[test]
    fn a_kubelet_add_names_the_veth_after_the_pod() {
        let env = read(ADD).unwrap();
        assert_eq!(env.command, Command::Add);
        assert_eq!(
            env.path,
            [PathBuf::from("/opt/cni/bin"), PathBuf::from("/usr/lib/cni")]
        );
        assert_eq!(env.host_veth(), "cali8ce18e28dcb");
    }

    #[test]
    fn without_pod_args_the_veth_is_named_after_the_container() {
        let mut vars = ADD.to_vec();
        vars.retain(|(k, _)| *k != "CNI_ARGS");
        assert_eq!(
            read(&vars).unwrap().host_veth(),
            container_veth_name("3f5b1c")
        );
    }

    #[test]
    fn add_without_a_netns_says_which_variable_is_missing() {
        let mut vars = ADD.to_vec();
        vars.retain(|(k, _)| *k != "CNI_NETNS");
        let error = read(&vars).unwrap_err();
        assert_eq!(error.code(), 4);
        assert!(
            error.to_string().contains("CNI_NETNS is not set"),
            "{error}"
        );
    }

    #[test]
    fn del_without_a_netns_is_accepted() {
        let mut vars = ADD.to_vec();
        vars.retain(|(k, _)| *k != "CNI_NETNS");
        vars[0] = ("CNI_COMMAND", "DEL");
        assert_eq!(read(&vars).unwrap().netns, None);
    }

    #[test]
    fn version_needs_nothing_but_the_command() {
        assert_eq!(
            read(&[("CNI_COMMAND", "VERSION")]).unwrap().command,
            Command::Version
        );
    }

    #[test]
    fn ipam_a_kubelet_add_yields_the_pod_and_requested_addresses() {
        let mut vars = ADD.to_vec();
        vars.retain(|(k, _)| *k != "CNI_ARGS");
        vars.push((
            "CNI_ARGS",
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;IP=10.0.0.5,fd00::5",
        ));
        let env = read(&vars).unwrap();
        assert_eq!(env.pod.name.as_deref(), Some("web-0"));
        assert_eq!(env.pod.requested_ips.len(), 2);
    }

    #[test]
    fn ipam_a_missing_container_id_names_the_variable_and_command() {
        let error = read(&[("CNI_COMMAND", "DEL"), ("CNI_IFNAME", "eth0")]).unwrap_err();
        assert_eq!(error.code(), 4);
        assert_eq!(
            error.to_string(),
            "environment variable CNI_CONTAINERID is not set: the runtime must set it for DEL"
        );
    }

    #[test]
    fn bad_values_are_rejected_with_the_variable_named() {
        for (name, value) in [
            ("CNI_IFNAME", "a-name-too-long-for-linux"),
            ("CNI_CONTAINERID", "-leading-dash"),
            ("CNI_ARGS", "K8S_POD_NAME"),
            ("CNI_ARGS", "IP=10.0.0"),
            ("CNI_COMMAND", "UPDATE"),
        ] {
            let mut vars = ADD.to_vec();
            vars.retain(|(k, _)| *k != name);
            vars.push((name, value));
            let error = read(&vars).unwrap_err();
            assert!(
                error
                    .to_string()
                    .starts_with(&format!("environment variable {name}")),
                "{error}"
            );
        }
    }
}
