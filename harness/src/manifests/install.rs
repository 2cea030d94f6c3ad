//! Running the agent image's `tabby-install-cni` as the DaemonSet's init container
//! runs it, with the host's and the image's directories wherever a test keeps
//! them, and the network config template the `tabby-cni-config` ConfigMap mounts.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use super::{directory, documents, find};

/// The ConfigMap holding the template, and its key (also the installed file's name).
pub const CONFIG_MAP: &str = "tabby-cni-config";
pub const CONFLIST: &str = "10-tabby.conflist";

/// The template as the ConfigMap holds it (`__KUBERNETES_NODE_NAME__` and
/// `__KUBECONFIG_FILEPATH__` not yet filled in).
pub fn template() -> Result<String> {
    let documents = documents()?;
    let config = find(&documents, "ConfigMap", CONFIG_MAP)?;
    config.value["data"][CONFLIST]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("{} has no data.{CONFLIST}", config.place()))
}

/// Where the script's inputs and outputs are, as the pod's mounts place them.
#[derive(Debug, Clone)]
pub struct InstallCni {
    /// The pod's `spec.nodeName`.
    pub node: String,
    /// The image's plugin directory (`/usr/local/lib/tabby/cni`).
    pub plugin_dir: PathBuf,
    /// The pod's service account token and CA (`/var/run/secrets/...`).
    pub service_account_dir: PathBuf,
    /// The host's CNI bin directory as mounted (`/host/opt/cni/bin`).
    pub cni_bin_dir: PathBuf,
    /// The host's CNI config directory as mounted (`/host/etc/cni/net.d`).
    pub cni_net_dir: PathBuf,
    /// The same directory as the plugins on the host see it (`/etc/cni/net.d`).
    pub cni_net_dir_on_host: PathBuf,
    /// The ConfigMap's template as mounted.
    pub template: PathBuf,
}

impl InstallCni {
    /// Puts what the image and the kubelet provide in place: `plugins` copied into
    /// the plugin directory, a service account token and CA, the ConfigMap's
    /// template.
    pub fn stage(&self, plugins: &[&Path]) -> Result<()> {
        std::fs::create_dir_all(&self.plugin_dir)?;
        std::fs::create_dir_all(&self.service_account_dir)?;
        for plugin in plugins {
            let name = plugin.file_name().context("a plugin path without a name")?;
            std::fs::copy(plugin, self.plugin_dir.join(name))
                .with_context(|| format!("copying {}", plugin.display()))?;
        }
        std::fs::write(self.service_account_dir.join("token"), "token-1")?;
        std::fs::write(self.service_account_dir.join("ca.crt"), "ca")?;
        std::fs::write(&self.template, template()?)
            .with_context(|| format!("writing {}", self.template.display()))
    }

    /// The script with `args`, in an environment holding only what the pod's has
    /// (the node's name, the API server's service address) and these paths.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("sh");
        command
            .arg(script())
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("KUBERNETES_NODE_NAME", &self.node)
            .env("KUBERNETES_SERVICE_HOST", "10.96.0.1")
            .env("KUBERNETES_SERVICE_PORT", "443")
            .env("CNI_BIN_DIR", &self.cni_bin_dir)
            .env("CNI_NET_DIR", &self.cni_net_dir)
            .env("CNI_NET_DIR_ON_HOST", &self.cni_net_dir_on_host)
            .env("CNI_NETWORK_CONFIG_FILE", &self.template)
            .env("PLUGIN_DIR", &self.plugin_dir)
            .env("SERVICE_ACCOUNT_DIR", &self.service_account_dir);
        command
    }

    /// Runs the script once (the init container); fails with its stderr.
    pub fn run(&self) -> Result<()> {
        crate::process::exec(&mut self.command(&[])).map(drop)
    }
}

/// `tabby-install-cni` in this checkout.
pub fn script() -> PathBuf {
    directory().join("images/agent/tabby-install-cni")
}
