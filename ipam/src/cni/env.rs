//! The runtime's `CNI_*` environment, as an IPAM plugin needs it.

use std::net::IpAddr;

use super::config::parse_ip;
use super::error::CniError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Version,
    /// CNI 1.1: can the plugin serve ADDs?
    Status,
    /// CNI 1.1: release what the runtime no longer knows.
    Gc,
}

/// The invocation, checked for what its command needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    pub command: Command,
    pub container_id: String,
    pub ifname: String,
    /// From `CNI_ARGS`: the pod, when a Kubernetes runtime calls.
    pub pod_namespace: Option<String>,
    pub pod_name: Option<String>,
    /// From `CNI_ARGS` `IP=`: addresses asked for explicitly.
    pub requested_ips: Vec<IpAddr>,
}

impl Env {
    pub fn read(var: &dyn Fn(&str) -> Option<String>) -> Result<Self, CniError> {
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
        let required = |name: &'static str| match value(name) {
            Some(v) => Ok(v),
            None if attaches => Err(missing(name, command_name(command))),
            None => Ok(String::new()),
        };
        let container_id = required("CNI_CONTAINERID")?;
        let ifname = required("CNI_IFNAME")?;
        let mut env = Self {
            command,
            container_id,
            ifname,
            pod_namespace: None,
            pod_name: None,
            requested_ips: Vec::new(),
        };
        env.parse_args(value("CNI_ARGS").as_deref().unwrap_or(""))?;
        Ok(env)
    }

    /// `K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;IP=10.0.0.5`; other keys are
    /// for other plugins.
    fn parse_args(&mut self, args: &str) -> Result<(), CniError> {
        for pair in args.split(';').filter(|p| !p.is_empty()) {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(CniError::Env {
                    name: "CNI_ARGS",
                    problem: format!("holds {pair:?}: expected KEY=VALUE pairs separated by ';'"),
                });
            };
            match key {
                "K8S_POD_NAMESPACE" => self.pod_namespace = Some(value.to_owned()),
                "K8S_POD_NAME" => self.pod_name = Some(value.to_owned()),
                "IP" => {
                    for ip in value.split(',').filter(|v| !v.is_empty()) {
                        let parsed = parse_ip(ip).ok_or_else(|| CniError::Env {
                            name: "CNI_ARGS",
                            problem: format!("IP={ip:?} is not an IP address"),
                        })?;
                        self.requested_ips.push(parsed);
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

pub fn command_name(command: Command) -> &'static str {
    match command {
        Command::Add => "ADD",
        Command::Del => "DEL",
        Command::Check => "CHECK",
        Command::Version => "VERSION",
        Command::Status => "STATUS",
        Command::Gc => "GC",
    }
}

fn missing(name: &'static str, command: &str) -> CniError {
    CniError::Env {
        name,
        problem: format!("is not set: the runtime must set it for {command}"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<Env, CniError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env::read(&|name| vars.get(name).cloned())
    }

    #[test]
    fn ipam_a_kubelet_add_yields_the_pod_and_requested_addresses() {
        let env = read(&[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "abc"),
            ("CNI_IFNAME", "eth0"),
            (
                "CNI_ARGS",
                "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;IP=10.0.0.5,fd00::5",
            ),
        ])
        .unwrap();
        assert_eq!(env.pod_name.as_deref(), Some("web-0"));
        assert_eq!(env.requested_ips.len(), 2);
    }

    #[test]
    fn ipam_a_missing_container_id_names_the_variable_and_command() {
        let error = read(&[("CNI_COMMAND", "DEL"), ("CNI_IFNAME", "eth0")]).unwrap_err();
        assert_eq!(error.code(), 4);
        assert_eq!(
            error.to_string(),
            "environment variable CNI_CONTAINERID is not set: the runtime must set it for DEL"
        );
        assert_eq!(
            read(&[("CNI_COMMAND", "VERSION")]).unwrap().command,
            Command::Version
        );
    }
}
