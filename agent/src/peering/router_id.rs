//! The BGP router id (RFC 6286: four non-zero octets, unique in the AS): the node's
//! IPv4 BGP address by default, or set per node with `--router-id`
//! (`TABBY_ROUTER_ID`, Calico's `CALICO_ROUTER_ID`) to an IPv4 address or to `hash`,
//! which derives one from the node's name as Calico does: the first four octets of
//! the name's SHA-256, a first octet above 223 (multicast and reserved) lowered by
//! 32. Nodes without an IPv4 address (IPv6-only clusters) need one of the two.

use std::net::Ipv4Addr;
use std::str::FromStr;

/// How this node picks its router id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RouterId {
    /// The node's IPv4 BGP address.
    #[default]
    NodeAddress,
    /// Derived from the node's name ([`hashed`]).
    Hash,
    Fixed(Ipv4Addr),
}

/// Neither `hash` nor a usable IPv4 address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is neither \"hash\" nor a non-zero IPv4 address")]
pub struct BadRouterId(String);

impl FromStr for RouterId {
    type Err = BadRouterId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "hash" {
            return Ok(Self::Hash);
        }
        match text.parse::<Ipv4Addr>() {
            Ok(id) if !id.is_unspecified() => Ok(Self::Fixed(id)),
            _ => Err(BadRouterId(text.into())),
        }
    }
}

impl RouterId {
    /// The router id of node `name` whose IPv4 BGP address is `ipv4`; `None` when
    /// it should be the address and there is none.
    pub fn of(self, name: &str, ipv4: Option<Ipv4Addr>) -> Option<Ipv4Addr> {
        match self {
            Self::NodeAddress => ipv4,
            Self::Hash => Some(hashed(name)),
            Self::Fixed(id) => Some(id),
        }
    }
}

/// A stable router id from a node's name (Calico's `CALICO_ROUTER_ID=hash`).
pub fn hashed(name: &str) -> Ipv4Addr {
    let digest = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
    let mut octets = [0; 4];
    octets.copy_from_slice(&digest.as_ref()[..4]);
    if octets[0] > 223 {
        octets[0] -= 32;
    }
    Ipv4Addr::from(octets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_hash_router_ids_are_the_first_octets_of_the_names_sha256() {
        // `printf node-1 | sha256sum`: 35971be6…; `printf t | sha256sum`: e3b98a4d…,
        // whose 0xe3 (227) is lowered to 195.
        assert_eq!(hashed("node-1"), Ipv4Addr::new(0x35, 0x97, 0x1b, 0xe6));
        assert_eq!(hashed("t"), Ipv4Addr::new(195, 0xb9, 0x8a, 0x4d));
        assert_ne!(hashed("node-1"), hashed("node-2"));
    }

    #[test]
    fn ipv6_router_id_setting_is_hash_or_a_non_zero_ipv4_address() {
        assert_eq!("hash".parse(), Ok(RouterId::Hash));
        assert_eq!(
            "10.9.8.7".parse(),
            Ok(RouterId::Fixed(Ipv4Addr::new(10, 9, 8, 7)))
        );
        for bad in ["0.0.0.0", "fd00::1", "hashed", ""] {
            let error = bad.parse::<RouterId>().unwrap_err();
            assert!(error.to_string().contains("neither"), "{bad}: {error}");
        }
    }

    #[test]
    fn ipv6_router_id_defaults_to_the_ipv4_address_and_the_setting_wins() {
        let v4 = Some(Ipv4Addr::new(192, 0, 2, 10));
        assert_eq!(RouterId::NodeAddress.of("a", v4), v4);
        assert_eq!(RouterId::NodeAddress.of("a", None), None);
        assert_eq!(RouterId::Hash.of("a", v4), Some(hashed("a")));
        let fixed = Ipv4Addr::new(10, 0, 0, 1);
        assert_eq!(RouterId::Fixed(fixed).of("a", None), Some(fixed));
    }
}
