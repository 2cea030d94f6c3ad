//! Connection collision (RFC 4271 6.8, RFC 6286 2.3): when both speakers connect at
//! once, both must keep the same one of the two connections.

use std::net::Ipv4Addr;

/// True when the connection the peer initiated survives and ours is closed.
///
/// The speaker with the higher BGP Identifier keeps the connection it initiated;
/// with equal identifiers (allowed between ASes by RFC 6286), the one with the
/// higher AS number does.
pub fn keep_incoming(
    local_id: Ipv4Addr,
    local_as: u32,
    remote_id: Ipv4Addr,
    remote_as: u32,
) -> bool {
    (u32::from(local_id), local_as) < (u32::from(remote_id), remote_as)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOW: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const HIGH: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    #[test]
    fn the_higher_identifier_keeps_the_connection_it_initiated() {
        assert!(keep_incoming(LOW, 65000, HIGH, 65000));
        assert!(!keep_incoming(HIGH, 65000, LOW, 65000));
    }

    #[test]
    fn identifiers_compare_as_numbers_not_text() {
        let nine = Ipv4Addr::new(9, 0, 0, 0);
        let ten = Ipv4Addr::new(10, 0, 0, 0);
        assert!(keep_incoming(nine, 1, ten, 1));
    }

    #[test]
    fn equal_identifiers_fall_back_to_the_higher_as() {
        assert!(keep_incoming(LOW, 65001, LOW, 65002));
        assert!(!keep_incoming(LOW, 65002, LOW, 65001));
    }

    #[test]
    fn both_ends_agree_on_which_connection_survives() {
        for (a, b) in [(LOW, HIGH), (HIGH, LOW)] {
            // Each side keeps "incoming" exactly when the other keeps "its own".
            assert_ne!(keep_incoming(a, 1, b, 1), keep_incoming(b, 1, a, 1));
        }
    }
}
