//! Real BGP peers started inside a namespace from one typed configuration: BIRD2
//! ([`Bird`]), FRR bgpd without zebra ([`Frr`]) and GoBGP ([`GoBgp`]). Each answers
//! the same questions through [`BgpPeer`], reading the daemon's own CLI. BIRD and
//! FRR's bfdd ([`Bfdd`]) also run standalone BFD sessions ([`BgpConfig::bfd_session`])
//! and report them through [`BfdPeer`].
//!
//! ```no_run
//! # use std::time::Duration;
//! # use harness::peers::{BgpConfig, BgpPeer, Bird, Neighbor};
//! # fn f(node: &harness::Node, other: &harness::Node) -> anyhow::Result<()> {
//! let config = BgpConfig::new(65001, "10.0.1.10".parse()?)
//!     .neighbor(Neighbor::new(other.address(), 65002))
//!     .route("10.100.0.0/24".parse()?);
//! let bird = Bird::start(node, &config)?;
//! bird.wait_established(other.address(), Duration::from_secs(20))?;
//! # Ok(()) }
//! ```

mod bfdd;
mod bird;
mod config;
mod frr;
mod gobgp;

pub use bfdd::Bfdd;
pub use bird::Bird;
pub use config::{Bfd, BfdSession, BgpConfig, Neighbor};
pub use frr::Frr;
pub use gobgp::GoBgp;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use bfd::State;
use ipnet::IpNet;

use crate::netns::Netns;
use crate::wait::wait_until;

/// A best route in a peer's table, with the attributes its CLI shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub prefix: IpNet,
    /// None for routes the peer originates itself.
    pub next_hop: Option<IpAddr>,
    /// Empty for local and iBGP-learned routes.
    pub as_path: Vec<u32>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    /// Standard communities as `ASN:VALUE`, well-known ones in numbers too,
    /// sorted.
    pub communities: Vec<String>,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: Vec<Ipv4Addr>,
}

impl Route {
    /// A route with only its prefix known yet.
    pub fn new(prefix: IpNet) -> Self {
        Self {
            prefix,
            next_hop: None,
            as_path: Vec::new(),
            med: None,
            local_pref: None,
            communities: Vec::new(),
            originator_id: None,
            cluster_list: Vec::new(),
        }
    }
}

/// `ASN:VALUE` for a community however a daemon prints it: `(a,b)`, `a:b`, a
/// 32-bit number, or FRR's names for the well-known ones.
pub fn community(text: &str) -> Option<String> {
    let text = text.trim().trim_start_matches('(').trim_end_matches(')');
    let numeric = match text {
        "no-export" | "noExport" => "65535:65281",
        "no-advertise" | "noAdvertise" => "65535:65282",
        "local-AS" | "no-export-subconfed" | "noExportSubconfed" => "65535:65283",
        other => other,
    };
    if let Ok(value) = numeric.parse::<u32>() {
        return Some(format!("{}:{}", value >> 16, value & 0xffff));
    }
    let (asn, value) = numeric.split_once([':', ','])?;
    Some(format!(
        "{}:{}",
        asn.trim().parse::<u16>().ok()?,
        value.trim().parse::<u16>().ok()?
    ))
}

/// What tests ask a running peer.
pub trait BgpPeer {
    /// True when the session with `neighbor` is Established.
    fn established(&self, neighbor: IpAddr) -> Result<bool>;

    /// The best route of every prefix in the peer's tables (IPv4 and IPv6).
    fn routes(&self) -> Result<Vec<Route>>;

    /// The best route to `prefix` with all its attributes.
    fn route(&self, prefix: IpNet) -> Result<Option<Route>> {
        Ok(self.routes()?.into_iter().find(|r| r.prefix == prefix))
    }

    /// Stops originating `prefix` (one of the config's routes).
    fn withdraw(&self, prefix: IpNet) -> Result<()>;

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
            Ok(match self.route(prefix)? {
                Some(route) => Ok(route),
                None => Err(format!("routes: {:?}", self.routes()?)),
            })
        })
    }

    /// Waits until the peer has no route to `prefix`.
    fn wait_no_route(&self, prefix: IpNet, timeout: Duration) -> Result<()> {
        wait_until(timeout, &format!("no route to {prefix}"), || {
            Ok(match self.route(prefix)? {
                Some(route) => Err(format!("still {route:?}")),
                None => Ok(()),
            })
        })
    }
}

/// What tests ask a daemon running BFD sessions.
pub trait BfdPeer {
    /// The state of the session with `remote`; None when the daemon has none.
    fn bfd_state(&self, remote: IpAddr) -> Result<Option<State>>;

    /// Waits until the session with `remote` is in `state`.
    fn wait_bfd_state(&self, remote: IpAddr, state: State, timeout: Duration) -> Result<()> {
        wait_until(
            timeout,
            &format!("BFD session with {remote} {state}"),
            || {
                Ok(match self.bfd_state(remote)? {
                    Some(now) if now == state => Ok(()),
                    now => Err(format!("it is {now:?}")),
                })
            },
        )
    }

    /// Waits until the session with `remote` is no longer Up: Down, or already
    /// Init again when the other side keeps sending; returns that state.
    fn wait_bfd_down(&self, remote: IpAddr, timeout: Duration) -> Result<State> {
        wait_until(timeout, &format!("BFD session with {remote} down"), || {
            Ok(match self.bfd_state(remote)? {
                Some(State::Up) => Err("still Up".to_owned()),
                Some(state) => Ok(state),
                None => Err("no such session".to_owned()),
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

/// FRR's vtysh talking to `daemon` (bgpd, bfdd, zebra) through its socket in
/// `sockets`.
fn vtysh(sockets: &Path, daemon: &str) -> Command {
    let mut command = Command::new("vtysh");
    command
        .arg("--vty_socket")
        .arg(sockets)
        .args(["-d", daemon]);
    command
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
