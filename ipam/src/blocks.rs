//! Block arithmetic: carving a pool CIDR into the blocks that nodes claim, and the
//! mapping between an address and its ordinal (index) in its block.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Why a pool cannot be carved into blocks of the requested size.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BlockError {
    #[error("blockSize /{block} is larger than the pool {pool}: it must be at least /{}", pool.prefix_len())]
    BlockLargerThanPool { pool: IpNet, block: u8 },
    #[error("blockSize /{block} is longer than a {family} address allows (max /{max})")]
    BlockTooLong {
        block: u8,
        family: &'static str,
        max: u8,
    },
}

/// Every block of prefix length `block` inside `pool`, lowest address first.
///
/// The pool is masked first, so `10.0.0.7/24` carves the same blocks as `10.0.0.0/24`.
pub fn blocks_of(pool: IpNet, block: u8) -> Result<impl Iterator<Item = IpNet>, BlockError> {
    let pool = pool.trunc();
    let (family, max) = match pool {
        IpNet::V4(_) => ("IPv4", 32),
        IpNet::V6(_) => ("IPv6", 128),
    };
    if block > max {
        return Err(BlockError::BlockTooLong { block, family, max });
    }
    if block < pool.prefix_len() {
        return Err(BlockError::BlockLargerThanPool { pool, block });
    }
    // `subnets` only fails for an invalid prefix length, ruled out above.
    Ok(pool.subnets(block).into_iter().flatten())
}

/// The block of prefix length `block` that holds `ip`.
pub fn block_of(ip: IpAddr, block: u8) -> Option<IpNet> {
    IpNet::new(ip, block).ok().map(|net| net.trunc())
}

/// The address at `ordinal` in `block`, if the block is that large.
pub fn address_at(block: IpNet, ordinal: usize) -> Option<IpAddr> {
    let ordinal = u128::try_from(ordinal).ok()?;
    let host_bits = u32::from(block.max_prefix_len() - block.prefix_len());
    if host_bits < 128 && ordinal >> host_bits != 0 {
        return None;
    }
    Some(match block.network() {
        IpAddr::V4(base) => IpAddr::V4(Ipv4Addr::from(
            u32::from(base).checked_add(u32::try_from(ordinal).ok()?)?,
        )),
        IpAddr::V6(base) => IpAddr::V6(Ipv6Addr::from(u128::from(base).checked_add(ordinal)?)),
    })
}

/// The ordinal of `ip` in `block`, if the block holds it.
pub fn ordinal_of(block: IpNet, ip: IpAddr) -> Option<usize> {
    if !block.contains(&ip) {
        return None;
    }
    let offset = match (block.network(), ip) {
        (IpAddr::V4(base), IpAddr::V4(ip)) => u128::from(u32::from(ip) - u32::from(base)),
        (IpAddr::V6(base), IpAddr::V6(ip)) => u128::from(ip) - u128::from(base),
        _ => return None,
    };
    usize::try_from(offset).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipam_addresses_and_ordinals_map_both_ways_in_both_families() {
        let v4 = net("10.0.0.64/26");
        assert_eq!(ordinal_of(v4, ip("10.0.0.70")), Some(6));
        assert_eq!(address_at(v4, 63), Some(ip("10.0.0.127")));
        assert_eq!(address_at(v4, 64), None);
        assert_eq!(ordinal_of(v4, ip("10.0.0.128")), None);
        assert_eq!(ordinal_of(v4, ip("fd00::1")), None);
        let v6 = net("fd00::40/122");
        assert_eq!(ordinal_of(v6, ip("fd00::7f")), Some(63));
        assert_eq!(address_at(v6, 1), Some(ip("fd00::41")));
        assert_eq!(block_of(ip("10.0.0.70"), 26), Some(v4));
        assert_eq!(block_of(ip("fd00::7f"), 122), Some(v6));
        assert_eq!(block_of(ip("10.0.0.70"), 40), None);
    }

    #[test]
    fn ipam_a_slash_24_pool_holds_four_slash_26_blocks_in_order() {
        let blocks: Vec<_> = blocks_of(net("10.0.0.0/24"), 26).unwrap().collect();
        assert_eq!(
            blocks,
            [
                "10.0.0.0/26",
                "10.0.0.64/26",
                "10.0.0.128/26",
                "10.0.0.192/26"
            ]
            .map(net)
        );
    }

    #[test]
    fn ipam_an_unmasked_pool_is_carved_like_its_masked_form() {
        let a: Vec<_> = blocks_of(net("10.1.2.99/23"), 26).unwrap().collect();
        let b: Vec<_> = blocks_of(net("10.1.2.0/23"), 26).unwrap().collect();
        assert_eq!(a, b);
        assert_eq!(a.len(), 8);
    }

    #[test]
    fn ipam_an_ipv6_pool_is_carved_into_slash_122_blocks() {
        let mut blocks = blocks_of(net("fd00::/120"), 122).unwrap();
        assert_eq!(blocks.next(), Some(net("fd00::/122")));
        assert_eq!(blocks.last(), Some(net("fd00::c0/122")));
    }

    #[test]
    fn ipam_a_block_larger_than_the_pool_is_an_error_that_names_both() {
        let err = blocks_of(net("10.0.0.0/24"), 20).err().unwrap();
        assert_eq!(
            err.to_string(),
            "blockSize /20 is larger than the pool 10.0.0.0/24: it must be at least /24"
        );
    }

    #[test]
    fn ipam_a_block_longer_than_the_address_is_an_error() {
        let err = blocks_of(net("10.0.0.0/24"), 33).err().unwrap();
        assert_eq!(
            err,
            BlockError::BlockTooLong {
                block: 33,
                family: "IPv4",
                max: 32
            }
        );
    }
}
