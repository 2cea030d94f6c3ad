//! Which address this node speaks BGP from (and tunnels to), chosen the way
//! calico-node's `IP_AUTODETECTION_METHOD` chooses it:
//!
//! - `first-found`: the first address on an interface that is up, skipping
//!   container, tunnel and virtual devices (docker*, cali*, tunl*, vxlan*, veth*, ...);
//! - `interface=REGEX[,REGEX]`: the first address on an interface whose name matches;
//! - `skip-interface=REGEX[,REGEX]`: first-found, also skipping those names;
//! - `can-reach=DESTINATION`: the address the kernel would use towards it (an
//!   address, or a host name resolved by the system's resolver to the family's
//!   first address);
//! - `cidr=CIDR[,CIDR]`: the first address inside one of the ranges;
//! - `kubernetes-internal-ip`: the Kubernetes Node's `InternalIP` of the family,
//!   which must be on an interface (read from the API by the daemon, then chosen
//!   as an explicit address: [`internal_ip`]);
//!
//! or an explicit address, which must be on one of the node's interfaces. The
//! choice is pure over the interface list; [`source_towards`] and a `can-reach`
//! host name's resolution are the lookups.

use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::str::FromStr;

use ipnet::IpNet;
use regex::Regex;

/// Interfaces `first-found` never picks (Calico's list, and tabby's own devices).
const SKIPPED: &[&str] = &[
    "^docker.*",
    "^cbr.*",
    "^dummy.*",
    "^virbr.*",
    "^lxcbr.*",
    "^veth.*",
    "^lo$",
    "^cali.*",
    "^tunl.*",
    "^flannel.*",
    "^kube-ipvs.*",
    "^cni.*",
    "^vxlan.*",
    "^wireguard.*",
    "^wg.*",
    "^nodelocaldns.*",
    "^podman.*",
];

/// An interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub up: bool,
    pub mtu: u32,
    /// Addresses with their prefix length.
    pub addresses: Vec<IpNet>,
}

/// The chosen address, the interface it is on and that interface's MTU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub address: IpNet,
    pub interface: String,
    pub mtu: u32,
}

/// How to find the address.
#[derive(Debug, Clone)]
pub enum Method {
    FirstFound,
    Interface(Vec<Regex>),
    SkipInterface(Vec<Regex>),
    CanReach(Destination),
    Cidr(Vec<IpNet>),
    KubernetesInternalIp,
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let joined = |items: &[Regex]| {
            items
                .iter()
                .map(Regex::as_str)
                .collect::<Vec<_>>()
                .join(",")
        };
        match self {
            Self::FirstFound => f.write_str("first-found"),
            Self::Interface(r) => write!(f, "interface={}", joined(r)),
            Self::SkipInterface(r) => write!(f, "skip-interface={}", joined(r)),
            Self::CanReach(destination) => write!(f, "can-reach={destination}"),
            Self::KubernetesInternalIp => f.write_str("kubernetes-internal-ip"),
            Self::Cidr(c) => {
                let c: Vec<String> = c.iter().map(IpNet::to_string).collect();
                write!(f, "cidr={}", c.join(","))
            }
        }
    }
}

impl FromStr for Method {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let regexes = |list: &str| {
            list.split(',')
                .map(|r| {
                    Regex::new(r).map_err(|e| format!("{r:?} is not a regular expression: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        match text.split_once('=') {
            None if text == "first-found" => Ok(Self::FirstFound),
            None if text == "kubernetes-internal-ip" => Ok(Self::KubernetesInternalIp),
            Some(("interface", list)) => regexes(list).map(Self::Interface),
            Some(("skip-interface", list)) => regexes(list).map(Self::SkipInterface),
            Some(("can-reach", destination)) => destination.parse().map(Self::CanReach),
            Some(("cidr", list)) => list
                .split(',')
                .map(|c| {
                    c.parse()
                        .map_err(|_| format!("cidr={list}: {c:?} is not a CIDR"))
                })
                .collect::<Result<Vec<IpNet>, _>>()
                .map(Self::Cidr),
            _ => Err(format!(
                "{text:?} is not an autodetection method: use first-found, interface=REGEX, \
                 skip-interface=REGEX, can-reach=ADDRESS|HOST, cidr=CIDR or kubernetes-internal-ip"
            )),
        }
    }
}

/// Where `can-reach` looks towards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Address(IpAddr),
    /// Resolved when the address is chosen, so a name with both families serves
    /// both.
    Host(String),
}

impl Destination {
    /// The address of family `ipv4` to look towards: the address itself (its
    /// family checked by the caller), or the host's first of that family.
    fn address(&self, ipv4: bool) -> Result<IpAddr, DetectError> {
        let host = match self {
            Self::Address(address) => return Ok(*address),
            Self::Host(host) => host,
        };
        let unresolved = |reason: String| DetectError::Unresolved {
            host: host.clone(),
            reason,
        };
        let mut resolved = (host.as_str(), 0)
            .to_socket_addrs()
            .map_err(|e| unresolved(format!("cannot resolve the name: {e}")))?;
        resolved
            .find(|a| a.is_ipv4() == ipv4)
            .map(|a| a.ip())
            .ok_or_else(|| {
                let family = if ipv4 { "IPv4" } else { "IPv6" };
                unresolved(format!("the name has no {family} address"))
            })
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Address(address) => address.fmt(f),
            Self::Host(host) => f.write_str(host),
        }
    }
}

impl FromStr for Destination {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if let Ok(address) = text.parse() {
            return Ok(Self::Address(address));
        }
        // A host name (RFC 1123): dot-separated labels of letters, digits and
        // inner hyphens, 253 characters at most.
        let label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        let host = text.strip_suffix('.').unwrap_or(text);
        if host.len() <= 253 && host.split('.').all(label) {
            return Ok(Self::Host(host.to_ascii_lowercase()));
        }
        Err(format!(
            "can-reach={text}: {text:?} is neither an IP address nor a host name"
        ))
    }
}

/// What the operator asked for one address family.
#[derive(Debug, Clone)]
pub enum AddressChoice {
    Autodetect(Method),
    /// This address; its prefix length is taken from the interface when not given.
    Explicit(IpNet),
    /// No address of this family.
    None,
}

impl FromStr for AddressChoice {
    type Err = String;

    /// `autodetect`, `none`, or an address (`10.0.0.5` or `10.0.0.5/24`).
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "autodetect" => Ok(Self::Autodetect(Method::FirstFound)),
            "none" => Ok(Self::None),
            _ => text
                .parse::<IpNet>()
                .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                .map(Self::Explicit)
                .map_err(|_| {
                    format!("{text:?} is not \"autodetect\", \"none\" or an IP address (with an optional /length)")
                }),
        }
    }
}

/// Why no address could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DetectError {
    #[error("no {family} address found with {method}; interfaces seen: {}", seen.join("; "))]
    NotFound {
        family: &'static str,
        method: String,
        seen: Vec<String>,
    },
    #[error("{address} is not on any interface of this node; interfaces seen: {}", seen.join("; "))]
    NotOnInterface { address: IpAddr, seen: Vec<String> },
    #[error("{address} is an {actual} address where an {wanted} one is needed")]
    WrongFamily {
        address: IpAddr,
        wanted: &'static str,
        actual: &'static str,
    },
    #[error("can-reach={destination}: no route from this node ({reason})")]
    Unreachable { destination: String, reason: String },
    #[error("can-reach={host}: {reason}")]
    Unresolved { host: String, reason: String },
    #[error(
        "kubernetes-internal-ip: the Kubernetes Node has no {family} InternalIP (it has: {})",
        if has.is_empty() { "none".to_owned() } else { has.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(", ") }
    )]
    NoInternalIp {
        family: &'static str,
        has: Vec<IpAddr>,
    },
    #[error(
        "kubernetes-internal-ip needs the kubernetes datastore (the Kubernetes Node's addresses)"
    )]
    NoKubernetes,
}

/// `kubernetes-internal-ip` made explicit: the Node's `InternalIP` of the family
/// among `internal` (the kubelet's report); any other choice as it is.
pub fn internal_ip(
    choice: &AddressChoice,
    ipv4: bool,
    internal: &[IpAddr],
) -> Result<AddressChoice, DetectError> {
    if !matches!(
        choice,
        AddressChoice::Autodetect(Method::KubernetesInternalIp)
    ) {
        return Ok(choice.clone());
    }
    internal
        .iter()
        .find(|ip| ip.is_ipv4() == ipv4)
        .map(|ip| AddressChoice::Explicit(IpNet::from(*ip)))
        .ok_or_else(|| DetectError::NoInternalIp {
            family: if ipv4 { "IPv4" } else { "IPv6" },
            has: internal.to_vec(),
        })
}

/// Chooses the address of one family (`ipv4`) as `choice` says. `can_reach` is the
/// kernel's source address towards a destination (see [`source_towards`]).
pub fn choose(
    choice: &AddressChoice,
    ipv4: bool,
    interfaces: &[Interface],
    can_reach: impl Fn(IpAddr) -> Result<IpAddr, String>,
) -> Result<Option<Detected>, DetectError> {
    let family = if ipv4 { "IPv4" } else { "IPv6" };
    let seen = || interfaces.iter().map(describe).collect::<Vec<_>>();
    let candidates = |keep: &dyn Fn(&Interface, &IpNet) -> bool| {
        interfaces
            .iter()
            .filter(|i| i.up)
            .flat_map(|i| i.addresses.iter().map(move |a| (i, a)))
            .filter(|(_, a)| a.addr().is_ipv4() == ipv4 && usable(a.addr()))
            .find(|(i, a)| keep(i, a))
            .map(|(i, a)| Detected {
                address: *a,
                interface: i.name.clone(),
                mtu: i.mtu,
            })
    };
    let method = match choice {
        AddressChoice::None => return Ok(None),
        AddressChoice::Explicit(address) => {
            let wanted = address.addr();
            if wanted.is_ipv4() != ipv4 {
                return Err(DetectError::WrongFamily {
                    address: wanted,
                    wanted: family,
                    actual: if ipv4 { "IPv6" } else { "IPv4" },
                });
            }
            let found = interfaces.iter().find_map(|i| {
                let on = i.addresses.iter().find(|a| a.addr() == wanted)?;
                Some((i, on))
            });
            return match found {
                Some((interface, on)) => Ok(Some(Detected {
                    // A length given explicitly wins; the interface's otherwise.
                    address: if address.prefix_len() == address.max_prefix_len() {
                        *on
                    } else {
                        *address
                    },
                    interface: interface.name.clone(),
                    mtu: interface.mtu,
                })),
                None => Err(DetectError::NotOnInterface {
                    address: wanted,
                    seen: seen(),
                }),
            };
        }
        AddressChoice::Autodetect(method) => method,
    };
    let skipped: Vec<Regex> = SKIPPED
        .iter()
        .map(|r| Regex::new(r).expect("the built-in patterns are valid"))
        .collect();
    let default = |i: &Interface| !skipped.iter().any(|r| r.is_match(&i.name));
    let found = match method {
        Method::FirstFound => candidates(&|i, _| default(i)),
        Method::Interface(names) => candidates(&|i, _| names.iter().any(|r| r.is_match(&i.name))),
        Method::SkipInterface(names) => {
            candidates(&|i, _| default(i) && !names.iter().any(|r| r.is_match(&i.name)))
        }
        Method::Cidr(ranges) => candidates(&|_, a| ranges.iter().any(|r| r.contains(&a.addr()))),
        // Made explicit by `internal_ip` before choosing; without the API, none.
        Method::KubernetesInternalIp => return Err(DetectError::NoKubernetes),
        Method::CanReach(destination) => {
            let address = destination.address(ipv4)?;
            if address.is_ipv4() != ipv4 {
                return Err(DetectError::WrongFamily {
                    address,
                    wanted: family,
                    actual: if ipv4 { "IPv6" } else { "IPv4" },
                });
            }
            let source = can_reach(address).map_err(|reason| DetectError::Unreachable {
                destination: destination.to_string(),
                reason,
            })?;
            candidates(&|_, a| a.addr() == source)
        }
    };
    found.map(Some).ok_or_else(|| DetectError::NotFound {
        family,
        method: method.to_string(),
        seen: seen(),
    })
}

/// The kernel's source address towards `destination`: a connected UDP socket's
/// local address (connecting sends nothing).
pub fn source_towards(destination: IpAddr) -> Result<IpAddr, String> {
    let any: SocketAddr = if destination.is_ipv4() {
        "0.0.0.0:0".parse().expect("a socket address")
    } else {
        "[::]:0".parse().expect("a socket address")
    };
    let socket = UdpSocket::bind(any).map_err(|e| e.to_string())?;
    socket
        .connect(SocketAddr::new(destination, 9))
        .map_err(|e| e.to_string())?;
    Ok(socket.local_addr().map_err(|e| e.to_string())?.ip())
}

/// Not loopback, not link-local: an address other nodes can reach.
fn usable(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local(),
        IpAddr::V6(v6) => !v6.is_loopback() && !v6.is_unicast_link_local(),
    }
}

fn describe(interface: &Interface) -> String {
    let addresses: Vec<String> = interface.addresses.iter().map(IpNet::to_string).collect();
    format!(
        "{} ({}{}{})",
        interface.name,
        if interface.up { "up" } else { "down" },
        if addresses.is_empty() { "" } else { " " },
        addresses.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interface(name: &str, up: bool, addresses: &[&str]) -> Interface {
        Interface {
            name: name.into(),
            up,
            mtu: 1500,
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
        }
    }

    /// A node with docker and a pod veth before its real interfaces.
    fn node() -> Vec<Interface> {
        vec![
            interface("lo", true, &["127.0.0.1/8", "::1/128"]),
            interface("docker0", true, &["172.17.0.1/16"]),
            interface("cali8ce18e28dcb", true, &["169.254.1.1/32"]),
            interface("eth0", false, &["192.0.2.99/24"]),
            interface(
                "eth1",
                true,
                &["fe80::1/64", "198.51.100.10/24", "fd00::10/64"],
            ),
            interface("eth2", true, &["203.0.113.10/24"]),
        ]
    }

    fn detect(choice: &str, ipv4: bool) -> Result<Option<Detected>, DetectError> {
        let choice: AddressChoice = match choice.parse::<Method>() {
            Ok(method) => AddressChoice::Autodetect(method),
            Err(_) => choice.parse().unwrap(),
        };
        choose(&choice, ipv4, &node(), |destination| {
            assert_eq!(destination.to_string(), "203.0.113.1");
            Ok("203.0.113.10".parse().unwrap())
        })
    }

    fn address(choice: &str, ipv4: bool) -> String {
        detect(choice, ipv4).unwrap().unwrap().address.to_string()
    }

    #[test]
    fn first_found_skips_container_devices_down_interfaces_and_link_local() {
        assert_eq!(address("first-found", true), "198.51.100.10/24");
        assert_eq!(address("first-found", false), "fd00::10/64");
        assert_eq!(
            detect("first-found", true).unwrap().unwrap().interface,
            "eth1"
        );
    }

    #[test]
    fn interface_skip_interface_cidr_and_can_reach_choose_as_calico_does() {
        assert_eq!(address("interface=eth2", true), "203.0.113.10/24");
        assert_eq!(address("interface=nope,eth[12]", true), "198.51.100.10/24");
        assert_eq!(address("skip-interface=eth1", true), "203.0.113.10/24");
        assert_eq!(address("cidr=203.0.113.0/24", true), "203.0.113.10/24");
        assert_eq!(address("can-reach=203.0.113.1", true), "203.0.113.10/24");
    }

    #[test]
    fn can_reach_takes_a_host_name_resolved_to_the_familys_address() {
        let method: Method = "can-reach=LocalHost.".parse().unwrap();
        assert_eq!(method.to_string(), "can-reach=localhost");
        let Method::CanReach(destination) = &method else {
            panic!("{method:?}");
        };
        // /etc/hosts names localhost on every system this runs on; no query leaves
        // the machine.
        assert_eq!(
            destination.address(true).unwrap(),
            IpAddr::from([127, 0, 0, 1])
        );
        // No name that fails to resolve is tried: the system resolver would ask
        // a name server beyond this machine.
    }

    #[test]
    fn an_explicit_address_must_be_on_an_interface_and_takes_its_prefix() {
        assert_eq!(address("203.0.113.10", true), "203.0.113.10/24");
        assert_eq!(address("203.0.113.10/26", true), "203.0.113.10/26");
        let error = detect("192.0.2.7", true).unwrap_err();
        assert_eq!(
            error.to_string(),
            "192.0.2.7 is not on any interface of this node; interfaces seen: lo (up \
             127.0.0.1/8 ::1/128); docker0 (up 172.17.0.1/16); cali8ce18e28dcb (up \
             169.254.1.1/32); eth0 (down 192.0.2.99/24); eth1 (up fe80::1/64 \
             198.51.100.10/24 fd00::10/64); eth2 (up 203.0.113.10/24)"
        );
        assert!(matches!(
            detect("fd00::10", true),
            Err(DetectError::WrongFamily { .. })
        ));
    }

    #[test]
    fn none_means_no_address_of_that_family() {
        assert_eq!(detect("none", false), Ok(None));
    }

    #[test]
    fn nothing_found_names_the_method_and_what_was_seen() {
        let error = detect("interface=wlan.*", true).unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with("no IPv4 address found with interface=wlan.*; interfaces seen: lo"),
            "{text}"
        );
    }

    #[test]
    fn bad_methods_and_addresses_say_what_is_accepted() {
        assert!(
            "anything"
                .parse::<Method>()
                .unwrap_err()
                .contains("first-found, interface=REGEX")
        );
        assert!(
            "interface=("
                .parse::<Method>()
                .unwrap_err()
                .contains("regular expression")
        );
        assert_eq!(
            "can-reach=bad_name!".parse::<Method>().unwrap_err(),
            "can-reach=bad_name!: \"bad_name!\" is neither an IP address nor a host name"
        );
        assert!("can-reach=-a.example".parse::<Method>().is_err());
        assert!(
            "10.0.0.300"
                .parse::<AddressChoice>()
                .unwrap_err()
                .contains("autodetect")
        );
    }

    #[test]
    fn install_kubernetes_internal_ip_needs_the_nodes_address_from_the_api() {
        let method: Method = "kubernetes-internal-ip".parse().unwrap();
        assert_eq!(method.to_string(), "kubernetes-internal-ip");
        let choice = AddressChoice::Autodetect(method);
        // Without the API's answer (etcd), choosing says what it needs.
        let error = choose(&choice, true, &node(), |_| unreachable!()).unwrap_err();
        assert!(
            error.to_string().contains("kubernetes datastore"),
            "{error}"
        );
        // Other choices pass through untouched.
        let explicit = internal_ip(&AddressChoice::None, true, &[]).unwrap();
        assert!(matches!(explicit, AddressChoice::None));
    }

    #[test]
    fn the_kernel_names_a_source_towards_loopback() {
        assert_eq!(
            source_towards("127.0.0.1".parse().unwrap()),
            Ok("127.0.0.1".parse().unwrap())
        );
    }
}
