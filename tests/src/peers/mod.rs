//! Real BGP peers started inside a namespace from one typed configuration: BIRD2
//! ([`Bird`]), FRR bgpd without zebra ([`Frr`]) and GoBGP ([`GoBgp`]). Each answers
//! the same questions through [`BgpPeer`], reading the daemon's own CLI.
//!
//! ```no_run
//! # use std::time::Duration;
//! # use tests::peers::{BgpConfig, BgpPeer, Bird, Neighbor};
//! # fn f(node: &tests::Node, other: &tests::Node) -> anyhow::Result<()> {
//! let config = BgpConfig::new(65001, "10.0.1.10".parse()?)
//!     .neighbor(Neighbor::new(other.address(), 65002))
//!     .route("10.100.0.0/24".parse()?);
//! let bird = Bird::start(node, &config)?;
//! bird.wait_established(other.address(), Duration::from_secs(20))?;
//! # Ok(()) }
//! ```

mod bird;
mod config;
mod frr;
mod gobgp;

pub use bird::Bird;
pub use config::{BgpConfig, Neighbor};
pub use frr::Frr;
pub use gobgp::GoBgp;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use ipnet::IpNet;

use crate::netns::Netns;
use crate::wait::wait_until;

/// A best route in a peer's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub prefix: IpNet,
    /// None for routes the peer originates itself.
    pub next_hop: Option<IpAddr>,
    /// Empty for local and iBGP-learned routes.
    pub as_path: Vec<u32>,
}

/// What tests ask a running peer.
pub trait BgpPeer {
    /// True when the session with `neighbor` is Established.
    fn established(&self, neighbor: IpAddr) -> Result<bool>;

    /// The best route of every prefix in the peer's tables (IPv4 and IPv6).
    fn routes(&self) -> Result<Vec<Route>>;

    /// Waits until the session with `neighbor` is Established.
    fn wait_established(&self, neighbor: IpAddr, timeout: Duration) -> Result<()> {
        wait_until(
            timeout,
            &format!("session with {neighbor} established"),
            || self.established(neighbor),
        )
    }

    /// Waits until the session with `neighbor` is no longer Established.
    fn wait_down(&self, neighbor: IpAddr, timeout: Duration) -> Result<()> {
        wait_until(timeout, &format!("session with {neighbor} down"), || {
            Ok(if self.established(neighbor)? {
                Err("still established".to_owned())
            } else {
                Ok(())
            })
        })
    }

    /// Waits until the peer has a best route for `prefix`; returns it.
    fn wait_route(&self, prefix: IpNet, timeout: Duration) -> Result<Route> {
        wait_until(timeout, &format!("a route to {prefix}"), || {
            let routes = self.routes()?;
            Ok(match routes.iter().find(|r| r.prefix == prefix) {
                Some(route) => Ok(route.clone()),
                None => Err(format!("routes: {routes:?}")),
            })
        })
    }
}

/// Writes a generated config into the namespace's log directory (kept for reading
/// after a failure) and returns its path.
fn write_config(netns: &Netns, file: &str, contents: &str) -> Result<PathBuf> {
    let path = netns.logs().join(file);
    std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// A short private directory for control sockets: Unix socket paths are limited to
/// 108 bytes, too few for log directories named after tests.
fn socket_dir() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("tabby-peer-")
        .tempdir()
        .context("creating a socket directory")
}

/// The part of a harness namespace name after `tb-<id>-`, for file names.
fn role(netns: &Netns) -> &str {
    let name = netns.name();
    name.strip_prefix("tb-")
        .and_then(|rest| rest.split_once('-'))
        .map_or(name, |(_, role)| role)
}

/// A next hop, `None` when unspecified (a local route).
fn next_hop(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>().ok().filter(|a| !a.is_unspecified())
}
