//! The BGP speaker the agent and the reflector embed: sessions with configured and
//! dynamic peers, the RIB, import checks, export to every Established peer, graceful
//! restart of peers, and best-path changes reported to the owner (the FIB writer).

pub mod config;
mod export;
mod import;
mod peer;

pub use config::{ListenRange, PeerConfig, Policy, SpeakerConfig};
pub use peer::PeerStatus;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::codec::{Afi, Attributes, Family, Message, Notification, Origin, Update, UpdatePacker};
use crate::rib::{Change, Interner, Path, Rib, Source, Speaker, check_import};
use crate::session::{self, Command, Event};
use crate::transport::{self, TransportError, TtlPolicy};

use peer::{Peer, Up};

/// How long a shutdown waits for the sessions to send their Cease.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Cease subcode 1 (RFC 4486).
const CEASE: u8 = 6;
const MAXIMUM_PREFIXES_REACHED: u8 = 1;

/// What the owner asks of the speaker.
#[derive(Debug)]
pub enum Request {
    AddPeer(PeerConfig),
    RemovePeer(IpAddr),
    /// Originate `prefix` from this speaker (a block, a service range).
    Originate(IpNet),
    Withdraw(IpNet),
    Status(oneshot::Sender<Vec<PeerStatus>>),
    /// Every path of the RIB, best first per prefix; only `prefix` when given, only
    /// prefixes with a path from `peer` (and only its paths) when given.
    Routes {
        prefix: Option<IpNet>,
        peer: Option<IpAddr>,
        reply: oneshot::Sender<Vec<(IpNet, Vec<Path>)>>,
    },
    /// Replaces the listen ranges. Dynamic peers accepted through a range that is
    /// no longer there unchanged are stopped; the others keep their sessions.
    SetListenRanges(Vec<ListenRange>),
    /// Cease every session with this message and stop. The notices channel closes
    /// once every session has sent its NOTIFICATION (or after a few seconds).
    Shutdown(String),
}

/// What the speaker reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The best paths to a prefix changed (for the kernel FIB).
    Best(Change),
    PeerUp {
        address: IpAddr,
        remote_as: u32,
    },
    PeerDown {
        address: IpAddr,
        reason: String,
    },
}

#[derive(Debug)]
pub struct SpeakerHandle {
    pub requests: mpsc::UnboundedSender<Request>,
    pub notices: mpsc::UnboundedReceiver<Notice>,
}

/// Starts the speaker on the current tokio runtime; binding the listener is the
/// only thing that can fail here.
pub fn start(config: SpeakerConfig) -> Result<SpeakerHandle, TransportError> {
    let listener = match config.listen {
        Some(address) => Some(transport::listen(address, TtlPolicy::Hops(64))?),
        None => None,
    };
    let (requests, request_rx) = mpsc::unbounded_channel();
    let (notice_tx, notices) = mpsc::unbounded_channel();
    let (event_tx, event_rx) = mpsc::unbounded_channel();
    let state = State {
        rules: Speaker {
            local_as: config.local_as,
            router_id: config.router_id,
            cluster_id: config.cluster_id,
            client_to_client: config.client_to_client,
        },
        local: Source::local(config.router_id, config.local_as),
        config,
        listener,
        rib: Rib::default(),
        interner: Interner::default(),
        peers: HashMap::new(),
        sessions: JoinSet::new(),
        events: event_tx,
        notices: notice_tx,
    };
    tokio::spawn(state.run(request_rx, event_rx));
    Ok(SpeakerHandle { requests, notices })
}

struct State {
    config: SpeakerConfig,
    rules: Speaker,
    local: Arc<Source>,
    listener: Option<TcpListener>,
    rib: Rib,
    interner: Interner,
    peers: HashMap<IpAddr, Peer>,
    /// One task per session, forwarding its events; each ends with its session.
    sessions: JoinSet<()>,
    events: mpsc::UnboundedSender<(IpAddr, Event)>,
    notices: mpsc::UnboundedSender<Notice>,
}

impl State {
    async fn run(
        mut self,
        mut requests: mpsc::UnboundedReceiver<Request>,
        mut events: mpsc::UnboundedReceiver<(IpAddr, Event)>,
    ) {
        for (index, range) in self.config.listen_ranges.clone().iter().enumerate() {
            if let Some(key) = &range.template.md5_key {
                self.set_listener_key(range.prefix, key);
            }
            tracing::debug!(index, prefix = %range.prefix, "listening for dynamic peers");
        }
        loop {
            let stale_deadline = self.peers.values().filter_map(|p| p.stale_until).min();
            tokio::select! {
                request = requests.recv() => {
                    // The owner dropping its handle is a shutdown too.
                    let request = request.unwrap_or(Request::Shutdown("shutting down".into()));
                    if let Request::Shutdown(message) = request {
                        for peer in self.peers.values() {
                            let _ = peer.commands.send(Command::Stop(message.clone()));
                        }
                        self.peers.clear();
                        let sessions = async { while self.sessions.join_next().await.is_some() {} };
                        let _ = tokio::time::timeout(SHUTDOWN_GRACE, sessions).await;
                        return;
                    }
                    self.request(request);
                }
                Some((address, event)) = events.recv() => self.event(address, event),
                accepted = accept(self.listener.as_ref()) => {
                    if let Ok((stream, from)) = accepted {
                        self.accepted(stream, from);
                    }
                }
                () = sleep_until(stale_deadline), if stale_deadline.is_some() => self.expire_stale(),
                // Reaps the forwarders of sessions that ended.
                Some(_) = self.sessions.join_next(), if !self.sessions.is_empty() => {}
            }
        }
    }

    fn request(&mut self, request: Request) {
        match request {
            Request::AddPeer(config) => {
                if let Some(key) = &config.md5_key {
                    self.set_listener_key(IpNet::from(config.address), key);
                }
                self.add_peer(config, None);
            }
            Request::RemovePeer(address) => {
                if let Some(peer) = self.peers.remove(&address) {
                    let _ = peer.commands.send(Command::Stop("peer removed".into()));
                    let changes = self.rib.remove_peer(Some(address));
                    self.publish(changes);
                }
            }
            Request::Originate(prefix) => {
                let path = Path {
                    source: Arc::clone(&self.local),
                    attributes: self.interner.intern(Attributes {
                        origin: Some(Origin::Igp),
                        as_path: Some(Default::default()),
                        ..Attributes::default()
                    }),
                    next_hop: IpAddr::from([0, 0, 0, 0]),
                    path_id: None,
                    stale: false,
                };
                let change = self.rib.announce(prefix.trunc(), path);
                self.publish(change.into_iter().collect());
            }
            Request::Withdraw(prefix) => {
                let change = self.rib.withdraw(prefix.trunc(), None, None);
                self.publish(change.into_iter().collect());
            }
            Request::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Request::Routes {
                prefix,
                peer,
                reply,
            } => {
                let _ = reply.send(self.routes(prefix, peer));
            }
            Request::SetListenRanges(ranges) => self.set_listen_ranges(ranges),
            Request::Shutdown(_) => {}
        }
    }

    fn add_peer(&mut self, config: PeerConfig, range: Option<usize>) -> &mut Peer {
        let address = config.address;
        if let Some(old) = self.peers.remove(&address) {
            let _ = old.commands.send(Command::Stop("peer reconfigured".into()));
        }
        let handle = session::spawn(config.session(&self.config), config.endpoint());
        let (commands, mut session_events) = (handle.commands, handle.events);
        let events = self.events.clone();
        self.sessions.spawn(async move {
            while let Some(event) = session_events.recv().await {
                if events.send((address, event)).is_err() {
                    return;
                }
            }
        });
        self.peers.entry(address).or_insert(Peer {
            config,
            commands,
            up: None,
            since: Instant::now(),
            last_error: None,
            stale_until: None,
            range,
        })
    }

    fn event(&mut self, address: IpAddr, event: Event) {
        let Some(peer) = self.peers.get_mut(&address) else {
            return;
        };
        match event {
            Event::Up { negotiated, local } => {
                let internal = negotiated.internal(self.config.local_as);
                let source = Arc::new(Source {
                    peer: Some(address),
                    router_id: negotiated.remote_id,
                    remote_as: negotiated.remote_as,
                    internal,
                    rr_client: peer.config.rr_client,
                });
                let _ = self.notices.send(Notice::PeerUp {
                    address,
                    remote_as: negotiated.remote_as,
                });
                peer.since = Instant::now();
                peer.last_error = None;
                let families = negotiated.families.clone();
                peer.up = Some(Up {
                    packer: UpdatePacker::new(negotiated.context),
                    negotiated: *negotiated,
                    source,
                    local: local.ip().to_canonical(),
                    sent: HashMap::new(),
                });
                self.send_table(address, &families);
            }
            Event::Down(reason) | Event::Failed(reason) => {
                let reason = reason.to_string();
                peer.last_error = Some(reason.clone());
                let Some(up) = peer.up.take() else {
                    return;
                };
                peer.since = Instant::now();
                let _ = self.notices.send(Notice::PeerDown { address, reason });
                let restart = up
                    .negotiated
                    .peer_graceful_restart
                    .as_ref()
                    .map(|gr| Duration::from_secs(gr.restart_time.into()))
                    .filter(|time| !time.is_zero());
                let changes = match restart {
                    // RFC 4724: keep forwarding on its routes while it restarts.
                    Some(time) => {
                        peer.stale_until = Some(Instant::now() + time);
                        self.rib.mark_stale(Some(address))
                    }
                    None => self.rib.remove_peer(Some(address)),
                };
                self.publish(changes);
            }
            Event::Received(Message::Update(update)) => {
                let mut changes = self.receive(address, &update);
                changes.extend(self.enforce_max_prefixes(address));
                self.publish(changes);
            }
            Event::Received(_) => {}
        }
    }

    /// Applies one UPDATE from `address` to the RIB.
    fn receive(&mut self, address: IpAddr, update: &Update) -> Vec<Change> {
        let Some(peer) = self.peers.get_mut(&address) else {
            return Vec::new();
        };
        let Some(up) = &peer.up else {
            return Vec::new();
        };
        let mut changes = Vec::new();
        if update.end_of_rib_family().is_some() {
            if peer.stale_until.take().is_some() {
                changes.extend(self.rib.sweep_stale(Some(address)));
            }
            return changes;
        }
        let (announced, withdrawn) = import::routes(update);
        for (prefix, path_id) in withdrawn {
            changes.extend(self.rib.withdraw(prefix, Some(address), path_id));
        }
        if announced.is_empty() {
            return changes;
        }
        let policy = PeerConfig::effective(peer.config.import, up.source.internal);
        let refused = match check_import(&self.rules, &update.attributes, peer.config.allowas_in) {
            Err(reason) => Some(reason.to_string()),
            Ok(()) if policy == Policy::Reject => {
                Some("no import policy for an eBGP peer (RFC 8212)".to_owned())
            }
            Ok(()) => None,
        };
        if let Some(reason) = refused {
            tracing::debug!(peer = %address, %reason, routes = announced.len(), "routes refused");
            for route in announced {
                changes.extend(
                    self.rib
                        .withdraw(route.prefix, Some(address), route.path_id),
                );
            }
            return changes;
        }
        let source = Arc::clone(&up.source);
        let attributes = self.interner.intern(update.attributes.clone());
        for route in announced {
            let path = Path {
                source: Arc::clone(&source),
                attributes: Arc::clone(&attributes),
                next_hop: route.next_hop,
                path_id: route.path_id,
                stale: false,
            };
            changes.extend(self.rib.announce(route.prefix, path));
        }
        changes
    }

    /// Resets the session of a peer over its prefix limit, dropping its routes.
    fn enforce_max_prefixes(&mut self, address: IpAddr) -> Vec<Change> {
        let Some(peer) = self.peers.get(&address) else {
            return Vec::new();
        };
        let received = self.rib.prefix_count(Some(address));
        let Some(limit) = peer.config.max_prefixes.filter(|&limit| received > limit) else {
            return Vec::new();
        };
        tracing::warn!(peer = %address, received, limit, "maximum prefixes exceeded; resetting");
        // RFC 4486 4: AFI, SAFI and the limit. The limit counts both families.
        let mut data = vec![0, 1, 1];
        data.extend_from_slice(&u32::try_from(limit).unwrap_or(u32::MAX).to_be_bytes());
        let _ = peer.commands.send(Command::Reset(Notification {
            code: CEASE,
            subcode: MAXIMUM_PREFIXES_REACHED,
            data,
        }));
        self.rib.remove_peer(Some(address))
    }

    /// Reports `changes` to the owner and exports them to every Established peer.
    fn publish(&mut self, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        let best: Vec<(IpNet, Option<Path>)> = changes
            .iter()
            .map(|change| match change {
                Change::Best { prefix, paths } => (*prefix, paths.first().cloned()),
                Change::Withdrawn { prefix } => (*prefix, None),
            })
            .collect();
        if self.config.best_notices {
            for change in changes {
                let _ = self.notices.send(Notice::Best(change));
            }
        }
        for peer in self.peers.values_mut() {
            let Some(up) = peer.up.as_mut() else {
                continue;
            };
            let bytes = export::sync(
                &self.rules,
                &peer.config,
                up,
                &mut self.interner,
                best.iter().cloned(),
            );
            if !bytes.is_empty() {
                let _ = peer.commands.send(Command::SendEncoded(bytes));
            }
        }
        self.interner.collect();
    }

    /// Sends a peer that just came up every best path it may have, then End-of-RIB.
    fn send_table(&mut self, address: IpAddr, families: &[Family]) {
        let best: Vec<(IpNet, Option<Path>)> = self
            .rib
            .prefixes()
            .map(|prefix| {
                (
                    *prefix,
                    self.rib.best(prefix).and_then(|p| p.into_iter().next()),
                )
            })
            .collect();
        let Some(peer) = self.peers.get_mut(&address) else {
            return;
        };
        let Some(up) = peer.up.as_mut() else {
            return;
        };
        let mut bytes = export::sync(&self.rules, &peer.config, up, &mut self.interner, best);
        for afi in [Afi::Ipv4, Afi::Ipv6] {
            if families.contains(&afi.family())
                && let Err(error) = up.packer.end_of_rib(afi, &mut bytes)
            {
                tracing::error!(%error, "cannot encode End-of-RIB");
            }
        }
        let _ = peer.commands.send(Command::SendEncoded(bytes));
    }

    fn accepted(&mut self, stream: TcpStream, from: SocketAddr) {
        let _ = stream.set_nodelay(true);
        let address = from.ip().to_canonical();
        if let Some(peer) = self.peers.get(&address) {
            apply_ttl(&stream, peer.config.ttl);
            let _ = peer.commands.send(Command::Accepted(stream));
            return;
        }
        let Some((index, range)) = self
            .config
            .listen_ranges
            .iter()
            .enumerate()
            .find(|(_, range)| range.prefix.contains(&address))
        else {
            tracing::info!(%address, "connection from an unknown peer refused");
            return;
        };
        let sessions = self
            .peers
            .values()
            .filter(|p| p.range == Some(index))
            .count();
        if sessions >= range.max_sessions {
            tracing::warn!(%address, prefix = %range.prefix, sessions, "listen range full; connection refused");
            return;
        }
        let config = PeerConfig {
            address,
            passive: true,
            ..range.template.clone()
        };
        apply_ttl(&stream, config.ttl);
        let peer = self.add_peer(config, Some(index));
        let _ = peer.commands.send(Command::Accepted(stream));
    }

    fn expire_stale(&mut self) {
        let now = Instant::now();
        let expired: Vec<IpAddr> = self
            .peers
            .iter_mut()
            .filter(|(_, p)| p.stale_until.is_some_and(|at| at <= now))
            .map(|(address, p)| {
                p.stale_until = None;
                *address
            })
            .collect();
        for address in expired {
            let changes = self.rib.sweep_stale(Some(address));
            self.publish(changes);
        }
    }

    fn set_listener_key(&self, peers: IpNet, key: &[u8]) {
        let Some(listener) = &self.listener else {
            return;
        };
        let Ok(local) = listener.local_addr() else {
            return;
        };
        let seen = match peers {
            IpNet::V4(v4) if local.is_ipv6() => IpNet::new(
                transport::as_seen_by(local, IpAddr::V4(v4.addr())),
                v4.prefix_len() + 96,
            )
            .expect("an IPv4 prefix maps into IPv6"),
            other => other,
        };
        if let Err(error) = transport::set_key(listener.as_fd(), seen, key) {
            tracing::error!(%error, "cannot set a TCP-MD5 key on the listener");
        }
    }

    fn routes(&self, prefix: Option<IpNet>, peer: Option<IpAddr>) -> Vec<(IpNet, Vec<Path>)> {
        let prefixes: Vec<IpNet> = match prefix {
            Some(prefix) => vec![prefix.trunc()],
            None => self.rib.prefixes().copied().collect(),
        };
        let mut routes: Vec<(IpNet, Vec<Path>)> = prefixes
            .into_iter()
            .filter_map(|prefix| {
                let paths: Vec<Path> = self
                    .rib
                    .paths(&prefix)
                    .iter()
                    .filter(|p| peer.is_none() || p.source.peer == peer)
                    .cloned()
                    .collect();
                (!paths.is_empty()).then_some((prefix, paths))
            })
            .collect();
        routes.sort_by_key(|(prefix, _)| *prefix);
        routes
    }

    fn set_listen_ranges(&mut self, ranges: Vec<ListenRange>) {
        let old = std::mem::replace(&mut self.config.listen_ranges, ranges);
        let mut gone = Vec::new();
        for (address, peer) in &mut self.peers {
            let Some(index) = peer.range else { continue };
            let kept = old
                .get(index)
                .and_then(|range| self.config.listen_ranges.iter().position(|r| r == range));
            match kept {
                Some(new_index) => peer.range = Some(new_index),
                None => gone.push(*address),
            }
        }
        for address in gone {
            self.request(Request::RemovePeer(address));
        }
        for range in self.config.listen_ranges.clone() {
            if let Some(key) = &range.template.md5_key {
                self.set_listener_key(range.prefix, key);
            }
        }
    }

    fn status(&self) -> Vec<PeerStatus> {
        let mut peers: Vec<PeerStatus> = self
            .peers
            .iter()
            .map(|(address, peer)| PeerStatus {
                address: *address,
                remote_as: peer
                    .up
                    .as_ref()
                    .map(|up| up.negotiated.remote_as)
                    .or(peer.config.remote_as),
                established: peer.up.is_some(),
                internal: peer.up.as_ref().is_some_and(|up| up.source.internal)
                    || peer.config.remote_as == Some(self.config.local_as),
                since: peer.since,
                info: peer.last_error.clone(),
                hostname: peer
                    .up
                    .as_ref()
                    .and_then(|up| up.negotiated.peer_hostname.clone()),
                prefixes_received: self.rib.prefix_count(Some(*address)),
                prefixes_advertised: peer.up.as_ref().map_or(0, |up| up.sent.len()),
            })
            .collect();
        peers.sort_by_key(|p| p.address);
        peers
    }
}

fn apply_ttl(stream: &TcpStream, ttl: TtlPolicy) {
    let ipv6 = stream.local_addr().is_ok_and(|a| a.is_ipv6());
    if let Err(error) = transport::ttl::apply(stream.as_fd(), ipv6, ttl) {
        tracing::warn!(%error, "cannot apply the peer's TTL policy");
    }
}

async fn accept(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
