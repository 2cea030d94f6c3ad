//! A CRI client that asks for pod sandboxes as kubelet does: the pod's name,
//! namespace and uid in the sandbox metadata (containerd hands them to the CNI
//! plugins as `K8S_POD_NAME`, `K8S_POD_NAMESPACE`, `K8S_POD_UID`, with the sandbox
//! id as `K8S_POD_INFRA_CONTAINER_ID`), the pod's labels plus kubelet's
//! `io.kubernetes.pod.*` ones, hostPorts as port mappings, and a cgroup parent per
//! pod (`<node's cgroup>/pod<uid>`, kubelet's cgroupfs layout).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

use super::api::runtime_service_client::RuntimeServiceClient;
use super::api::{
    LinuxPodSandboxConfig, LinuxSandboxSecurityContext, ListPodSandboxRequest, NamespaceMode,
    NamespaceOption, PodSandbox, PodSandboxConfig, PodSandboxMetadata, PodSandboxState,
    PodSandboxStatusRequest, PortMapping, Protocol, RemovePodSandboxRequest, RunPodSandboxRequest,
    StatusRequest, StopPodSandboxRequest, VersionRequest, VersionResponse,
};

/// The CRI version kubelet asks for.
const API_VERSION: &str = "v1";

/// What kubelet knows of a pod when it asks for its sandbox.
#[derive(Debug, Clone)]
pub struct PodSpec {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub labels: HashMap<String, String>,
    /// `(containerPort, hostPort)` over TCP.
    pub host_ports: Vec<(u16, u16)>,
}

impl PodSpec {
    /// A pod `namespace/name` with a fresh uid and an `app` label.
    pub fn new(namespace: &str, name: &str) -> Self {
        let uid = format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            rand::random::<u32>(),
            rand::random::<u16>(),
            rand::random::<u16>() & 0xfff,
            rand::random::<u16>() & 0xfff,
            rand::random::<u64>() & 0xffff_ffff_ffff,
        );
        Self {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            uid,
            labels: HashMap::from([("app".to_owned(), name.to_owned())]),
            host_ports: Vec::new(),
        }
    }

    /// The sandbox config kubelet sends for this pod (its
    /// `generatePodSandboxConfig`), cgroups under `cgroup_root`, logs under
    /// `log_root`.
    pub fn sandbox_config(&self, cgroup_root: &str, log_root: &Path) -> PodSandboxConfig {
        let mut labels = self.labels.clone();
        labels.insert("io.kubernetes.pod.name".into(), self.name.clone());
        labels.insert("io.kubernetes.pod.namespace".into(), self.namespace.clone());
        labels.insert("io.kubernetes.pod.uid".into(), self.uid.clone());
        let log_directory = log_root.join(format!("{}_{}_{}", self.namespace, self.name, self.uid));
        PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: self.name.clone(),
                uid: self.uid.clone(),
                namespace: self.namespace.clone(),
                attempt: 0,
            }),
            hostname: self.name.clone(),
            log_directory: log_directory.display().to_string(),
            dns_config: None,
            port_mappings: self
                .host_ports
                .iter()
                .map(|&(container, host)| PortMapping {
                    protocol: Protocol::Tcp.into(),
                    container_port: container.into(),
                    host_port: host.into(),
                    host_ip: String::new(),
                })
                .collect(),
            labels,
            annotations: HashMap::new(),
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: format!("{cgroup_root}/pod{}", self.uid),
                security_context: Some(LinuxSandboxSecurityContext {
                    // kubelet's defaults for a pod without hostNetwork/hostPID/hostIPC.
                    namespace_options: Some(NamespaceOption {
                        network: NamespaceMode::Pod.into(),
                        pid: NamespaceMode::Container.into(),
                        ipc: NamespaceMode::Pod.into(),
                        target_id: String::new(),
                    }),
                    readonly_rootfs: false,
                    privileged: false,
                }),
                sysctls: HashMap::new(),
            }),
        }
    }
}

/// A sandbox as `PodSandboxStatus` (verbose) described it.
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub id: String,
    pub ready: bool,
    /// The pod's address as the CNI result gave it; `None` when it has none.
    pub ip: Option<IpAddr>,
    /// The sandbox's network namespace (containerd's `info.runtimeSpec`).
    pub netns: PathBuf,
    /// The pause process.
    pub pid: u32,
}

impl Sandbox {
    /// A command that runs `program` in the sandbox's network namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net={}", self.netns.display()))
            .arg(program);
        command
    }

    /// Runs `f` on a thread inside the sandbox's network namespace.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        crate::netns::in_netns_at(&self.netns, f)
    }

    /// Pings `address` from inside the sandbox (one reply within five seconds).
    pub fn ping(&self, address: IpAddr) -> Result<()> {
        crate::process::exec(
            self.command("ping")
                .args(["-c", "1", "-w", "5"])
                .arg(address.to_string()),
        )
        .map(drop)
        .with_context(|| format!("ping {address} from sandbox {}", self.id))
    }
}

/// A client of one runtime's CRI socket. Each call opens its own connection on
/// a runtime of its own, so the client is usable from any thread.
#[derive(Debug, Clone)]
pub struct CriClient {
    socket: PathBuf,
}

impl CriClient {
    pub fn new(socket: &Path) -> Self {
        Self {
            socket: socket.to_owned(),
        }
    }

    fn call<T>(
        &self,
        what: &str,
        call: impl AsyncFnOnce(
            RuntimeServiceClient<tonic::transport::Channel>,
        ) -> Result<tonic::Response<T>, tonic::Status>,
    ) -> Result<T> {
        crate::runtime()
            .block_on(async {
                let channel = proto::client::connect_unix(&self.socket).await?;
                anyhow::Ok(call(RuntimeServiceClient::new(channel)).await?.into_inner())
            })
            .with_context(|| format!("CRI {what} on {}", self.socket.display()))
    }

    pub fn version(&self) -> Result<VersionResponse> {
        self.call("Version", async |mut c| {
            c.version(VersionRequest {
                version: API_VERSION.into(),
            })
            .await
        })
    }

    /// Ok when both `RuntimeReady` and `NetworkReady` hold (kubelet's condition for
    /// a ready node); else what the runtime says is not.
    pub fn ready(&self) -> Result<Result<(), String>> {
        let status = self.call("Status", async |mut c| {
            c.status(StatusRequest { verbose: false }).await
        })?;
        let conditions = status.status.map(|s| s.conditions).unwrap_or_default();
        let unmet: Vec<String> = ["RuntimeReady", "NetworkReady"]
            .iter()
            .filter_map(
                |wanted| match conditions.iter().find(|c| c.r#type == *wanted) {
                    Some(c) if c.status => None,
                    Some(c) => Some(format!("{wanted}: {} {}", c.reason, c.message)),
                    None => Some(format!("{wanted}: not reported")),
                },
            )
            .collect();
        Ok(match unmet.is_empty() {
            true => Ok(()),
            false => Err(unmet.join("; ")),
        })
    }

    /// Runs `pod`'s sandbox; returns its id.
    pub fn run_pod_sandbox(
        &self,
        pod: &PodSpec,
        cgroup_root: &str,
        log_root: &Path,
    ) -> Result<String> {
        let config = pod.sandbox_config(cgroup_root, log_root);
        std::fs::create_dir_all(&config.log_directory)
            .with_context(|| format!("creating {}", config.log_directory))?;
        let response = self.call("RunPodSandbox", async |mut c| {
            c.run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: String::new(),
            })
            .await
        });
        Ok(response
            .with_context(|| format!("pod {}/{}", pod.namespace, pod.name))?
            .pod_sandbox_id)
    }

    /// The sandbox's state, address, network namespace and pause process.
    pub fn pod_sandbox_status(&self, id: &str) -> Result<Sandbox> {
        let response = self.call("PodSandboxStatus", async |mut c| {
            c.pod_sandbox_status(PodSandboxStatusRequest {
                pod_sandbox_id: id.to_owned(),
                verbose: true,
            })
            .await
        })?;
        let status = response
            .status
            .ok_or_else(|| anyhow!("sandbox {id}: no status"))?;
        let info: Value = serde_json::from_str(
            response
                .info
                .get("info")
                .ok_or_else(|| anyhow!("sandbox {id}: no verbose info"))?,
        )
        .with_context(|| format!("sandbox {id}: verbose info"))?;
        let ip = status
            .network
            .as_ref()
            .map(|n| n.ip.as_str())
            .filter(|ip| !ip.is_empty())
            .map(|ip| ip.parse())
            .transpose()
            .with_context(|| format!("sandbox {id}: its address"))?;
        Ok(Sandbox {
            id: status.id.clone(),
            ready: status.state() == PodSandboxState::SandboxReady,
            ip,
            netns: network_namespace(&info)
                .with_context(|| format!("sandbox {id}: info {info}"))?,
            pid: info["pid"]
                .as_u64()
                .and_then(|pid| u32::try_from(pid).ok())
                .ok_or_else(|| anyhow!("sandbox {id}: no pid in {info}"))?,
        })
    }

    pub fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        self.call("StopPodSandbox", async |mut c| {
            c.stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: id.to_owned(),
            })
            .await
        })
        .map(drop)
    }

    pub fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        self.call("RemovePodSandbox", async |mut c| {
            c.remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: id.to_owned(),
            })
            .await
        })
        .map(drop)
    }

    /// Every sandbox the runtime knows, ready or not.
    pub fn list_pod_sandbox(&self) -> Result<Vec<PodSandbox>> {
        self.call("ListPodSandbox", async |mut c| {
            c.list_pod_sandbox(ListPodSandboxRequest { filter: None })
                .await
        })
        .map(|list| list.items)
    }
}

/// The network namespace path in containerd's verbose sandbox info: the OCI
/// runtime spec's `linux.namespaces` entry of type `network`.
fn network_namespace(info: &Value) -> Result<PathBuf> {
    let namespaces = info
        .pointer("/runtimeSpec/linux/namespaces")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("no runtimeSpec.linux.namespaces"))?;
    let path = namespaces
        .iter()
        .find(|ns| ns["type"] == "network")
        .and_then(|ns| ns["path"].as_str())
        .filter(|path| !path.is_empty());
    match path {
        Some(path) => Ok(PathBuf::from(path)),
        None => bail!("no network namespace path"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sandbox_config_carries_the_pod_as_kubelet_sends_it() {
        let mut pod = PodSpec::new("shop", "web-0");
        pod.host_ports.push((8080, 30080));
        let config = pod.sandbox_config("/tb-1/n1", Path::new("/var/log/pods"));
        let metadata = config.metadata.as_ref().unwrap();
        assert_eq!(
            (metadata.name.as_str(), metadata.namespace.as_str()),
            ("web-0", "shop")
        );
        assert_eq!(metadata.uid, pod.uid);
        assert_eq!(config.labels["io.kubernetes.pod.namespace"], "shop");
        assert_eq!(config.labels["app"], "web-0");
        assert_eq!(
            config.log_directory,
            format!("/var/log/pods/shop_web-0_{}", pod.uid)
        );
        let linux = config.linux.unwrap();
        assert_eq!(linux.cgroup_parent, format!("/tb-1/n1/pod{}", pod.uid));
        assert_eq!(
            (
                config.port_mappings[0].container_port,
                config.port_mappings[0].host_port
            ),
            (8080, 30080)
        );
    }

    #[test]
    fn the_network_namespace_is_read_from_the_runtime_spec() {
        let info = serde_json::json!({"pid": 7, "runtimeSpec": {"linux": {"namespaces": [
            {"type": "pid"},
            {"type": "network", "path": "/run/state/netns/cni-1"},
        ]}}});
        assert_eq!(
            network_namespace(&info).unwrap(),
            PathBuf::from("/run/state/netns/cni-1")
        );
        let host = serde_json::json!({"runtimeSpec": {"linux": {"namespaces": [{"type": "pid"}]}}});
        assert!(network_namespace(&host).is_err());
    }
}
