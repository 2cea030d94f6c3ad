//! Carving a pool CIDR into the blocks that nodes claim.

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

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn a_slash_24_pool_holds_four_slash_26_blocks_in_order() {
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
    fn an_unmasked_pool_is_carved_like_its_masked_form() {
        let a: Vec<_> = blocks_of(net("10.1.2.99/23"), 26).unwrap().collect();
        let b: Vec<_> = blocks_of(net("10.1.2.0/23"), 26).unwrap().collect();
        assert_eq!(a, b);
        assert_eq!(a.len(), 8);
    }

    #[test]
    fn an_ipv6_pool_is_carved_into_slash_122_blocks() {
        let mut blocks = blocks_of(net("fd00::/120"), 122).unwrap();
        assert_eq!(blocks.next(), Some(net("fd00::/122")));
        assert_eq!(blocks.last(), Some(net("fd00::c0/122")));
    }

    #[test]
    fn a_block_larger_than_the_pool_is_an_error_that_names_both() {
        let err = blocks_of(net("10.0.0.0/24"), 20).err().unwrap();
        assert_eq!(
            err.to_string(),
            "blockSize /20 is larger than the pool 10.0.0.0/24: it must be at least /24"
        );
    }

    #[test]
    fn a_block_longer_than_the_address_is_an_error() {
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
