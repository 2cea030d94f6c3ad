//! The IP TTL of a session's segments: single-hop, multihop, or the Generalized TTL
//! Security Mechanism (RFC 5082), which sends with 255 and has the kernel drop
//! anything that crossed more routers than allowed.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// How a session sets and checks the TTL (hop limit for IPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TtlPolicy {
    /// Send with this TTL: 1 for a directly connected eBGP peer, more for multihop
    /// eBGP, 64 or 255 for iBGP.
    Hops(u8),
    /// GTSM: send with 255; accept only segments whose TTL shows at most `hops`
    /// routers between the peers (1 means directly connected).
    Security { hops: u8 },
}

/// Applies `policy` to a socket of the given family before it connects or listens.
pub fn apply(socket: BorrowedFd<'_>, ipv6: bool, policy: TtlPolicy) -> io::Result<()> {
    let (send, min) = match policy {
        TtlPolicy::Hops(ttl) => (ttl, None),
        TtlPolicy::Security { hops } => (255, Some(256 - i32::from(hops.max(1)))),
    };
    let (level, ttl_option, min_option) = if ipv6 {
        (
            libc::IPPROTO_IPV6,
            libc::IPV6_UNICAST_HOPS,
            libc::IPV6_MINHOPCOUNT,
        )
    } else {
        (libc::IPPROTO_IP, libc::IP_TTL, libc::IP_MINTTL)
    };
    set_int(socket, level, ttl_option, i32::from(send))?;
    if let Some(min) = min {
        set_int(socket, level, min_option, min)?;
    }
    Ok(())
}

/// Sets an integer socket option.
pub(super) fn set_int(
    socket: BorrowedFd<'_>,
    level: libc::c_int,
    option: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the option value is a live c_int and its size is passed with it.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            option,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
