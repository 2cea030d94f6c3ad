//! The speaker task: its state and event loop, peers coming and going, and
//! graceful restart in both roles.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ipnet::IpNet;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::codec::{
    Afi, AsPath, Attributes, Message, Notification, Origin, RouteRefresh, RouteRefreshKind,
    UpdatePacker,
};
use crate::rib::{Interner, LOCAL, Rib, Source, Speaker};
use crate::session::{self, Command, Event, EventSink};
use crate::transport::{self, TtlPolicy};

use super::config::{ListenRange, PeerConfig, SpeakerConfig};
use super::export::{self, ExportClass, Scratch};
use super::hooks::Hooks;
use super::notices::Notices;
use super::outbox::Outbox;
use super::peer::{Peer, PeerStatus, Up};
use super::{Notice, Request, SHUTDOWN_GRACE};

/// Cease subcode 1 (RFC 4486).
const CEASE: u8 = 6;
const MAXIMUM_PREFIXES_REACHED: u8 = 1;
/// Session events taken per round before the peers are brought up to date.
const EVENT_BATCH: usize = 64;
/// Events the sessions may queue for the speaker.
const EVENT_QUEUE: usize = 1024;

pub(super) struct State {
    pub config: SpeakerConfig,
    pub rules: Speaker,
    listeners: Vec<TcpListener>,
    pub rib: Rib,
    pub interner: Interner,
    pub peers: HashMap<IpAddr, Peer>,
    tokens: HashMap<u64, IpAddr>,
    next_token: u64,
    sink: mpsc::Sender<(u64, Event)>,
    events: Option<mpsc::Receiver<(u64, Event)>>,
    notices: Notices,
    pub hooks: Hooks,
    scratch: Scratch,
    classes: Vec<ExportClass>,
    /// Restarting (RFC 4724 4.1): best paths are held back until then, or until
    /// every peer has sent End-of-RIB.
    deferral: Option<Instant>,
    /// RIB changes since the interner last dropped unused sets; it scans them all,
    /// so only after a number of changes proportional to their count.
    removed: usize,
}

impl State {
    pub fn new(
        config: SpeakerConfig,
        hooks: Hooks,
        listeners: Vec<TcpListener>,
        notices: mpsc::Sender<Notice>,
    ) -> Self {
        let (sink, events) = mpsc::channel(EVENT_QUEUE);
        let deferral = config
            .graceful_restart
            .filter(|gr| gr.restarting)
            .map(|_| Instant::now() + config.selection_deferral);
        Self {
            rules: Speaker {
                local_as: config.local_as,
                router_id: config.router_id,
                cluster_id: config.cluster_id,
                client_to_client: config.client_to_client,
            },
            rib: Rib::new(Source::local(config.router_id, config.local_as)),
            config,
            listeners,
            interner: Interner::default(),
            peers: HashMap::new(),
            tokens: HashMap::new(),
            next_token: 1,
            sink,
            events: Some(events),
            notices: Notices::new(notices),
            hooks,
            scratch: Scratch::default(),
            classes: Vec::new(),
            deferral,
            removed: 0,
        }
    }

    pub async fn run(mut self, mut requests: mpsc::UnboundedReceiver<Request>) {
        let mut events = self.events.take().expect("run once");
        for (index, range) in self.config.listen_ranges.clone().iter().enumerate() {
            if let Some(key) = &range.template.md5_key {
                self.set_listener_key(range.prefix, key);
            }
            tracing::debug!(index, prefix = %range.prefix, "listening for dynamic peers");
        }
        loop {
            let timer = self.next_timer();
            let mut permit = None;
            tokio::select! {
                request = requests.recv() => {
                    // The owner dropping its handle is a shutdown too.
                    let request = request.unwrap_or(Request::Shutdown("shutting down".into()));
                    if let Request::Shutdown(message) = request {
                        self.shut_down(message).await;
                        return;
                    }
                    self.request(request);
                }
                Some((token, event)) = events.recv() => {
                    self.event(token, event);
                    for _ in 1..EVENT_BATCH {
                        match events.try_recv() {
                            Ok((token, event)) => self.event(token, event),
                            Err(_) => break,
                        }
                    }
                }
                accepted = accept(&self.listeners) => {
                    if let Ok((stream, from)) = accepted {
                        self.accepted(stream, from);
                    }
                }
                room = self.notices.room() => permit = room,
                () = sleep_until(timer), if timer.is_some() => self.timers(),
            }
            self.follow_journal();
            self.flush(permit);
        }
    }

    /// Ceases every session and waits (at most [`SHUTDOWN_GRACE`]) until each
    /// has written its NOTIFICATION.
    async fn shut_down(&mut self, message: String) {
        let mut drivers = Vec::new();
        for (_, peer) in self.peers.drain() {
            let _ = peer.commands.send(Command::Stop(message.clone()));
            drivers.push(peer.driver);
        }
        let all = async {
            for driver in drivers {
                let _ = driver.await;
            }
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, all).await.is_err() {
            tracing::warn!("sessions still closing after the shutdown grace time");
        }
    }

    /// The next deadline: a stale-route sweep or the end of the deferral.
    fn next_timer(&self) -> Option<Instant> {
        self.peers
            .values()
            .filter_map(|p| p.stale_until)
            .chain(self.deferral)
            .min()
    }

    fn timers(&mut self) {
        let now = Instant::now();
        if self.deferral.is_some_and(|at| at <= now) {
            tracing::info!("selection deferral over without every End-of-RIB");
            self.deferral = None;
        }
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
            tracing::info!(peer = %address, "restart time over; stale routes removed");
            if let Some(source) = self.peers.get(&address).map(|p| p.source) {
                self.rib.sweep_stale(source);
            }
            self.forget_if_dynamic(address);
        }
    }

    fn request(&mut self, request: Request) {
        match request {
            Request::AddPeer(config) => {
                // An existing peer restarts with the new configuration.
                self.remove_peer(config.address, "peer reconfigured");
                self.configure(config);
            }
            Request::UpdatePeer(config) => self.configure(config),
            Request::RemovePeer(address) => self.remove_peer(address, "peer removed"),
            Request::Originate(prefix) => self.originate(prefix, Attributes::default()),
            Request::OriginateWith { prefix, attributes } => self.originate(prefix, attributes),
            Request::Withdraw(prefix) => self.rib.withdraw(prefix.trunc(), LOCAL, None),
            Request::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Request::Routes(reply) => {
                let routes = self
                    .rib
                    .prefixes()
                    .map(|(slot, prefix)| {
                        (
                            prefix,
                            self.rib.paths_at(slot).map(|p| p.to_path()).collect(),
                        )
                    })
                    .collect();
                let _ = reply.send(routes);
            }
            Request::SetListenRanges(ranges) => self.set_listen_ranges(ranges),
            Request::Shutdown(_) => {}
        }
    }

    /// Replaces the listen ranges; a dynamic peer stays while the range it came
    /// through stays unchanged (its index may move).
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
            self.remove_peer(address, "listen range removed");
        }
        for range in self.config.listen_ranges.clone() {
            if let Some(key) = &range.template.md5_key {
                self.set_listener_key(range.prefix, key);
            }
        }
    }

    fn originate(&mut self, prefix: IpNet, mut attributes: Attributes) {
        attributes.origin.get_or_insert(Origin::Igp);
        attributes.as_path.get_or_insert_with(AsPath::default);
        let attributes = self.interner.intern(attributes);
        let next_hop = IpAddr::from([0, 0, 0, 0]);
        self.rib
            .announce(prefix.trunc(), LOCAL, &attributes, next_hop, None);
    }

    fn configure(&mut self, config: PeerConfig) {
        if let Err(error) = config.validate(&format!("peer {}", config.address)) {
            tracing::error!(%error, "peer configuration refused");
            return;
        }
        if let Some(key) = &config.md5_key {
            self.set_listener_key(IpNet::from(config.address), key);
        }
        let address = config.address;
        match self.peers.get_mut(&address) {
            Some(peer) if !peer.config.needs_new_session(&config) => {
                let old = std::mem::replace(&mut peer.config, config);
                let Some(up) = peer.up.as_mut() else {
                    return;
                };
                if old.export != peer.config.export
                    || old.export_filter != peer.config.export_filter
                    || old.next_hop != peer.config.next_hop
                {
                    up.class = class_id(&mut self.classes, ExportClass::of(&peer.config, up));
                    for (slot, _) in self.rib.prefixes() {
                        up.outbox.mark(slot);
                    }
                }
                if old.import != peer.config.import
                    || old.import_filter != peer.config.import_filter
                    || old.allowas_in != peer.config.allowas_in
                {
                    refresh(peer);
                }
            }
            Some(_) => {
                self.remove_peer(address, "peer reconfigured");
                self.add_peer(config, None);
            }
            None => {
                self.add_peer(config, None);
            }
        }
    }

    fn add_peer(&mut self, config: PeerConfig, range: Option<usize>) -> &mut Peer {
        let address = config.address;
        let token = self.next_token;
        self.next_token += 1;
        let handle = session::spawn_into(
            config.session(&self.config),
            config.endpoint(),
            EventSink {
                events: self.sink.clone(),
                token,
            },
        );
        let source = self.rib.add_source(Arc::new(Source {
            peer: Some(address),
            router_id: std::net::Ipv4Addr::UNSPECIFIED,
            remote_as: config.remote_as.unwrap_or(0),
            internal: config.remote_as == Some(config.local_as(&self.config)),
            rr_client: config.rr_client,
        }));
        self.tokens.insert(token, address);
        self.peers.entry(address).or_insert(Peer {
            config,
            token,
            commands: handle.commands,
            updates: handle.updates,
            stats: handle.stats,
            driver: handle.task,
            source,
            up: None,
            since: Instant::now(),
            last_error: None,
            stale_until: None,
            range,
            announcements: 0,
        })
    }

    fn remove_peer(&mut self, address: IpAddr, why: &str) {
        if let Some(peer) = self.peers.remove(&address) {
            let _ = peer.commands.send(Command::Stop(why.into()));
            self.tokens.remove(&peer.token);
            self.rib.remove_source(peer.source);
            // Its session's own Down event finds no peer any more.
            if peer.up.is_some() {
                self.notices.event(Notice::PeerDown {
                    address,
                    reason: why.into(),
                });
            }
        }
    }

    /// Dynamic neighbours leave once their session and their routes are gone.
    fn forget_if_dynamic(&mut self, address: IpAddr) {
        let gone = self
            .peers
            .get(&address)
            .is_some_and(|p| p.range.is_some() && p.up.is_none() && p.stale_until.is_none());
        if gone {
            self.remove_peer(address, "dynamic neighbour gone");
        }
    }

    fn event(&mut self, token: u64, event: Event) {
        let Some(&address) = self.tokens.get(&token) else {
            return;
        };
        match event {
            Event::Up {
                negotiated,
                local,
                epoch,
            } => self.up(address, *negotiated, local, epoch),
            Event::Down(reason) | Event::Failed(reason) => self.down(address, reason.to_string()),
            Event::Received(Message::Update(update)) => {
                self.receive(address, update);
                self.enforce_max_prefixes(address);
            }
            Event::Received(Message::RouteRefresh(refresh)) => {
                self.refresh_requested(address, &refresh)
            }
            Event::Received(_) | Event::Drained => {}
        }
    }

    fn up(
        &mut self,
        address: IpAddr,
        negotiated: crate::session::Negotiated,
        local: SocketAddr,
        epoch: u64,
    ) {
        let local_as = match self.peers.get(&address) {
            Some(peer) => peer.config.local_as(&self.config),
            None => return,
        };
        let Some(peer) = self.peers.get_mut(&address) else {
            return;
        };
        let internal = negotiated.internal(local_as);
        let source = Arc::new(Source {
            peer: Some(address),
            router_id: negotiated.remote_id,
            remote_as: negotiated.remote_as,
            internal,
            rr_client: peer.config.rr_client,
        });
        self.rib.set_source(peer.source, Arc::clone(&source));
        self.notices.event(Notice::PeerUp {
            address,
            remote_as: negotiated.remote_as,
        });
        peer.since = Instant::now();
        peer.last_error = None;
        let forwarding_kept = negotiated
            .peer_graceful_restart
            .as_ref()
            .is_some_and(|gr| gr.families.iter().any(|&(_, forwarding)| forwarding));
        if peer.stale_until.is_some() && !forwarding_kept {
            // RFC 4724 4.2: it kept no forwarding state, so the stale routes go now.
            peer.stale_until = None;
            self.rib.sweep_stale(peer.source);
        }
        let sends = negotiated.context.add_path;
        let mut outbox = Outbox::default();
        outbox.all_paths = sends.send_ipv4 || sends.send_ipv6;
        for (slot, _) in self.rib.prefixes() {
            outbox.mark(slot);
        }
        let mut up = Up {
            packer: UpdatePacker::new(negotiated.context),
            class: 0,
            rules: Speaker {
                local_as,
                ..self.rules.clone()
            },
            negotiated,
            source,
            local: local.ip().to_canonical(),
            epoch,
            updates: peer.updates.clone(),
            stats: Arc::clone(&peer.stats),
            outbox,
            end_of_rib_due: true,
            end_of_rib_seen: Vec::new(),
        };
        up.class = class_id(&mut self.classes, ExportClass::of(&peer.config, &up));
        peer.up = Some(up);
    }

    fn down(&mut self, address: IpAddr, reason: String) {
        let Some(peer) = self.peers.get_mut(&address) else {
            return;
        };
        peer.last_error = Some(reason.clone());
        let Some(up) = peer.up.take() else {
            self.forget_if_dynamic(address);
            return;
        };
        peer.since = Instant::now();
        self.notices.event(Notice::PeerDown { address, reason });
        let restart = up
            .negotiated
            .peer_graceful_restart
            .as_ref()
            .map(|gr| Duration::from_secs(gr.restart_time.into()))
            .filter(|time| !time.is_zero());
        match restart {
            // RFC 4724: keep forwarding on its routes while it restarts.
            Some(time) => {
                peer.stale_until = Some(Instant::now() + time);
                self.rib.mark_stale(peer.source);
            }
            None => {
                let source = peer.source;
                self.rib.remove_source_paths(source);
                self.forget_if_dynamic(address);
            }
        }
    }

    /// A ROUTE-REFRESH (RFC 2918): everything of that family is sent again.
    fn refresh_requested(&mut self, address: IpAddr, refresh: &RouteRefresh) {
        let Some(up) = self.peers.get_mut(&address).and_then(|p| p.up.as_mut()) else {
            return;
        };
        if refresh.kind != RouteRefreshKind::Request {
            return;
        }
        let Some(afi) = Afi::of(refresh.family) else {
            return;
        };
        for (slot, prefix) in self.rib.prefixes() {
            if prefix.addr().is_ipv4() == (afi == Afi::Ipv4) {
                up.outbox.mark(slot);
            }
        }
    }

    /// Resets the session of a peer over its prefix limit and keeps it away for a
    /// while, dropping its routes.
    fn enforce_max_prefixes(&mut self, address: IpAddr) {
        let Some(peer) = self.peers.get(&address) else {
            return;
        };
        let accepted = self.rib.path_count(peer.source);
        let Some(limit) = peer.config.max_prefixes.filter(|&limit| accepted > limit) else {
            return;
        };
        tracing::warn!(peer = %address, accepted, limit, "maximum prefixes exceeded; resetting");
        // RFC 4486 4: AFI, SAFI and the limit. The limit counts both families.
        let mut data = vec![0, 1, 1];
        data.extend_from_slice(&u32::try_from(limit).unwrap_or(u32::MAX).to_be_bytes());
        let notification = Notification {
            code: CEASE,
            subcode: MAXIMUM_PREFIXES_REACHED,
            data,
        };
        let _ = peer.commands.send(Command::ResetFor(
            notification,
            peer.config.max_prefixes_restart,
        ));
        self.rib.remove_source_paths(peer.source);
    }

    /// Hands every consumer the RIB's changes since the last round.
    fn follow_journal(&mut self) {
        let peers = &mut self.peers;
        let notices = &mut self.notices;
        for touched in self.rib.drain() {
            // Any change may have left an attribute set unused.
            self.removed += 1;
            for up in peers.values_mut().filter_map(|p| p.up.as_mut()) {
                up.outbox.follow(touched);
            }
            if self.config.best_notices {
                notices.pending.outbox.follow(touched);
            }
        }
        if self.removed > 1024 + self.interner.len() / 2 {
            self.interner.collect();
            self.removed = 0;
        }
    }

    /// Sends what every consumer is owed, as far as each one's queue allows.
    fn flush(&mut self, permit: Option<tokio::sync::mpsc::OwnedPermit<Notice>>) {
        if self.deferral.is_some() {
            if !self.all_tables_complete() {
                return;
            }
            tracing::info!("every peer sent End-of-RIB; selection deferral over");
            self.deferral = None;
        }
        for peer in self.peers.values_mut() {
            let Some(up) = peer.up.as_mut() else {
                continue;
            };
            let clean = export::flush(&self.rib, &peer.config, up, &self.hooks, &mut self.scratch);
            if clean && up.end_of_rib_due && export::room(up) {
                up.end_of_rib_due = false;
                send_end_of_rib(up);
            }
        }
        self.notices.flush(&self.rib, permit);
        self.scratch.end_round();
    }

    /// True when every configured peer is up and sent End-of-RIB, or cannot
    /// (it is up without graceful restart). Without configured peers (the owner
    /// adds them just after the start) the bound decides.
    fn all_tables_complete(&self) -> bool {
        let mut configured = self.peers.values().filter(|p| p.range.is_none()).peekable();
        configured.peek().is_some()
            && configured.all(|p| match &p.up {
                Some(up) => up.table_complete() || up.negotiated.peer_graceful_restart.is_none(),
                None => false,
            })
    }

    fn accepted(&mut self, stream: TcpStream, from: SocketAddr) {
        let address = from.ip().to_canonical();
        // As on connected sessions: UPDATEs go out as soon as they are written.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::warn!(%address, %error, "cannot set TCP_NODELAY");
        }
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

    fn set_listener_key(&self, peers: IpNet, key: &[u8]) {
        for listener in &self.listeners {
            let Ok(local) = listener.local_addr() else {
                continue;
            };
            let seen = match peers {
                IpNet::V4(v4) if local.is_ipv6() => IpNet::new(
                    transport::as_seen_by(local, IpAddr::V4(v4.addr())),
                    v4.prefix_len() + 96,
                )
                .expect("an IPv4 prefix maps into IPv6"),
                // An IPv4 socket never sees IPv6 peers.
                IpNet::V6(_) if local.is_ipv4() => continue,
                other => other,
            };
            if let Err(error) = transport::set_key(listener.as_fd(), seen, key) {
                tracing::error!(%error, %local, "cannot set a TCP-MD5 key on the listener");
            }
        }
    }

    fn status(&self) -> Vec<PeerStatus> {
        use std::sync::atomic::Ordering::Relaxed;
        let mut peers: Vec<PeerStatus> = self
            .peers
            .iter()
            .map(|(address, peer)| {
                let up = peer.up.as_ref();
                let stats = &peer.stats;
                PeerStatus {
                    address: *address,
                    remote_as: up
                        .map(|up| up.negotiated.remote_as)
                        .or(peer.config.remote_as),
                    state: stats.state(),
                    established: up.is_some(),
                    internal: up.map_or(
                        peer.config.remote_as == Some(peer.config.local_as(&self.config)),
                        |up| up.source.internal,
                    ),
                    since: peer.since,
                    uptime: up.map(|_| peer.since.elapsed()),
                    info: peer.last_error.clone(),
                    hostname: up.and_then(|up| up.negotiated.peer_hostname.clone()),
                    messages_received: stats.messages_received.load(Relaxed),
                    messages_sent: stats.messages_sent.load(Relaxed),
                    updates_received: stats.updates_received.load(Relaxed),
                    updates_sent: stats.updates_sent.load(Relaxed),
                    prefixes_received: peer.announcements,
                    prefixes_accepted: self.rib.path_count(peer.source),
                    prefixes_advertised: up.map_or(0, |up| up.outbox.advertised()),
                    restarting: peer.stale_until.is_some(),
                }
            })
            .collect();
        peers.sort_by_key(|p| p.address);
        peers
    }
}

/// The number of `class`, added when new.
fn class_id(classes: &mut Vec<ExportClass>, class: ExportClass) -> u32 {
    let at = match classes.iter().position(|c| *c == class) {
        Some(at) => at,
        None => {
            classes.push(class);
            classes.len() - 1
        }
    };
    u32::try_from(at).expect("fewer than 2^32 export classes")
}

/// Asks the peer to send its routes again (after an import policy change), or
/// restarts the session when it cannot.
fn refresh(peer: &Peer) {
    let Some(up) = &peer.up else {
        return;
    };
    if !up.negotiated.route_refresh {
        let _ = peer.commands.send(Command::Reset(Notification::cease(
            false,
            "import policy changed",
        )));
        return;
    }
    for &family in &up.negotiated.families {
        let _ = peer
            .commands
            .send(Command::Send(Message::RouteRefresh(RouteRefresh {
                family,
                kind: RouteRefreshKind::Request,
            })));
    }
}

fn send_end_of_rib(up: &Up) {
    let mut bytes = BytesMut::new();
    let mut updates = 0;
    for family in &up.negotiated.families {
        if let Some(afi) = Afi::of(*family)
            && up.packer.end_of_rib(afi, &mut bytes).is_ok()
        {
            updates += 1;
        }
    }
    let _ = up.updates.try_send(crate::session::Outgoing {
        epoch: up.epoch,
        bytes: bytes.freeze(),
        updates,
    });
}

fn apply_ttl(stream: &TcpStream, ttl: TtlPolicy) {
    let ipv6 = stream.local_addr().is_ok_and(|a| a.is_ipv6());
    if let Err(error) = transport::ttl::apply(stream.as_fd(), ipv6, ttl) {
        tracing::warn!(%error, "cannot apply the peer's TTL policy");
    }
}

/// The next connection on any of `listeners`; pending forever without one.
async fn accept(listeners: &[TcpListener]) -> std::io::Result<(TcpStream, SocketAddr)> {
    std::future::poll_fn(|cx| {
        for listener in listeners {
            if let std::task::Poll::Ready(accepted) = listener.poll_accept(cx) {
                return std::task::Poll::Ready(accepted);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
