//! TCP-MD5 signatures (RFC 2385) through the kernel's `TCP_MD5SIG` socket options.
//!
//! Keys live on the socket, per peer address (or, for listen ranges, per prefix):
//! set them on a listening socket before a peer connects, and on a connecting socket
//! before `connect`. The kernel then drops unsigned or wrongly signed segments
//! silently, so a key mismatch looks like a peer that never answers.

use std::io;
use std::mem::size_of;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use ipnet::IpNet;

/// The kernel's longest key (`TCP_MD5SIG_MAXKEYLEN`).
pub const MAX_KEY_LEN: usize = libc::TCP_MD5SIG_MAXKEYLEN;

/// `TCP_MD5SIG_FLAG_PREFIX`: the key covers `prefixlen` bits of the address.
const FLAG_PREFIX: u8 = 1;

/// A TCP-MD5 key: its bytes never show in `Debug` output (configurations and
/// endpoints are logged).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Md5Key(Vec<u8>);

impl Md5Key {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::ops::Deref for Md5Key {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Md5Key {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl std::fmt::Debug for Md5Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Md5Key(<redacted {} bytes>)", self.0.len())
    }
}

/// Errors setting a key.
#[derive(Debug, thiserror::Error)]
pub enum Md5Error {
    #[error("TCP-MD5 key for {peer} is {len} bytes; the kernel allows at most {MAX_KEY_LEN}")]
    KeyTooLong { peer: IpNet, len: usize },
    #[error("setting the TCP-MD5 key for {peer}: {source} (is CONFIG_TCP_MD5SIG enabled?)")]
    Kernel { peer: IpNet, source: io::Error },
}

/// The kernel's `struct tcp_md5sig` (include/uapi/linux/tcp.h); libc does not
/// declare it.
#[repr(C)]
struct TcpMd5Sig {
    addr: libc::sockaddr_storage,
    flags: u8,
    prefix_len: u8,
    key_len: u16,
    ifindex: libc::c_int,
    key: [u8; MAX_KEY_LEN],
}

/// Signs segments exchanged with `peers` (a host prefix for one peer, a wider one for
/// a listen range) with `key`; an empty key removes the peer's key.
///
/// On an IPv6 socket that also serves IPv4, IPv4 peers must be given in their
/// IPv4-mapped form (`::ffff:a.b.c.d`), the address the kernel sees.
pub fn set_key(socket: BorrowedFd<'_>, peers: IpNet, key: &[u8]) -> Result<(), Md5Error> {
    if key.len() > MAX_KEY_LEN {
        return Err(Md5Error::KeyTooLong {
            peer: peers,
            len: key.len(),
        });
    }
    let mut sig = TcpMd5Sig {
        addr: sockaddr(peers.addr()),
        flags: 0,
        prefix_len: 0,
        key_len: key.len() as u16,
        ifindex: 0,
        key: [0; MAX_KEY_LEN],
    };
    sig.key[..key.len()].copy_from_slice(key);
    // A host prefix works on every kernel with TCP_MD5SIG; prefixes need the
    // extended option (Linux 4.13+).
    let option = if peers.prefix_len() == peers.max_prefix_len() {
        libc::TCP_MD5SIG
    } else {
        sig.flags = FLAG_PREFIX;
        sig.prefix_len = peers.prefix_len();
        libc::TCP_MD5SIG_EXT
    };
    // SAFETY: `sig` is a fully initialised `struct tcp_md5sig` that outlives the call,
    // and the length passed is its size; the kernel only reads it.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            option,
            (&raw const sig).cast(),
            size_of::<TcpMd5Sig>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(Md5Error::Kernel {
            peer: peers,
            source: io::Error::last_os_error(),
        })
    }
}

/// `addr` as a `sockaddr_storage` holding a `sockaddr_in` or `sockaddr_in6`.
fn sockaddr(addr: IpAddr) -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain old data; all zeroes is a valid value.
    #[allow(unsafe_code)]
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        IpAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from(v4).to_be(),
                },
                sin_zero: [0; 8],
            };
            write_into(&mut storage, sin);
        }
        IpAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: 0,
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.octets(),
                },
                sin6_scope_id: 0,
            };
            write_into(&mut storage, sin6);
        }
    }
    storage
}

/// Copies a concrete socket address into the start of `storage`.
fn write_into<T: Copy>(storage: &mut libc::sockaddr_storage, value: T) {
    const { assert!(size_of::<T>() <= size_of::<libc::sockaddr_storage>()) };
    // SAFETY: sockaddr_storage is at least as large and as aligned as every
    // sockaddr type (checked above for size); T is plain old data.
    #[allow(unsafe_code)]
    unsafe {
        std::ptr::write((storage as *mut libc::sockaddr_storage).cast::<T>(), value)
    };
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::transport::{Endpoint, TtlPolicy, connect, listen};

    const LOOPBACK: &str = "127.0.0.1:0";

    /// Connects from `local` (signing with `key`, if any) to a listener keyed with
    /// `listen_key` for `peers`, and says whether bytes made it across within two
    /// seconds. The kernel drops a wrongly signed SYN, so that connect never completes.
    async fn exchange(peers: &str, listen_key: &[u8], local: &str, key: Option<&[u8]>) -> bool {
        let listener = listen(LOOPBACK.parse().unwrap(), TtlPolicy::Hops(64)).unwrap();
        set_key(listener.as_fd(), peers.parse().unwrap(), listen_key).unwrap();
        let endpoint = Endpoint {
            remote: listener.local_addr().unwrap(),
            local: Some(local.parse().unwrap()),
            md5_key: key.map(|k| k.to_vec().into()),
            ttl: TtlPolicy::Hops(1),
        };
        let session = async {
            let (accepted, connected) = tokio::join!(listener.accept(), connect(&endpoint));
            let (mut server, mut client) = (accepted.unwrap().0, connected.unwrap());
            client.write_all(b"open").await.unwrap();
            let mut got = [0; 4];
            server.read_exact(&mut got).await.unwrap();
            got
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(2), session).await,
            Ok(got) if &got == b"open"
        )
    }

    #[tokio::test]
    async fn peers_signing_with_the_same_key_connect() {
        assert!(exchange("127.0.0.1/32", b"s3cret", "127.0.0.1", Some(b"s3cret")).await);
    }

    #[tokio::test]
    async fn a_peer_signing_with_another_key_is_never_answered() {
        assert!(!exchange("127.0.0.1/32", b"s3cret", "127.0.0.1", Some(b"guess")).await);
    }

    #[tokio::test]
    async fn an_unsigned_peer_is_never_answered_by_a_keyed_listener() {
        assert!(!exchange("127.0.0.1/32", b"s3cret", "127.0.0.1", None).await);
    }

    #[tokio::test]
    async fn a_key_for_a_prefix_admits_every_peer_inside_it() {
        assert!(exchange("127.0.0.0/8", b"range", "127.0.0.7", Some(b"range")).await);
    }

    #[test]
    fn a_key_longer_than_the_kernel_allows_is_refused_with_its_length() {
        let socket = std::net::TcpListener::bind(LOOPBACK).unwrap();
        let err =
            set_key(socket.as_fd(), "192.0.2.1/32".parse().unwrap(), &[b'k'; 81]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "TCP-MD5 key for 192.0.2.1/32 is 81 bytes; the kernel allows at most 80"
        );
    }
}
