//! The dispatcher: creates sessions, owns the receiving sockets' readers and the
//! demultiplexing table, and routes each received packet to its session
//! (RFC 5880 section 6.8.6: by Your Discriminator, else by addresses; RFC 5881
//! section 5 and RFC 5883 section 5: the TTL).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::packet::ControlPacket;
use crate::session::Session;

use super::socket::{self, MULTIHOP_PORT, SINGLE_HOP_PORT, TTL};
use super::task::{self, SessionTask};
use super::{DriverError, Event, Hop, PeerConfig, SessionHandle, SessionKey};

/// Packets waiting for one session's task; more are dropped.
const SESSION_QUEUE: usize = 16;
/// Decoded packets waiting for the dispatcher; readers wait when it is full.
const DATAGRAM_QUEUE: usize = 1024;
/// Room for any BFD packet (at most 255 bytes).
const BUFFER: usize = 512;

/// What the driver and the session handles ask of the dispatcher, in order: a
/// session deleted and created again is removed before it is added.
#[derive(Debug)]
pub(super) enum Request {
    Add {
        peer: PeerConfig,
        reply: oneshot::Sender<Result<SessionHandle, DriverError>>,
    },
    /// The handle of the session with this local discriminator was dropped.
    Remove(u32),
}

/// A decoded packet and where it came from.
#[derive(Debug)]
struct Datagram {
    source: IpAddr,
    destination: IpAddr,
    ttl: u8,
    multihop: bool,
    packet: ControlPacket,
}

#[derive(Debug)]
struct Entry {
    key: SessionKey,
    /// Packets with a lower TTL are dropped.
    min_ttl: u8,
    packets: mpsc::Sender<ControlPacket>,
}

/// A reader task, aborted when the dispatcher goes.
#[derive(Debug)]
struct Reader(JoinHandle<()>);

impl Drop for Reader {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[derive(Debug)]
struct Dispatcher {
    events: mpsc::UnboundedSender<Event>,
    /// By local discriminator.
    sessions: HashMap<u32, Entry>,
    by_key: HashMap<SessionKey, u32>,
    /// By (IPv4, multihop).
    readers: HashMap<(bool, bool), Reader>,
    datagrams: mpsc::Sender<Datagram>,
    /// Handed to session handles, which must not keep the dispatcher running.
    requests: mpsc::WeakUnboundedSender<Request>,
}

/// Starts the dispatcher; sessions are created through the returned sender, and
/// everything stops when it is dropped.
pub(super) fn spawn(events: mpsc::UnboundedSender<Event>) -> mpsc::UnboundedSender<Request> {
    let (requests, request_queue) = mpsc::unbounded_channel();
    let (datagrams, datagram_queue) = mpsc::channel(DATAGRAM_QUEUE);
    let dispatcher = Dispatcher {
        events,
        sessions: HashMap::new(),
        by_key: HashMap::new(),
        readers: HashMap::new(),
        datagrams,
        requests: requests.downgrade(),
    };
    tokio::spawn(dispatcher.run(request_queue, datagram_queue));
    requests
}

impl Dispatcher {
    async fn run(
        mut self,
        mut requests: mpsc::UnboundedReceiver<Request>,
        mut datagrams: mpsc::Receiver<Datagram>,
    ) {
        loop {
            tokio::select! {
                request = requests.recv() => match request {
                    Some(Request::Add { peer, reply }) => {
                        let _ = reply.send(self.create(peer));
                    }
                    Some(Request::Remove(discriminator)) => self.remove(discriminator),
                    None => break,
                },
                Some(datagram) = datagrams.recv() => self.route(datagram),
            }
        }
    }

    fn create(&mut self, peer: PeerConfig) -> Result<SessionHandle, DriverError> {
        let key = peer.key();
        if peer.remote.is_ipv4() != peer.local.is_ipv4() {
            return Err(DriverError::FamilyMismatch(key));
        }
        if self.by_key.contains_key(&key) {
            return Err(DriverError::Duplicate(key));
        }
        let io = |what| move |source| DriverError::Io { key, what, source };
        self.open_reader(key)
            .map_err(io("opening the receiving socket"))?;
        let port = if key.multihop {
            MULTIHOP_PORT
        } else {
            SINGLE_HOP_PORT
        };
        let socket = socket::sender(peer.local, SocketAddr::new(peer.remote, port))
            .map_err(io("opening the sending socket"))?;
        let discriminator = self.new_discriminator();
        let session = Session::new(peer.timers, discriminator, rand::random());
        let (status, status_receiver) = watch::channel(session.status());
        let (packets, packet_queue) = mpsc::channel(SESSION_QUEUE);
        let (commands, command_queue) = mpsc::unbounded_channel();
        tokio::spawn(task::run(SessionTask {
            key,
            session,
            socket,
            packets: packet_queue,
            commands: command_queue,
            events: self.events.clone(),
            status,
        }));
        let min_ttl = match peer.hop {
            Hop::Single => TTL,
            Hop::Multi { min_ttl } => min_ttl,
        };
        self.sessions.insert(
            discriminator,
            Entry {
                key,
                min_ttl,
                packets,
            },
        );
        self.by_key.insert(key, discriminator);
        Ok(SessionHandle {
            key,
            discriminator,
            commands,
            status: status_receiver,
            requests: self.requests.clone(),
        })
    }

    /// A random nonzero discriminator no session has (RFC 5880 section 6.8.1).
    fn new_discriminator(&self) -> u32 {
        loop {
            let candidate: u32 = rand::random();
            if candidate != 0 && !self.sessions.contains_key(&candidate) {
                return candidate;
            }
        }
    }

    /// Opens the receiving socket `key` needs, unless it is open. It stays open
    /// while the dispatcher runs.
    fn open_reader(&mut self, key: SessionKey) -> std::io::Result<()> {
        let ipv4 = key.local.is_ipv4();
        if self.readers.contains_key(&(ipv4, key.multihop)) {
            return Ok(());
        }
        let any = if ipv4 {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        };
        let port = if key.multihop {
            MULTIHOP_PORT
        } else {
            SINGLE_HOP_PORT
        };
        let socket = socket::listen(any, port)?;
        let reader = tokio::spawn(read(socket, key.multihop, self.datagrams.clone()));
        self.readers.insert((ipv4, key.multihop), Reader(reader));
        Ok(())
    }

    fn route(&mut self, datagram: Datagram) {
        let Datagram {
            source,
            destination,
            ttl,
            multihop,
            packet,
        } = datagram;
        let discriminator = match packet.your_discriminator {
            0 => self
                .by_key
                .get(&SessionKey {
                    remote: source,
                    local: destination,
                    multihop,
                })
                .copied(),
            known => Some(known),
        };
        let Some(entry) = discriminator.and_then(|d| self.sessions.get(&d)) else {
            debug!(%source, %destination, multihop, your = packet.your_discriminator, "BFD packet for no session");
            return;
        };
        let key = entry.key;
        if (key.remote, key.local, key.multihop) != (source, destination, multihop) {
            debug!(session = %key, %source, %destination, "BFD packet from the wrong addresses");
            return;
        }
        if ttl < entry.min_ttl {
            debug!(session = %key, ttl, min_ttl = entry.min_ttl, "BFD packet crossed too many routers");
            return;
        }
        if entry.packets.try_send(packet).is_err() {
            debug!(session = %key, "BFD session busy: packet dropped");
        }
    }

    fn remove(&mut self, discriminator: u32) {
        if let Some(entry) = self.sessions.remove(&discriminator) {
            self.by_key.remove(&entry.key);
        }
    }
}

/// Reads one receiving socket, decoding every datagram; what does not decode is
/// discarded here (RFC 5880 section 6.8.6).
async fn read(socket: UdpSocket, multihop: bool, datagrams: mpsc::Sender<Datagram>) {
    let mut buffer = [0; BUFFER];
    loop {
        let received = match socket::receive(&socket, &mut buffer).await {
            Ok(received) => received,
            Err(error) => {
                warn!(%error, "reading a BFD socket failed");
                // Never spin on an error that repeats.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let packet = match ControlPacket::decode(&buffer[..received.len]) {
            Ok(packet) => packet,
            Err(error) => {
                debug!(source = %received.source, %error, offset = error.offset(), "BFD packet discarded");
                continue;
            }
        };
        let datagram = Datagram {
            source: received.source,
            destination: received.destination,
            ttl: received.ttl,
            multihop,
            packet,
        };
        if datagrams.send(datagram).await.is_err() {
            return;
        }
    }
}
