//! Opening session sockets with every option in place before the first segment.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;

use ipnet::IpNet;
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use super::md5::{self, Md5Error};
use super::ttl::{self, TtlPolicy};

/// DSCP CS6 (network control), as routers mark their BGP traffic.
const TOS_NETWORK_CONTROL: libc::c_int = 0xc0;

/// Errors opening a session socket; each names the peer or address concerned.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error(transparent)]
    Md5(#[from] Md5Error),
    #[error("{action} {address}: {source}")]
    Io {
        action: &'static str,
        address: SocketAddr,
        source: io::Error,
    },
}

/// Where and how to reach one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub remote: SocketAddr,
    /// The source address; the kernel's choice when `None`.
    pub local: Option<IpAddr>,
    /// The TCP-MD5 key, if the session is signed.
    pub md5_key: Option<md5::Md5Key>,
    pub ttl: TtlPolicy,
}

/// Connects to `endpoint.remote` with the key, TTL and source address applied first.
pub async fn connect(endpoint: &Endpoint) -> Result<TcpStream, TransportError> {
    let remote = endpoint.remote;
    let io_err = |action| {
        move |source| TransportError::Io {
            action,
            address: remote,
            source,
        }
    };
    let socket = if remote.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(io_err("creating a socket for"))?;
    if let Some(local) = endpoint.local {
        socket
            .bind(SocketAddr::new(local, 0))
            .map_err(io_err("binding the source address for"))?;
    }
    if let Some(key) = &endpoint.md5_key {
        md5::set_key(socket.as_fd(), IpNet::from(remote.ip()), key.as_bytes())?;
    }
    prepare(&socket, remote.is_ipv6(), endpoint.ttl).map_err(io_err("setting options for"))?;
    let stream = socket
        .connect(remote)
        .await
        .map_err(io_err("connecting to"))?;
    stream
        .set_nodelay(true)
        .map_err(io_err("setting TCP_NODELAY for"))?;
    Ok(stream)
}

/// Listens on `address` (`[::]:port` also accepts IPv4, as `::ffff:a.b.c.d`), with
/// `ttl` applied to accepted sessions. Peers' MD5 keys are added to the returned
/// listener with [`md5::set_key`] as peers are configured.
pub fn listen(address: SocketAddr, ttl: TtlPolicy) -> Result<TcpListener, TransportError> {
    let io_err = |action| {
        move |source| TransportError::Io {
            action,
            address,
            source,
        }
    };
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(io_err("creating a socket for"))?;
    socket
        .set_reuseaddr(true)
        .map_err(io_err("setting SO_REUSEADDR for"))?;
    prepare(&socket, address.is_ipv6(), ttl).map_err(io_err("setting options for"))?;
    socket.bind(address).map_err(io_err("binding"))?;
    socket.listen(128).map_err(io_err("listening on"))
}

/// The address a peer has as seen by a socket bound to `local`: IPv4 peers of an
/// IPv6 socket appear IPv4-mapped.
pub fn as_seen_by(local: SocketAddr, peer: IpAddr) -> IpAddr {
    match (local, peer) {
        (SocketAddr::V6(_), IpAddr::V4(v4)) => IpAddr::V6(v4.to_ipv6_mapped()),
        _ => peer,
    }
}

fn prepare(socket: &TcpSocket, ipv6: bool, policy: TtlPolicy) -> io::Result<()> {
    ttl::apply(socket.as_fd(), ipv6, policy)?;
    if ipv6 {
        ttl::set_int(
            socket.as_fd(),
            libc::IPPROTO_IPV6,
            libc::IPV6_TCLASS,
            TOS_NETWORK_CONTROL,
        )
    } else {
        socket.set_tos_v4(TOS_NETWORK_CONTROL as u32)
    }
}
