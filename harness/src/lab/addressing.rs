//! Subnets of the underlay and the addresses handed out in them, worked out before
//! anything is created: the router takes host 1 of each prefix, nodes take host 10, 11,
//! ... in the order they were declared, unless given an address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{Result, bail};
use ipnet::IpNet;

/// The first host number given to nodes (1 is the router's).
const FIRST_NODE_HOST: u32 = 10;

/// A subnet of the underlay: one bridge, at most one prefix per address family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    pub name: String,
    pub prefixes: Vec<IpNet>,
}

impl Subnet {
    /// The router's addresses (host 1 of each prefix) with their prefix lengths.
    pub fn router_addresses(&self) -> Result<Vec<IpNet>> {
        self.host_addresses(1)
    }

    /// Host `n` of each prefix, with the prefix lengths.
    pub fn host_addresses(&self, n: u32) -> Result<Vec<IpNet>> {
        self.prefixes.iter().map(|p| host(p, n)).collect()
    }

    /// The bridge of this subnet inside the underlay namespace.
    pub fn bridge(&self) -> String {
        format!("br-{}", self.name)
    }

    pub(crate) fn add_prefix(&mut self, prefix: IpNet) -> Result<()> {
        if self.prefixes.iter().any(|p| same_family(p, &prefix)) {
            bail!(
                "subnet {:?} already has a prefix of the family of {prefix}",
                self.name
            );
        }
        self.prefixes.push(prefix.trunc());
        Ok(())
    }
}

/// The addresses of the `index`-th node of `subnet` (0-based), with explicit addresses
/// replacing the automatic one of their family.
pub fn node_addresses(subnet: &Subnet, index: u32, explicit: &[IpAddr]) -> Result<Vec<IpNet>> {
    for address in explicit {
        if !subnet.prefixes.iter().any(|p| p.contains(address)) {
            bail!("address {address} is not in subnet {:?}", subnet.name);
        }
    }
    subnet
        .prefixes
        .iter()
        .map(
            |prefix| match explicit.iter().find(|a| prefix.contains(*a)) {
                Some(address) => Ok(IpNet::new(*address, prefix.prefix_len())?),
                None => host(prefix, FIRST_NODE_HOST + index),
            },
        )
        .collect()
}

/// Host number `n` of `prefix`, with the prefix's length.
fn host(prefix: &IpNet, n: u32) -> Result<IpNet> {
    let address = match prefix {
        IpNet::V4(p) => {
            let size = 1u64 << (32 - p.prefix_len());
            if u64::from(n) + 1 >= size {
                bail!("subnet {prefix} has no host number {n}");
            }
            IpAddr::from(Ipv4Addr::from(u32::from(p.network()) + n))
        }
        IpNet::V6(p) => {
            if p.prefix_len() > 120 {
                bail!("subnet {prefix} is too small for the lab");
            }
            IpAddr::from(Ipv6Addr::from(u128::from(p.network()) + u128::from(n)))
        }
    };
    Ok(IpNet::new(address, prefix.prefix_len())?)
}

fn same_family(a: &IpNet, b: &IpNet) -> bool {
    matches!(
        (a, b),
        (IpNet::V4(_), IpNet::V4(_)) | (IpNet::V6(_), IpNet::V6(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(prefixes: &[&str]) -> Subnet {
        Subnet {
            name: "a".into(),
            prefixes: prefixes.iter().map(|p| p.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn nodes_count_up_from_host_ten_in_each_family() {
        let s = subnet(&["10.0.1.0/24", "fd00:1::/64"]);
        let got = node_addresses(&s, 2, &[]).unwrap();
        assert_eq!(
            got,
            [
                "10.0.1.12/24".parse().unwrap(),
                "fd00:1::c/64".parse().unwrap()
            ]
        );
        assert_eq!(
            s.router_addresses().unwrap(),
            [
                "10.0.1.1/24".parse::<IpNet>().unwrap(),
                "fd00:1::1/64".parse().unwrap()
            ]
        );
    }

    #[test]
    fn an_explicit_address_replaces_its_family_only() {
        let s = subnet(&["10.0.1.0/24", "fd00:1::/64"]);
        let got = node_addresses(&s, 0, &["10.0.1.200".parse().unwrap()]).unwrap();
        assert_eq!(got[0], "10.0.1.200/24".parse::<IpNet>().unwrap());
        assert_eq!(got[1], "fd00:1::a/64".parse::<IpNet>().unwrap());
    }

    #[test]
    fn addresses_outside_the_subnet_are_rejected() {
        let s = subnet(&["10.0.1.0/24"]);
        let error = node_addresses(&s, 0, &["10.0.2.5".parse().unwrap()]).unwrap_err();
        assert!(error.to_string().contains("10.0.2.5"), "{error}");
    }

    #[test]
    fn a_subnet_too_small_for_the_node_is_rejected() {
        let s = subnet(&["10.0.1.0/29"]);
        assert!(node_addresses(&s, 0, &[]).is_err());
    }

    #[test]
    fn a_second_prefix_of_one_family_is_rejected() {
        let mut s = subnet(&["10.0.1.0/24"]);
        assert!(s.add_prefix("10.0.2.0/24".parse().unwrap()).is_err());
        assert!(s.add_prefix("fd00::/64".parse().unwrap()).is_ok());
    }
}
