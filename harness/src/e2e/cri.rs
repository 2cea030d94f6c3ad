//! Nodes whose pods a real container runtime makes: containerd with its CRI
//! plugin ([`crate::cri`]) on a node of the cluster, tabby installed into the
//! node's CNI directories by the agent image's `tabby-install-cni` from the
//! `tabby-cni-config` ConfigMap, exactly as `manifests/` installs it. Two things
//! then change in the installed conflist, because this is a lab and not a node:
//!
//! - the datastore: the plugins get the cluster's (etcd's endpoints and prefix, or
//!   the node's kubeconfig for the API double the harness runs, where
//!   [`Cluster::run_pod`] first writes the Pod as the API holds it) instead of the
//!   installer's kubeconfig, whose server is the in-cluster service address;
//! - the files the plugins share with the node's agent, which the lab keeps per
//!   node rather than in the host's `/var/run/tabby` and `/var/lib/tabby`
//!   (`mtu_file`, `ipam.state_dir`).
//!
//! Everything else (the plugin chain, portmap, names, versions, the node's name
//! filled in by the installer) is the manifests' own.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::{Cluster, binary};
use crate::cri::{Containerd, PodSpec, Sandbox};
use crate::kube_api::objects;
use crate::manifests::install::{CONFLIST, InstallCni};

/// Debian's containernetworking-plugins, the node's standard plugins (kubeadm
/// nodes get them from kubernetes-cni): `loopback` (containerd sets up every
/// sandbox's `lo` with it) and `portmap` (chained in tabby's conflist).
const STANDARD_PLUGINS: &str = "/usr/lib/cni";

/// How long containerd may take to load the CNI config.
const READY: Duration = Duration::from_secs(30);

impl Cluster {
    /// Starts containerd on `node` with tabby's CNI plugins and conflist installed
    /// as described above, and waits until its network is ready.
    pub fn start_containerd(&mut self, node: &str) -> Result<()> {
        let mut containerd = Containerd::new(self.lab.id(), node, self.lab.node(node))?;
        let image = self.node_dir(node).join("image");
        let install = InstallCni {
            node: node.to_owned(),
            plugin_dir: image.join("plugins"),
            service_account_dir: image.join("serviceaccount"),
            template: image.join(CONFLIST),
            cni_bin_dir: containerd.cni_bin_dir(),
            cni_net_dir: containerd.cni_conf_dir(),
            cni_net_dir_on_host: containerd.cni_conf_dir(),
        };
        for plugin in ["loopback", "portmap"] {
            std::os::unix::fs::symlink(
                Path::new(STANDARD_PLUGINS).join(plugin),
                containerd.cni_bin_dir().join(plugin),
            )
            .with_context(|| format!("linking {STANDARD_PLUGINS}/{plugin}"))?;
        }
        install.stage(&[&self.cni, &binary("tabby-ipam")?])?;
        install.run()?;
        self.use_lab_files(&containerd.cni_conf_dir().join(CONFLIST), node)?;
        containerd.start()?;
        containerd.wait_ready(READY)?;
        self.containerds.insert(node.to_owned(), containerd);
        Ok(())
    }

    /// Runs `pod` on `node`'s containerd as kubelet does for a Pod bound to the
    /// node: on the Kubernetes datastore its Pod object exists first.
    pub fn run_pod(&mut self, node: &str, pod: &PodSpec) -> Result<Sandbox> {
        self.as_kubelet(async |client| {
            objects::put_pod(&client, &pod.namespace, &pod.name, node).await
        })?;
        self.containerd(node)?.run_pod(pod)
    }

    /// The containerd started on `node`.
    pub fn containerd(&mut self, node: &str) -> Result<&mut Containerd> {
        self.containerds
            .get_mut(node)
            .with_context(|| format!("no containerd on {node}"))
    }

    /// Points the installed conflist at the lab's datastore and per-node files:
    /// the keys of the config [`Cluster::cni`] uses, set in the `tabby-cni` entry.
    fn use_lab_files(&self, conflist: &Path, node: &str) -> Result<()> {
        let text = std::fs::read_to_string(conflist)
            .with_context(|| format!("reading {}", conflist.display()))?;
        let mut list: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", conflist.display()))?;
        let lab = self.conf(node);
        let plugins = list["plugins"]
            .as_array_mut()
            .context("the conflist has no plugins")?;
        let Some(tabby) = plugins.iter_mut().find(|p| p["type"] == "tabby-cni") else {
            bail!("the conflist has no tabby-cni plugin: {text}");
        };
        if tabby["nodename"] != node {
            bail!("tabby-install-cni did not fill in the node's name: {text}");
        }
        let tabby = tabby
            .as_object_mut()
            .context("the tabby-cni entry is not an object")?;
        for key in [
            "kubernetes",
            "datastore_type",
            "etcd_endpoints",
            "etcd_prefix",
        ] {
            tabby.remove(key);
        }
        if let Value::Object(keys) = self.backing.cni_keys(node) {
            tabby.extend(keys);
        }
        tabby.insert("mtu_file".into(), lab["mtu_file"].clone());
        tabby["ipam"]["state_dir"] = lab["ipam"]["state_dir"].clone();
        std::fs::write(conflist, serde_json::to_string_pretty(&list)?)
            .with_context(|| format!("writing {}", conflist.display()))
    }
}
