//! The double as a process (`tabby-kube-api`) inside a lab namespace, listening on
//! one of its addresses as etcd does in [`crate::etcd::Etcd::start_in`], so that
//! every node reaches it as nodes reach a cluster's API server. Once it serves, the
//! CRDs of `manifests/crds` are created through its API (as `kubectl apply -k
//! manifests/crds` does), the admission policies of `manifests/admission` judge
//! every write, and the Roles and bindings of `manifests/rbac` authorize every
//! request of a service account (RBAC).
//!
//! Each component gets credentials as the manifests hand them out: a bearer token
//! of its service account (`manifests/rbac`), in a kubeconfig of the shape
//! `tabby-install-cni` writes (`tokenFile`, cluster `local`, context `tabby`). A
//! node's token is bound to the node (the `authentication.kubernetes.io/node-name`
//! claim the admission policy reads); its agent and its CNI plugins share it, as
//! the plugins run on the agent's token. Unlike a real cluster the server speaks
//! plain HTTP (no TLS and so no `certificate-authority`).
//!
//! ```no_run
//! # fn f(lab: &harness::Lab) -> anyhow::Result<()> {
//! use harness::kube_api::process::{Identity, KubeApiProcess};
//! let router = lab.core().unwrap();
//! // The router's IPv4 address on subnet "a".
//! let address = router.address_in("a", "0.0.0.0".parse()?).unwrap();
//! let api = KubeApiProcess::start_in(lab.logs(), router, address, &["n1", "n2"])?;
//! let kubeconfig = api.kubeconfig(&Identity::Agent("n1".into()));
//! # let _ = kubeconfig; Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use tempfile::TempDir;

use super::admission::UserInfo;
use crate::netns::Netns;
use crate::process::Process;

/// How `tabby-kube-api` logs a pruned field (`<plural>/<name>: <path>` follows).
pub const PRUNED: &str = "tabby-kube-api: pruned ";
const STARTED: Duration = Duration::from_secs(20);
/// The namespace tabby's service accounts live in (`manifests/namespace.yaml`).
pub const NAMESPACE: &str = "tabby-system";

/// Whose credentials a kubeconfig carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A cluster admin (an operator's kubectl or calicoctl-rs).
    Admin,
    /// tabby-agent's service account with a token bound to a pod on this node,
    /// also what the node's CNI plugins use.
    Agent(String),
    Reflector,
    Controller,
}

impl Identity {
    /// The file names its token and kubeconfig go under.
    fn file_name(&self) -> String {
        match self {
            Identity::Admin => "admin".into(),
            Identity::Agent(node) => format!("agent-{node}"),
            Identity::Reflector => "reflector".into(),
            Identity::Controller => "ipam-controller".into(),
        }
    }

    /// The user its token authenticates as.
    pub fn user(&self) -> UserInfo {
        let account = |name| UserInfo::service_account(NAMESPACE, name);
        match self {
            Identity::Admin => UserInfo::cluster_admin(),
            Identity::Agent(node) => account("tabby-agent").on_node(node),
            Identity::Reflector => account("tabby-reflector"),
            Identity::Controller => account("tabby-ipam-controller"),
        }
    }
}

/// A running `tabby-kube-api`; killed on drop.
#[derive(Debug)]
pub struct KubeApiProcess {
    // Drop order: the process dies before its files go.
    process: Process,
    address: SocketAddr,
    dir: TempDir,
}

impl KubeApiProcess {
    /// Starts the double in `netns` on `address` (a free port), with a token and a
    /// kubeconfig for the admin, the reflector, the controller and the agent of
    /// each of `nodes`, and tabby's CRDs installed.
    pub fn start_in(
        logs: impl AsRef<Path>,
        netns: &Netns,
        address: IpAddr,
        nodes: &[&str],
    ) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("tabby-kube-api-")
            .tempdir()?;
        let identities: Vec<Identity> =
            [Identity::Admin, Identity::Reflector, Identity::Controller]
                .into_iter()
                .chain(nodes.iter().map(|node| Identity::Agent((*node).to_owned())))
                .collect();
        let mut tokens = BTreeMap::new();
        for identity in &identities {
            let token = format!("{:032x}", rand::random::<u128>());
            std::fs::write(token_path(dir.path(), identity), &token)?;
            tokens.insert(token, identity.user());
        }
        let tokens_file = dir.path().join("tokens.json");
        std::fs::write(&tokens_file, serde_json::to_string_pretty(&tokens)?)?;
        let address_file = dir.path().join("address");
        let mut command = netns.command(crate::binaries::binary("tabby-kube-api")?);
        command
            .arg("--listen")
            .arg(SocketAddr::new(address, 0).to_string())
            .arg("--address-file")
            .arg(&address_file)
            .arg("--tokens")
            .arg(&tokens_file)
            .arg("--admission-policies")
            .arg("--rbac");
        let mut process = Process::spawn(command, logs.as_ref(), "kube-api")?;
        let listening = crate::wait::wait_until(STARTED, "tabby-kube-api to listen", || {
            process.check_running()?;
            Ok(std::fs::read_to_string(&address_file).ok())
        })?;
        let address: SocketAddr = listening
            .trim()
            .parse()
            .with_context(|| format!("tabby-kube-api wrote {listening:?} as its address"))?;
        let api = Self {
            process,
            address,
            dir,
        };
        for identity in &identities {
            let text = kubeconfig(&api.url(), &token_path(api.dir.path(), identity));
            std::fs::write(api.kubeconfig(identity), text)?;
        }
        netns.run(|| crate::runtime().block_on(api.install_crds()))??;
        Ok(api)
    }

    /// `http://<address>:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The kubeconfig holding `identity`'s token.
    pub fn kubeconfig(&self, identity: &Identity) -> PathBuf {
        self.dir
            .path()
            .join(format!("{}.kubeconfig", identity.file_name()))
    }

    /// The fields pruned from writes so far (`<plural>/<name>: <path>`): fields
    /// the code wrote that a real API server would have dropped.
    pub fn pruned(&self) -> Vec<String> {
        self.process
            .log()
            .lines()
            .filter_map(|line| line.strip_prefix(PRUNED))
            .map(str::to_owned)
            .collect()
    }

    /// The process, e.g. to check it still runs.
    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }

    /// A client of the double as the admin (call inside the namespace the double
    /// is reached from).
    pub fn client(&self) -> Result<kube::Client> {
        let uri: http::Uri = self.url().parse()?;
        Ok(kube::Client::try_from(kube::Config::new(uri))?)
    }

    /// Creates every CRD of `manifests/crds` through the API.
    async fn install_crds(&self) -> Result<()> {
        let client = self.client()?;
        for document in yaml_serde::Deserializer::from_str(&crate::manifests::crds()?) {
            let crd: Value = serde::Deserialize::deserialize(document).context("CRD YAML")?;
            let request =
                http::Request::post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
                    .header("content-type", "application/json")
                    .body(serde_json::to_vec(&crd)?)?;
            let created: Value = client.request(request).await.context("creating a CRD")?;
            if created.pointer("/spec/names/plural").is_none() {
                bail!("creating a CRD answered {created}");
            }
        }
        Ok(())
    }
}

fn token_path(dir: &Path, identity: &Identity) -> PathBuf {
    dir.join(format!("{}.token", identity.file_name()))
}

/// A kubeconfig for `server` with the bearer token in the file `token`, in the
/// shape `tabby-install-cni` writes for the CNI plugins, its context in tabby's
/// namespace (where a pod of tabby's runs, and reads Secrets from).
pub fn kubeconfig(server: &str, token: &Path) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n  - name: local\n    cluster:\n      \
         server: {server}\nusers:\n  - name: tabby\n    user:\n      tokenFile: {}\n\
         contexts:\n  - name: tabby\n    context:\n      cluster: local\n      user: tabby\n\
         \x20     namespace: {NAMESPACE}\ncurrent-context: tabby\n",
        token.display()
    )
}

/// `kubectl <args>` with `dir` holding its `kubeconfig` (see [`kubeconfig`]) and
/// its discovery cache; its stdout, or a failure with its stderr.
pub fn kubectl(dir: &Path, args: &[&str]) -> Result<String> {
    let mut command = std::process::Command::new("kubectl");
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .arg(format!("--kubeconfig={}", dir.join("kubeconfig").display()))
        .arg(format!("--cache-dir={}", dir.join("cache").display()))
        .args(args);
    crate::process::exec(&mut command)
}
