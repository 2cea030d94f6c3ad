//! A `tabby-reflector` in a lab node of its own, configured as the reflector
//! Deployment is: a small file (router id, status socket) and `--datastore etcd`,
//! so that it peers with every `Node` and takes its AS and cluster id from the
//! datastore.

use std::path::PathBuf;

use anyhow::{Context, Result};
use proto::bgp::Peer;

use crate::e2e::{Cluster, binary};
use crate::process::Process;

#[derive(Debug)]
pub struct Reflector {
    pub name: String,
    /// Its gRPC status socket (`tabby.bgp.v1.BgpStatus`).
    pub socket: PathBuf,
    process: Process,
}

impl Reflector {
    /// Starts the reflector on lab node `name`, whose `Node` resource is applied.
    pub fn start(cluster: &Cluster, name: &str) -> Result<Self> {
        let node = cluster.lab.node(name);
        let socket = cluster.dir().join(format!("{name}.sock"));
        let config = cluster.dir().join(format!("{name}.yaml"));
        std::fs::write(
            &config,
            format!(
                "routerId: {}\napi:\n  socket: {}\n",
                node.address(),
                socket.display()
            ),
        )?;
        let args = [
            format!("--config={}", config.display()),
            "--datastore=etcd".to_owned(),
            format!("--etcd-endpoints={}", cluster.etcd.endpoint()),
            format!("--etcd-prefix={}", api::datastore::ETCD_DEFAULT_PREFIX),
            format!("--node-name={name}"),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let program = binary("tabby-reflector")?.display().to_string();
        let process = node
            .spawn(name, &program, &args)
            .with_context(|| format!("starting tabby-reflector on {name}"))?;
        Ok(Self {
            name: name.to_owned(),
            socket,
            process,
        })
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Its sessions, from its status API.
    pub fn peers(&self) -> Result<Vec<Peer>> {
        super::list_peers(&self.socket)
    }
}
