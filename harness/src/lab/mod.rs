//! A lab: machines as network namespaces on one host.
//!
//! ```text
//!  tb-<id>-n1       tb-<id>-underlay               tb-<id>-n3
//!  eth0 ─────────── v-n1 ┐                   ┌ v-n3 ─────────── eth0
//!  tb-<id>-n2            br-a   (one bridge   br-b
//!  eth0 ─────────── v-n2 ┘  per subnet)      ┘
//!                        r-a ┐           ┌ r-b
//!                            tb-<id>-router (forwarding; a, b: host 1 of each prefix)
//! ```
//!
//! Even the bridges live in a namespace of their own, so nothing is created in the
//! host's namespace and parallel labs cannot collide, even with identical addresses.
//! Everything goes on drop, also when the test panics.
//!
//! Instead of the one router, a lab may have a top-of-rack router per rack subnet
//! ([`LabBuilder::tor`]): host 1 of its rack (the rack's gateway) and host 1, 2, ...
//! of a spine subnet the racks' routers share, for an AS-per-rack fabric.
//!
//! ```no_run
//! let lab = harness::Lab::new("two_subnets")
//!     .subnet("a", "10.0.1.0/24")
//!     .subnet("b", "10.0.2.0/24")
//!     .node("n1", "a")
//!     .node("n2", "b")
//!     .build()?;
//! lab.node("n1").ping(lab.node("n2").address())?;
//! # anyhow::Ok(())
//! ```

mod addressing;
mod node;

pub use addressing::Subnet;
pub use node::{NODE_INTERFACE, Node, Router};

use std::net::IpAddr;

use anyhow::{Context, Result, anyhow, bail};
use ipnet::IpNet;

use crate::logs::LogDir;
use crate::names;
use crate::netns::Netns;
use crate::registry::{self, Registration};

/// A node as declared, before it exists.
#[derive(Debug)]
struct NodeSpec {
    name: String,
    subnet: String,
    explicit: Vec<IpAddr>,
}

/// A top-of-rack router as declared.
#[derive(Debug)]
struct TorSpec {
    name: String,
    rack: String,
    spine: String,
}

/// Declares a lab; [`LabBuilder::build`] creates it. Mistakes in the declaration are
/// collected and reported by `build`.
#[derive(Debug)]
pub struct LabBuilder {
    test: String,
    subnets: Vec<Subnet>,
    nodes: Vec<NodeSpec>,
    router: bool,
    tors: Vec<TorSpec>,
    errors: Vec<String>,
}

impl LabBuilder {
    /// Adds subnet `name` (1-12 of a-z, 0-9, '-') with one prefix, e.g. "10.0.1.0/24".
    pub fn subnet(mut self, name: &str, prefix: &str) -> Self {
        if self.subnets.iter().any(|s| s.name == name) {
            self.errors.push(format!("subnet {name:?} declared twice"));
        } else if let Err(e) = names::check_short_name("subnet", name) {
            self.errors.push(e.to_string());
        } else {
            self.subnets.push(Subnet {
                name: name.to_owned(),
                prefixes: Vec::new(),
            });
            self = self.ipv6_or_second_prefix(name, prefix);
        }
        self
    }

    /// Adds a prefix of the other address family to `subnet`: dual stack.
    pub fn ipv6(self, subnet: &str, prefix: &str) -> Self {
        self.ipv6_or_second_prefix(subnet, prefix)
    }

    fn ipv6_or_second_prefix(mut self, subnet: &str, prefix: &str) -> Self {
        let result = prefix
            .parse::<IpNet>()
            .map_err(|e| anyhow!("subnet {subnet:?}: prefix {prefix:?}: {e}"))
            .and_then(|p| {
                self.subnets
                    .iter_mut()
                    .find(|s| s.name == subnet)
                    .ok_or_else(|| anyhow!("no subnet {subnet:?} declared"))?
                    .add_prefix(p)
            });
        if let Err(e) = result {
            self.errors.push(e.to_string());
        }
        self
    }

    /// Adds node `name` on `subnet`, addressed automatically (host 10, 11, ... of each
    /// of the subnet's prefixes, in declaration order).
    pub fn node(self, name: &str, subnet: &str) -> Self {
        self.node_at(name, subnet, &[])
    }

    /// Adds every `(name, subnet)` node.
    pub fn nodes(self, nodes: &[(&str, &str)]) -> Self {
        nodes
            .iter()
            .fold(self, |lab, (name, subnet)| lab.node(name, subnet))
    }

    /// Adds node `name` on `subnet` with explicit addresses (others automatic).
    pub fn node_at(mut self, name: &str, subnet: &str, addresses: &[&str]) -> Self {
        let explicit: Result<Vec<IpAddr>> = addresses
            .iter()
            .map(|a| {
                a.parse()
                    .map_err(|e| anyhow!("node {name:?}: address {a:?}: {e}"))
            })
            .collect();
        let checked = names::check_short_name("node", name).and_then(|()| {
            if ["underlay", "router"].contains(&name) || name.starts_with("pod-") {
                bail!("node name {name:?} is reserved");
            }
            if self.nodes.iter().any(|n| n.name == name) {
                bail!("node {name:?} declared twice");
            }
            Ok(())
        });
        match checked.and(explicit) {
            Ok(explicit) => self.nodes.push(NodeSpec {
                name: name.to_owned(),
                subnet: subnet.to_owned(),
                explicit,
            }),
            Err(e) => self.errors.push(e.to_string()),
        }
        self
    }

    /// Adds the router even with a single subnet (it is added anyway with several,
    /// unless the lab has top-of-rack routers).
    pub fn router(mut self) -> Self {
        self.router = true;
        self
    }

    /// Adds top-of-rack router `name` (a namespace forwarding between its legs):
    /// host 1 of subnet `rack`, the gateway of the nodes there, and the next free
    /// host (1, 2, ...) of subnet `spine`. A lab with top-of-rack routers has no
    /// other router.
    pub fn tor(mut self, name: &str, rack: &str, spine: &str) -> Self {
        let checked = names::check_short_name("router", name).and_then(|()| {
            if self.tors.iter().any(|t| t.name == name || t.rack == rack) {
                bail!("router {name:?} or a router for rack {rack:?} declared twice");
            }
            Ok(())
        });
        match checked {
            Ok(()) => self.tors.push(TorSpec {
                name: name.to_owned(),
                rack: rack.to_owned(),
                spine: spine.to_owned(),
            }),
            Err(e) => self.errors.push(e.to_string()),
        }
        self
    }

    /// Creates the lab. Sweeps leftovers of crashed runs first.
    pub fn build(self) -> Result<Lab> {
        if !self.errors.is_empty() {
            bail!("lab {}: {}", self.test, self.errors.join("; "));
        }
        if let Some(s) = self.subnets.iter().find(|s| s.prefixes.is_empty()) {
            bail!("lab {}: subnet {:?} has no prefix", self.test, s.name);
        }
        registry::sweep();
        let registration = Registration::new()?;
        let id = registration.id().to_owned();
        let logs = LogDir::with_id(&self.test, &id)?;
        let underlay = Netns::create(&names::netns_name(&id, "underlay"), logs.path())?;
        let mut lab = Lab {
            nodes: Vec::new(),
            router: None,
            tors: Vec::new(),
            underlay,
            subnets: self.subnets,
            logs,
            test: self.test,
            registration,
        };
        lab.create_bridges()?;
        if !self.tors.is_empty() {
            for (index, tor) in self.tors.iter().enumerate() {
                lab.create_tor(index, tor)
                    .with_context(|| format!("lab {}: router {}", lab.test, tor.name))?;
            }
            lab.route_between_racks(&self.tors)?;
        } else if self.router || lab.subnets.len() > 1 {
            lab.create_router()?;
        }
        for spec in &self.nodes {
            lab.create_node(spec)
                .with_context(|| format!("lab {}: node {}", lab.test, spec.name))?;
        }
        Ok(lab)
    }
}

/// A running lab; see the module documentation.
#[derive(Debug)]
pub struct Lab {
    // Fields drop in order: machines first, the registration last.
    nodes: Vec<Node>,
    router: Option<Router>,
    tors: Vec<(String, Router)>,
    underlay: Netns,
    subnets: Vec<Subnet>,
    logs: LogDir,
    test: String,
    registration: Registration,
}

impl Lab {
    /// Starts declaring a lab for test `test` (names its log directory).
    #[allow(clippy::new_ret_no_self)] // `Lab::new(..)...build()` reads best in tests
    pub fn new(test: &str) -> LabBuilder {
        LabBuilder {
            test: test.to_owned(),
            subnets: Vec::new(),
            nodes: Vec::new(),
            router: false,
            tors: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Two racks behind the router, subnets `a` (10.0.1.0/24) and `b`
    /// (10.0.2.0/24), with every `(name, rack)` node.
    pub fn two_racks(test: &str, nodes: &[(&str, &str)]) -> Result<Self> {
        Self::new(test)
            .subnet("a", "10.0.1.0/24")
            .subnet("b", "10.0.2.0/24")
            .nodes(nodes)
            .build()
    }

    /// The run's unique id, part of every namespace name.
    pub fn id(&self) -> &str {
        self.registration.id()
    }

    pub fn logs(&self) -> &LogDir {
        &self.logs
    }

    /// Node `name`. Panics if the lab has no such node: a mistake in the test itself.
    pub fn node(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("lab {} has no node {name:?}", self.test))
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Subnet `name`. Panics if the lab has no such subnet.
    pub fn subnet(&self, name: &str) -> &Subnet {
        self.subnets
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("lab {} has no subnet {name:?}", self.test))
    }

    pub fn router(&self) -> Option<&Router> {
        self.router.as_ref()
    }

    /// The router's address on `subnet`, of the family of the first node's
    /// address (where a top-of-rack router peers with that rack's nodes).
    pub fn router_address_in(&self, subnet: &str) -> Result<IpAddr> {
        let router = self.router().context("the lab has no router")?;
        let like = self.nodes.first().context("the lab has no node")?.address();
        router
            .address_in(subnet, like)
            .with_context(|| format!("the router has no address on subnet {subnet}"))
    }

    /// The router shared services (etcd) run on: the lab's router, else its first
    /// top-of-rack router.
    pub fn core(&self) -> Option<&Router> {
        self.router.as_ref().or(self.tors.first().map(|(_, r)| r))
    }

    /// Top-of-rack router `name`. Panics if the lab has none of that name.
    pub fn tor(&self, name: &str) -> &Router {
        self.tors
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, router)| router)
            .unwrap_or_else(|| panic!("lab {} has no router {name:?}", self.test))
    }

    /// The namespace holding the bridges.
    pub fn underlay(&self) -> &Netns {
        &self.underlay
    }

    /// A new pod namespace `tb-<id>-pod-<name>` (with `lo` up and nothing else, for the
    /// CNI plugin to plug in), deleted when the returned value drops.
    pub fn pod(&self, name: &str) -> Result<Netns> {
        names::check_short_name("pod", name)?;
        Netns::create(
            &names::netns_name(self.id(), &format!("pod-{name}")),
            self.logs.path(),
        )
    }

    /// Names of the namespaces currently present that belong to this lab.
    pub fn namespaces(&self) -> Vec<String> {
        let prefix = names::netns_prefix(self.id());
        crate::netns::list()
            .into_iter()
            .filter(|n| n.starts_with(&prefix))
            .collect()
    }

    fn create_bridges(&self) -> Result<()> {
        for subnet in &self.subnets {
            let bridge = subnet.bridge();
            self.underlay
                .ip(&format!("link add {bridge} type bridge mcast_snooping 0"))?;
            self.underlay.ip(&format!("link set dev {bridge} up"))?;
        }
        Ok(())
    }

    /// A veth from the underlay's bridge of `subnet` into `netns`, named `outer` on the
    /// bridge and `inner` inside, both up.
    fn plug(&self, subnet: &Subnet, outer: &str, netns: &Netns, inner: &str) -> Result<()> {
        let ul = &self.underlay;
        ul.ip(&format!(
            "link add {outer} type veth peer name {inner} netns {}",
            netns.name()
        ))?;
        ul.ip(&format!(
            "link set dev {outer} master {} up",
            subnet.bridge()
        ))?;
        netns.ip(&format!("link set dev {inner} up"))?;
        Ok(())
    }

    /// A namespace forwarding between the legs it will be given.
    fn forwarding_namespace(&self, name: &str) -> Result<Netns> {
        let netns = Netns::create(&names::netns_name(self.id(), name), self.logs.path())?;
        netns.sysctl("net.ipv4.ip_forward", "1")?;
        netns.sysctl("net.ipv6.conf.all.forwarding", "1")?;
        Ok(netns)
    }

    fn create_tor(&mut self, index: usize, spec: &TorSpec) -> Result<()> {
        let netns = self.forwarding_namespace(&spec.name)?;
        let spine_host = 1 + self.tors.iter().filter(|(_, r)| r.on(&spec.spine)).count();
        let mut addresses = Vec::new();
        for (name, host) in [(&spec.rack, 1), (&spec.spine, spine_host as u32)] {
            let subnet = self
                .subnets
                .iter()
                .find(|s| s.name == *name)
                .ok_or_else(|| anyhow!("no subnet {name:?} declared"))?;
            self.plug(subnet, &format!("t{index}-{name}"), &netns, name)?;
            for address in subnet.host_addresses(host)? {
                netns.ip(&format!("addr add {address} dev {name} nodad"))?;
                addresses.push((name.clone(), address));
            }
        }
        self.tors
            .push((spec.name.clone(), Router { addresses, netns }));
        Ok(())
    }

    /// Each top-of-rack router reaches the other racks' subnets through their
    /// routers, as a fabric's own routing would have it (pods' routes come over BGP).
    fn route_between_racks(&self, tors: &[TorSpec]) -> Result<()> {
        // `self.tors` holds the routers in the order `tors` declares them.
        let racks: Vec<(&TorSpec, &Router)> =
            tors.iter().zip(self.tors.iter().map(|(_, r)| r)).collect();
        for (me, router) in &racks {
            for (other, via) in racks.iter().filter(|(t, _)| t.name != me.name) {
                for prefix in &self.subnet(&other.rack).prefixes {
                    if let Some(gateway) = via.address_in(&other.spine, prefix.addr()) {
                        router.ip(&format!("route add {prefix} via {gateway}"))?;
                    }
                }
            }
        }
        Ok(())
    }

    fn create_router(&mut self) -> Result<()> {
        let netns = self.forwarding_namespace("router")?;
        let mut addresses = Vec::new();
        for subnet in &self.subnets {
            let inner = subnet.name.as_str();
            self.plug(subnet, &format!("r-{inner}"), &netns, inner)?;
            for address in subnet.router_addresses()? {
                netns.ip(&format!("addr add {address} dev {inner} nodad"))?;
                addresses.push((subnet.name.clone(), address));
            }
        }
        self.router = Some(Router { addresses, netns });
        Ok(())
    }

    fn create_node(&mut self, spec: &NodeSpec) -> Result<()> {
        let subnet = self
            .subnets
            .iter()
            .find(|s| s.name == spec.subnet)
            .ok_or_else(|| anyhow!("no subnet {:?} declared", spec.subnet))?;
        let index = self
            .nodes
            .iter()
            .filter(|n| n.subnet == spec.subnet)
            .count();
        let addresses = addressing::node_addresses(subnet, index as u32, &spec.explicit)?;
        let netns = Netns::create(&names::netns_name(self.id(), &spec.name), self.logs.path())?;
        self.plug(subnet, &format!("v-{}", spec.name), &netns, NODE_INTERFACE)?;
        for address in &addresses {
            netns.ip(&format!("addr add {address} dev {NODE_INTERFACE} nodad"))?;
            let routers = self.router.iter().chain(self.tors.iter().map(|(_, r)| r));
            let gateway = routers
                .filter_map(|r| r.address_in(&subnet.name, address.addr()))
                .next();
            if let Some(gateway) = gateway {
                let family = if gateway.is_ipv4() { "-4" } else { "-6" };
                netns.ip(&format!("{family} route add default via {gateway}"))?;
            }
        }
        self.nodes.push(Node {
            name: spec.name.clone(),
            subnet: spec.subnet.clone(),
            addresses,
            netns,
        });
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "lab {}: logs kept in {}",
                self.test,
                self.logs.path().display()
            );
        }
    }
}
