//! The daemons' `/metrics` pages, fetched from inside their namespaces as
//! Prometheus fetches them from the node, and a sample read off a page.

use std::net::SocketAddr;

use anyhow::{Result, bail};

use super::Cluster;

/// tabby-agent's default metrics port, on the node's address.
pub const AGENT_PORT: u16 = 9190;
/// The port the reflectors this harness starts serve metrics on.
pub const REFLECTOR_PORT: u16 = 9191;

/// The body of a `200 OK` response.
pub(super) fn page(response: String) -> Result<String> {
    let Some((head, body)) = response.split_once("\r\n\r\n") else {
        bail!("not an HTTP response: {response:?}");
    };
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        bail!("/metrics answered {head:?}");
    }
    Ok(body.to_owned())
}

impl Cluster {
    /// The `/metrics` page of the agent on `node`.
    pub fn agent_metrics(&self, node: &str) -> Result<String> {
        self.metrics_of(node, AGENT_PORT)
    }

    /// The `/metrics` page of the reflector on `node`.
    pub fn reflector_metrics(&self, node: &str) -> Result<String> {
        self.metrics_of(node, REFLECTOR_PORT)
    }

    fn metrics_of(&self, node: &str, port: u16) -> Result<String> {
        let node = self.lab.node(node);
        let address = SocketAddr::new(node.address(), port);
        page(node.run(|| crate::http::get(address, "/metrics"))??)
    }
}

/// The value of `series` (its name and labels as the page writes them, e.g.
/// `tabby_agent_bgp_peer_up{peer="10.0.1.5",type="global"}`) on `page`.
pub fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}
