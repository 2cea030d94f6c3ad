//! The top-of-rack router: BIRD (routing: what it learns goes into the router
//! namespace's kernel) or FRR bgpd (without zebra: it learns but does not
//! forward) in the router namespace, AS [`TOR_AS`], every node a passive eBGP
//! neighbour. It originates nothing: the nodes' tables stay what the datastore
//! implies, and the blocks it sends back carry the nodes' own AS, which they
//! refuse.

use std::net::IpAddr;

use anyhow::{Context, Result};

use super::operator::TOR_AS;
use harness::peers::{BgpConfig, BgpPeer, Bird, Frr, Neighbor};

/// Which daemon, on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Tor {
    /// BIRD 2, installing what it learns in the router's kernel.
    Bird,
    /// FRR bgpd (without zebra: it learns, but does not forward).
    Frr,
    /// No top-of-rack router.
    None,
}

impl Tor {
    pub fn label(self) -> &'static str {
        match self {
            Tor::Bird => "BIRD",
            Tor::Frr => "FRR",
            Tor::None => "none",
        }
    }
}

#[derive(Debug)]
pub enum TopOfRack {
    Bird(Bird),
    Frr(Frr),
}

impl TopOfRack {
    /// Starts `kind` in `netns` (router id `router_id`), peering with `nodes`.
    pub fn start(
        kind: Tor,
        netns: &harness::Netns,
        router_id: IpAddr,
        nodes: &[IpAddr],
    ) -> Result<Option<Self>> {
        let IpAddr::V4(router_id) = router_id else {
            anyhow::bail!("the router has no IPv4 address for a router id");
        };
        let mut config = BgpConfig::new(TOR_AS, router_id);
        for node in nodes {
            config = config.neighbor(Neighbor::new(*node, super::operator::CLUSTER_AS).passive());
        }
        let started = match kind {
            Tor::Bird => Some(Self::Bird(Bird::start_routing(netns, &config)?)),
            Tor::Frr => Some(Self::Frr(Frr::start(netns, &config)?)),
            Tor::None => None,
        };
        Ok(started)
    }

    pub fn kind(&self) -> Tor {
        match self {
            Self::Bird(_) => Tor::Bird,
            Self::Frr(_) => Tor::Frr,
        }
    }

    pub fn peer(&self) -> &dyn BgpPeer {
        match self {
            Self::Bird(bird) => bird,
            Self::Frr(frr) => frr,
        }
    }

    pub fn pid(&self) -> u32 {
        match self {
            Self::Bird(bird) => bird.process().pid(),
            Self::Frr(frr) => frr.process().pid(),
        }
    }

    /// Whether its session with each of `nodes` is up.
    pub fn sessions(&self, nodes: &[IpAddr]) -> Result<Vec<bool>> {
        nodes
            .iter()
            .map(|n| self.peer().established(*n))
            .collect::<Result<_>>()
            .context("asking the top-of-rack router")
    }
}
