//! `tabby-ipam-controller` for an e2e cluster, run where the datastore runs (the
//! lab's router: a Deployment's pod reaches it as nodes do), with its metrics there too
//! ([`Cluster::controller_metrics`]): [`Cluster::controller_passes`] reads
//! `tabby_ipam_gc_passes_total` from them.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, Result, bail};

use super::{Cluster, binary};
use crate::etcd::free_port;
use crate::kube_api::process::Identity;
use crate::process::Process;

/// The controller's process and where it serves metrics.
#[derive(Debug)]
pub(super) struct Controller {
    process: Process,
    metrics: SocketAddr,
}

/// Garbage-collection passes so far, by result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Passes {
    pub ok: u64,
    pub failed: u64,
}

impl Cluster {
    /// Starts tabby-ipam-controller with a pass every `interval` and `grace` (Go
    /// durations, e.g. `"2s"`).
    pub fn start_controller(&mut self, interval: &str, grace: &str) -> Result<()> {
        let router = self.lab.core().context("no router")?;
        let address: IpAddr = self.backing.address();
        let metrics = SocketAddr::new(address, free_port()?);
        let mut command = router.command(binary("tabby-ipam-controller")?);
        command.args(self.backing.args(&Identity::Controller));
        command.args([
            format!("--interval={interval}"),
            format!("--grace={grace}"),
            format!("--metrics-address={metrics}"),
            "--log=info,ipam=debug".to_owned(),
        ]);
        let process = Process::spawn(command, router.logs(), "ipam-controller")?;
        self.controller = Some(Controller { process, metrics });
        Ok(())
    }

    /// The controller's `/metrics` page; fails if it is not running.
    pub fn controller_metrics(&mut self) -> Result<String> {
        let router = self.lab.core().context("no router")?;
        let controller = self.controller.as_mut().context("no controller started")?;
        controller.process.check_running()?;
        let address = controller.metrics;
        super::metrics::page(router.run(|| crate::http::get(address, "/metrics"))??)
    }

    /// SIGKILLs the controller.
    pub fn kill_controller(&mut self) {
        if let Some(mut controller) = self.controller.take() {
            controller.process.kill();
        }
    }

    /// The controller's pass counters; fails if it is not running.
    pub fn controller_passes(&mut self) -> Result<Passes> {
        let page = self.controller_metrics()?;
        let counter = |result: &str| -> Result<u64> {
            let name = format!("tabby_ipam_gc_passes_total{{result=\"{result}\"}} ");
            let Some(line) = page.lines().find(|l| l.starts_with(&name)) else {
                bail!("no {name:?} in the controller's metrics:\n{page}");
            };
            Ok(line[name.len()..].trim().parse()?)
        };
        Ok(Passes {
            ok: counter("ok")?,
            failed: counter("failed")?,
        })
    }
}
