//! The machines of a lab: nodes (a namespace with `eth0` on a subnet's bridge) and
//! the router joining the subnets.

use std::net::{IpAddr, Ipv4Addr};
use std::ops::Deref;

use ipnet::IpNet;

use crate::netns::Netns;

/// The name of a node's underlay interface inside its namespace.
pub const NODE_INTERFACE: &str = "eth0";

/// A node: its own namespace with `eth0` on one subnet. Derefs to its [`Netns`] for
/// running commands inside.
#[derive(Debug)]
pub struct Node {
    pub(crate) name: String,
    pub(crate) subnet: String,
    pub(crate) addresses: Vec<IpNet>,
    pub(crate) netns: Netns,
}

impl Node {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The subnet `eth0` is on.
    pub fn subnet(&self) -> &str {
        &self.subnet
    }

    /// The node's main address: its IPv4 address if it has one, else its IPv6 one.
    pub fn address(&self) -> IpAddr {
        self.addresses
            .iter()
            .find(|a| a.addr().is_ipv4())
            .unwrap_or(&self.addresses[0])
            .addr()
    }

    /// The node's IPv4 address, e.g. for a BGP router id.
    pub fn ipv4(&self) -> Option<Ipv4Addr> {
        self.addresses.iter().find_map(|a| match a.addr() {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
    }

    /// The node's IPv6 address, on a dual-stack or IPv6 subnet.
    pub fn address6(&self) -> Option<IpAddr> {
        self.addresses
            .iter()
            .find(|a| a.addr().is_ipv6())
            .map(IpNet::addr)
    }

    /// Every address of `eth0`, with prefix lengths.
    pub fn addresses(&self) -> &[IpNet] {
        &self.addresses
    }

    pub fn netns(&self) -> &Netns {
        &self.netns
    }
}

impl Deref for Node {
    type Target = Netns;
    fn deref(&self) -> &Netns {
        &self.netns
    }
}

/// A router namespace: one interface per subnet it joins (named after the subnet),
/// forwarding on.
#[derive(Debug)]
pub struct Router {
    pub(crate) addresses: Vec<(String, IpNet)>,
    pub(crate) netns: Netns,
}

impl Router {
    /// The router's address in `subnet` of the family of `like`: the nodes' gateway.
    pub fn address_in(&self, subnet: &str, like: IpAddr) -> Option<IpAddr> {
        self.addresses
            .iter()
            .find(|(s, a)| s == subnet && a.addr().is_ipv4() == like.is_ipv4())
            .map(|(_, a)| a.addr())
    }

    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// Whether the router has a leg in `subnet`.
    pub fn on(&self, subnet: &str) -> bool {
        self.addresses.iter().any(|(s, _)| s == subnet)
    }
}

impl Deref for Router {
    type Target = Netns;
    fn deref(&self) -> &Netns {
        &self.netns
    }
}
