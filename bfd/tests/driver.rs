//! tabby's BFD driver with real sockets in namespaces: tabby against tabby over
//! both families and both hop modes, sessions added and deleted at run time, and
//! the TTL rules of RFC 5881 and RFC 5883 checked with hand-made packets.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

use bfd::driver::{Driver, DriverError, Hop, PeerConfig, SOURCE_PORTS};
use bfd::{ControlPacket, Diagnostic, State};
use harness::tabby_bfd::{ONE_ROUTER, TabbyBfd, peer};
use harness::{Lab, Node, require_root, wait_until};
use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};

const UP: Duration = Duration::from_secs(20);

/// Subnet a (dual stack) holds n1, n2 and n4; n3 is on subnet b, behind the router.
fn lab(test: &str) -> Lab {
    Lab::new(test)
        .subnet("a", "10.0.1.0/24")
        .ipv6("a", "fd00:1::/64")
        .subnet("b", "10.0.2.0/24")
        .ipv6("b", "fd00:2::/64")
        .node("n1", "a")
        .node("n2", "a")
        .node("n4", "a")
        .node("n3", "b")
        .build()
        .unwrap()
}

fn addresses(node: &Node) -> [IpAddr; 2] {
    [node.address(), node.address6().unwrap()]
}

/// Sessions from `from` to `to` in both families.
fn both_families(from: &Node, to: &Node, hop: Hop) -> Vec<PeerConfig> {
    addresses(from)
        .into_iter()
        .zip(addresses(to))
        .map(|(local, remote)| peer(local, remote, hop))
        .collect()
}

#[test]
#[ignore = "needs root"]
fn bfd_driver_tabby_peers_come_up_over_both_families_and_hop_modes_and_survive_a_deletion() {
    require_root();
    let lab = lab(
        "bfd_driver_tabby_peers_come_up_over_both_families_and_hop_modes_and_survive_a_deletion",
    );
    let [n1, n2, n3, n4] = ["n1", "n2", "n3", "n4"].map(|n| lab.node(n));
    // n1 runs six sessions on four sockets: two peers share each single-hop socket.
    let mut sessions = both_families(n1, n2, Hop::Single);
    sessions.extend(both_families(n1, n4, Hop::Single));
    sessions.extend(both_families(n1, n3, ONE_ROUTER));
    let mut tabby1 = TabbyBfd::start(n1, sessions);
    let mut tabby2 = TabbyBfd::start(n2, both_families(n2, n1, Hop::Single));
    let tabby3 = TabbyBfd::start(n3, both_families(n3, n1, ONE_ROUTER));
    let tabby4 = TabbyBfd::start(n4, both_families(n4, n1, Hop::Single));
    for session in tabby1.sessions() {
        tabby1
            .wait_state(session.key().remote, State::Up, UP)
            .unwrap();
    }
    for (tabby, node) in [(&tabby2, n2), (&tabby3, n3), (&tabby4, n4)] {
        for remote in addresses(n1) {
            let status = tabby.wait_state(remote, State::Up, UP).unwrap();
            assert_eq!(
                status.transmit_interval,
                Some(Duration::from_millis(300)),
                "{}",
                node.name()
            );
            assert_eq!(status.detection_time, Some(Duration::from_millis(900)));
            assert!(!status.remote_control_plane_independent);
        }
    }
    tabby2.events();
    // Deleted on n1: n2 is told, and does not count it as the peer failing.
    let [n1_v4, _] = addresses(n1);
    let [n2_v4, _] = addresses(n2);
    tabby1.remove(n2_v4);
    let status = tabby2
        .wait_state(n1_v4, State::Down, Duration::from_secs(5))
        .unwrap();
    assert_eq!(status.diagnostic, Diagnostic::NeighborSignaledSessionDown);
    let down = tabby2.events();
    assert!(
        down.iter()
            .any(|e| e.state == State::Down && e.remote_state == State::AdminDown),
        "{down:?}"
    );
    // The others did not notice.
    for session in tabby1.sessions() {
        assert_eq!(session.status().state, State::Up, "{}", session.key());
    }
    tabby1.add(peer(n1_v4, n2_v4, Hop::Single));
    tabby1.wait_state(n2_v4, State::Up, UP).unwrap();
    tabby2.wait_state(n1_v4, State::Up, UP).unwrap();
}

#[test]
#[ignore = "needs root"]
fn bfd_driver_refuses_a_second_session_with_the_same_addresses_and_mixed_families() {
    require_root();
    let lab = lab("bfd_driver_refuses_a_second_session_with_the_same_addresses_and_mixed_families");
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));
    let [v4, v6] = addresses(n1);
    let remote = n2.address();
    n1.run(|| {
        harness::runtime().block_on(async {
            let (driver, _events) = Driver::spawn();
            let _first = driver.add(peer(v4, remote, Hop::Single)).await.unwrap();
            let second = driver.add(peer(v4, remote, Hop::Single)).await.unwrap_err();
            assert!(matches!(second, DriverError::Duplicate(_)), "{second}");
            // The same addresses multihop are another session.
            let _multihop = driver.add(peer(v4, remote, ONE_ROUTER)).await.unwrap();
            let mixed = driver.add(peer(v6, remote, Hop::Single)).await.unwrap_err();
            assert!(matches!(mixed, DriverError::FamilyMismatch(_)), "{mixed}");
        })
    })
    .unwrap();
}

/// The first packet arriving on `socket`, with the TTL it arrived with and its
/// source.
fn receive_with_ttl(socket: &UdpSocket) -> (ControlPacket, u8, SocketAddr) {
    let mut buffer = [0; 512];
    let mut iov = [std::io::IoSliceMut::new(&mut buffer)];
    let mut control = nix::cmsg_space!(libc::c_int);
    let message = recvmsg::<SockaddrStorage>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut control),
        MsgFlags::empty(),
    )
    .unwrap();
    let ttl = message
        .cmsgs()
        .unwrap()
        .find_map(|c| match c {
            ControlMessageOwned::Ipv4Ttl(ttl) | ControlMessageOwned::Ipv6HopLimit(ttl) => {
                u8::try_from(ttl).ok()
            }
            _ => None,
        })
        .unwrap();
    let source = message.address.unwrap();
    let source = source
        .as_sockaddr_in()
        .map(|a| SocketAddr::from((a.ip(), a.port())))
        .or_else(|| {
            source
                .as_sockaddr_in6()
                .map(|a| SocketAddr::from((a.ip(), a.port())))
        })
        .unwrap();
    let bytes = message.bytes;
    (
        ControlPacket::decode(&buffer[..bytes]).unwrap(),
        ttl,
        source,
    )
}

#[test]
#[ignore = "needs root"]
fn bfd_driver_sends_with_ttl_255_from_a_source_port_above_49151_to_the_mode_s_port() {
    require_root();
    let lab =
        lab("bfd_driver_sends_with_ttl_255_from_a_source_port_above_49151_to_the_mode_s_port");
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));
    let [n1_v4, n1_v6] = addresses(n1);
    let [n2_v4, n2_v6] = addresses(n2);
    // n2 listens where a BFD daemon would: v4 single-hop, v6 multihop.
    let listeners = n2
        .run(|| {
            let v4 = UdpSocket::bind((n2_v4, 3784)).unwrap();
            setsockopt(&v4, sockopt::Ipv4RecvTtl, &true).unwrap();
            let v6 = UdpSocket::bind((n2_v6, 4784)).unwrap();
            setsockopt(&v6, sockopt::Ipv6RecvHopLimit, &true).unwrap();
            [v4, v6]
        })
        .unwrap();
    let tabby = TabbyBfd::start(
        n1,
        vec![
            peer(n1_v4, n2_v4, Hop::Single),
            peer(n1_v6, n2_v6, ONE_ROUTER),
        ],
    );
    for (listener, local) in listeners.iter().zip([n1_v4, n1_v6]) {
        listener
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let (packet, ttl, source) = receive_with_ttl(listener);
        assert_eq!(ttl, 255);
        assert_eq!(source.ip(), local);
        assert!(SOURCE_PORTS.contains(&source.port()), "{source}");
        assert_eq!(packet.state, State::Down);
        assert_eq!(
            packet.my_discriminator,
            tabby
                .session(listener.local_addr().unwrap().ip())
                .status()
                .local_discriminator
        );
    }
}

/// A packet from a hand-made peer in `state`: `my` is its discriminator.
fn down_from(my: u32, state: State) -> Vec<u8> {
    ControlPacket {
        state,
        detect_mult: 3,
        my_discriminator: my,
        desired_min_tx_us: 1_000_000,
        required_min_rx_us: 300_000,
        ..ControlPacket::default()
    }
    .to_bytes()
    .to_vec()
}

/// Sends `packet` from `socket` with `ttl`.
fn send_with_ttl(socket: &UdpSocket, packet: &[u8], ttl: u8, to: SocketAddr) {
    let ttl = libc::c_int::from(ttl);
    if to.is_ipv4() {
        setsockopt(socket, sockopt::Ipv4Ttl, &ttl).unwrap();
    } else {
        setsockopt(socket, sockopt::Ipv6Ttl, &ttl).unwrap();
    }
    socket.send_to(packet, to).unwrap();
}

#[test]
#[ignore = "needs root"]
fn bfd_driver_drops_single_hop_packets_below_ttl_255_and_multihop_packets_below_their_minimum() {
    require_root();
    let lab = lab(
        "bfd_driver_drops_single_hop_packets_below_ttl_255_and_multihop_packets_below_their_minimum",
    );
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));
    let [n1_v4, n1_v6] = addresses(n1);
    let [n2_v4, n2_v6] = addresses(n2);
    let mut tabby = TabbyBfd::start(
        n1,
        vec![
            peer(n1_v4, n2_v4, Hop::Single),
            peer(n1_v6, n2_v6, ONE_ROUTER),
        ],
    );
    let sockets = n2
        .run(|| {
            [
                UdpSocket::bind((n2_v4, 49300)).unwrap(),
                UdpSocket::bind((n2_v6, 49300)).unwrap(),
            ]
        })
        .unwrap();
    const DROPPED: u32 = 0xdead;
    const MARKER: u32 = 0xbeef;
    for (socket, (remote, local, port, too_low, enough)) in sockets.iter().zip([
        (n2_v4, n1_v4, 3784, 254, 255),
        (n2_v6, n1_v6, 4784, 253, 254),
    ]) {
        let to = SocketAddr::new(local, port);
        // A Down packet with too low a TTL would move the session to Init; the
        // AdminDown marker after it, with enough TTL, shows it was read.
        send_with_ttl(socket, &down_from(DROPPED, State::Down), too_low, to);
        send_with_ttl(socket, &down_from(MARKER, State::AdminDown), enough, to);
        wait_until(Duration::from_secs(5), "the marker arrives", || {
            Ok(tabby.session(remote).status().remote_discriminator == MARKER)
        })
        .unwrap();
        assert_eq!(
            tabby.session(remote).status().state,
            State::Down,
            "{remote}"
        );
        let events = tabby.events();
        assert!(
            events.iter().all(|e| e.key.remote != remote),
            "{remote}: the dropped packet moved the session: {events:?}"
        );
        // With enough TTL the same packet is taken.
        send_with_ttl(socket, &down_from(DROPPED, State::Down), enough, to);
        let status = tabby
            .wait_state(remote, State::Init, Duration::from_secs(5))
            .unwrap();
        assert_eq!(status.remote_discriminator, DROPPED);
    }
}
