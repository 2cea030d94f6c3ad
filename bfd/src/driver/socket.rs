//! The UDP sockets: one receiving socket per address family and hop mode, bound to
//! the well-known port and reporting each datagram's TTL (hop limit) and
//! destination address; one sending socket per session, bound to the session's
//! local address and a source port of its own from 49152 to 65535, sending with
//! TTL 255 (RFC 5881 section 4, RFC 5883 section 5).

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{
    AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockProtocol, SockType,
    SockaddrStorage, bind, connect, recvmsg, setsockopt, socket, sockopt,
};
use rand::Rng;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// UDP destination port of single-hop BFD (RFC 5881).
pub const SINGLE_HOP_PORT: u16 = 3784;
/// UDP destination port of multihop BFD (RFC 5883).
pub const MULTIHOP_PORT: u16 = 4784;
/// The source ports RFC 5881 section 4 allows.
pub const SOURCE_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;
/// What every BFD packet is sent with, and what a single-hop packet must arrive with.
pub const TTL: u8 = 255;
/// IP precedence "network control" (CS6), as routing protocols send.
const TOS: libc::c_int = 0xc0;
/// Random source ports tried before giving up.
const PORT_ATTEMPTS: usize = 64;

/// A datagram as a receiving socket saw it.
#[derive(Debug)]
pub(super) struct Received {
    pub len: usize,
    pub source: IpAddr,
    pub destination: IpAddr,
    pub ttl: u8,
}

fn family(address: IpAddr) -> AddressFamily {
    if address.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

fn udp_socket(address: IpAddr) -> io::Result<OwnedFd> {
    Ok(socket(
        family(address),
        SockType::Datagram,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        SockProtocol::Udp,
    )?)
}

fn into_tokio(fd: OwnedFd) -> io::Result<UdpSocket> {
    UdpSocket::from_std(std::net::UdpSocket::from(fd))
}

/// The receiving socket of `any`'s family (the unspecified address) on `port`.
pub(super) fn listen(any: IpAddr, port: u16) -> io::Result<UdpSocket> {
    let fd = udp_socket(any)?;
    if any.is_ipv4() {
        setsockopt(&fd, sockopt::Ipv4RecvTtl, &true)?;
        setsockopt(&fd, sockopt::Ipv4PacketInfo, &true)?;
    } else {
        // The IPv4 socket has the same port: no IPv4-mapped addresses here.
        setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
        setsockopt(&fd, sockopt::Ipv6RecvHopLimit, &true)?;
        setsockopt(&fd, sockopt::Ipv6RecvPacketInfo, &true)?;
    }
    bind(
        fd.as_raw_fd(),
        &SockaddrStorage::from(SocketAddr::new(any, port)),
    )?;
    into_tokio(fd)
}

/// A session's sending socket: from `local` and a free port of [`SOURCE_PORTS`],
/// connected to `remote`.
pub(super) fn sender(local: IpAddr, remote: SocketAddr) -> io::Result<UdpSocket> {
    let fd = udp_socket(local)?;
    let ttl = libc::c_int::from(TTL);
    if local.is_ipv4() {
        setsockopt(&fd, sockopt::Ipv4Ttl, &ttl)?;
        setsockopt(&fd, sockopt::Ipv4Tos, &TOS)?;
    } else {
        setsockopt(&fd, sockopt::Ipv6Ttl, &ttl)?;
        setsockopt(&fd, sockopt::Ipv6TClass, &TOS)?;
    }
    let mut rng = rand::rng();
    let mut attempts = 0;
    loop {
        let port = rng.random_range(SOURCE_PORTS);
        match bind(
            fd.as_raw_fd(),
            &SockaddrStorage::from(SocketAddr::new(local, port)),
        ) {
            Ok(()) => break,
            Err(nix::errno::Errno::EADDRINUSE) if attempts < PORT_ATTEMPTS => attempts += 1,
            Err(error) => return Err(error.into()),
        }
    }
    connect(fd.as_raw_fd(), &SockaddrStorage::from(remote))?;
    into_tokio(fd)
}

/// Waits for the next datagram on a [`listen`] socket and reads it into `buffer`.
pub(super) async fn receive(socket: &UdpSocket, buffer: &mut [u8]) -> io::Result<Received> {
    socket
        .async_io(Interest::READABLE, || read_one(socket, buffer))
        .await
}

fn read_one(socket: &UdpSocket, buffer: &mut [u8]) -> io::Result<Received> {
    let mut iov = [IoSliceMut::new(buffer)];
    let mut control = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int);
    let message = recvmsg::<SockaddrStorage>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut control),
        MsgFlags::empty(),
    )?;
    let source = message
        .address
        .and_then(|a| {
            a.as_sockaddr_in()
                .map(|a| IpAddr::V4(a.ip()))
                .or_else(|| a.as_sockaddr_in6().map(|a| IpAddr::V6(a.ip())))
        })
        .ok_or_else(|| io::Error::other("datagram without a source address"))?;
    let mut destination = None;
    let mut ttl = None;
    for cmsg in message.cmsgs()? {
        match cmsg {
            ControlMessageOwned::Ipv4PacketInfo(info) => {
                destination = Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    info.ipi_addr.s_addr,
                ))));
            }
            ControlMessageOwned::Ipv6PacketInfo(info) => {
                destination = Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)));
            }
            ControlMessageOwned::Ipv4Ttl(value) | ControlMessageOwned::Ipv6HopLimit(value) => {
                ttl = u8::try_from(value).ok();
            }
            _ => {}
        }
    }
    match (destination, ttl) {
        (Some(destination), Some(ttl)) => Ok(Received {
            len: message.bytes,
            source,
            destination,
            ttl,
        }),
        _ => Err(io::Error::other(format!(
            "datagram from {source} without its destination address or TTL"
        ))),
    }
}
