//! The speaker without I/O: the RIB, the peers and what the speaker decides for
//! them (graceful restart in both roles, maximum prefixes, dynamic neighbours),
//! fed [`Input`]s and returning [`Output`]s, like the session FSM. It reads no
//! clock (every input comes with the time) and owns no socket: the tokio task in
//! `task` accepts connections, spawns session drivers, sets socket options and
//! keeps the timer the outputs ask for.
//!
//! Two things do not go through outputs, to keep the hot path as it is: encoded
//! UPDATEs go straight into each session's bounded queue (an in-memory channel the
//! core creates and hands to the driver it asks for), and the owner's notices are
//! pulled with [`Core::next_notice`] as the owner's channel has room, so that an
//! owner that reads slowly gets the latest state of each prefix.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use ipnet::IpNet;
use tokio::sync::mpsc;

use crate::codec::{AsPath, Attributes, Origin, RouteRefreshKind};
use crate::rib::{Candidate, Interner, LOCAL, LocalRouter, Rib, Source};
use crate::session::{Command, Event, Outgoing, SessionConfig, SessionStats};
use crate::transport::{Endpoint, Md5Key, TtlPolicy};

use super::config::SpeakerConfig;
use super::export::{self, ExportClass, Scratch};
use super::hooks::Hooks;
use super::notices::Pending;
use super::peer::{Peer, PeerStatus};
use super::{Notice, Request};

/// What the core is told.
// One input is handled at a time and none is stored, so a request's size (a peer's
// whole configuration) costs a move, not memory.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Input {
    /// The speaker starts (TCP-MD5 keys for the listen ranges go on the listener).
    Start,
    Request(Request),
    /// Events from the sessions, each tagged with its session's token.
    Sessions(Vec<(u64, Event)>),
    /// The listener accepted a connection from this address.
    Connection(IpAddr),
    /// The deadline of the last [`Output::Deadline`] passed.
    Timer,
    /// The owner dropped its notices receiver: nothing is tracked for it any more.
    OwnerGone,
}

/// What the core asks its shell to do.
#[derive(Debug)]
pub(crate) enum Output {
    /// Start a session driver for a peer.
    Spawn(Spawn),
    /// Tell a session (by token) to send, reset or stop.
    Command(u64, Command),
    /// Hand the connection just accepted to this session, with this TTL policy.
    Accept { token: u64, ttl: TtlPolicy },
    /// Close the connection just accepted.
    Refuse,
    /// Set this TCP-MD5 key on the listener for connections from `peers`.
    ListenerKey { peers: IpNet, key: Md5Key },
    /// Give [`Input::Timer`] at this time (`None`: no timer).
    Deadline(Option<Instant>),
    /// Every session was told to stop: wait for them, then end.
    Exit,
}

/// A session driver to start; its update queue and counters are the core's.
#[derive(Debug)]
pub(crate) struct Spawn {
    pub token: u64,
    pub session: SessionConfig,
    pub endpoint: Endpoint,
    pub updates: mpsc::Receiver<Outgoing>,
    pub stats: Arc<SessionStats>,
}

/// RIB changes after which unused attribute sets are dropped: the interner scans
/// them all, so only after a number of changes proportional to their count.
const COLLECT_AFTER: usize = 1024;

#[derive(Debug)]
pub(crate) struct Core {
    pub config: SpeakerConfig,
    pub router: LocalRouter,
    pub rib: Rib,
    pub interner: Interner,
    pub peers: HashMap<IpAddr, Peer>,
    /// Peers whose BFD session the owner last said is Up (BFD strict mode).
    pub forwarding: HashSet<IpAddr>,
    pub tokens: HashMap<u64, IpAddr>,
    pub next_token: u64,
    pub notices: Pending,
    pub hooks: Hooks,
    pub scratch: Scratch,
    pub classes: Vec<ExportClass>,
    /// Restarting (RFC 4724 4.1): best paths are held back until then, or until
    /// every peer has sent End-of-RIB.
    pub deferral: Option<Instant>,
    /// RIB changes since the interner last dropped unused sets.
    removed: usize,
    /// The deadline last asked for.
    deadline: Option<Instant>,
    /// The time of the input being handled.
    pub now: Instant,
    /// What this input asks of the shell.
    pub out: Vec<Output>,
}

impl Core {
    pub fn new(config: SpeakerConfig, hooks: Hooks, now: Instant) -> Self {
        let deferral = config
            .graceful_restart
            .filter(|gr| gr.restarting)
            .map(|_| now + config.selection_deferral);
        Self {
            router: LocalRouter {
                local_as: config.local_as,
                router_id: config.router_id,
                cluster_id: config.cluster_id,
                client_to_client: config.client_to_client,
            },
            rib: Rib::new(Source::local(config.router_id, config.local_as)),
            config,
            interner: Interner::default(),
            peers: HashMap::new(),
            forwarding: HashSet::new(),
            tokens: HashMap::new(),
            next_token: 1,
            notices: Pending::default(),
            hooks,
            scratch: Scratch::default(),
            classes: Vec::new(),
            deferral,
            removed: 0,
            deadline: None,
            now,
            out: Vec::new(),
        }
    }

    /// Applies one input at `now`, brings every peer up to date, and returns what
    /// the shell must do.
    pub fn handle(&mut self, now: Instant, input: Input) -> Vec<Output> {
        self.now = now;
        match input {
            Input::Start => {
                for range in self.config.listen_ranges.clone() {
                    if let Some(key) = range.template.md5_key {
                        self.out.push(Output::ListenerKey {
                            peers: range.prefix,
                            key,
                        });
                    }
                    tracing::debug!(prefix = %range.prefix, "listening for dynamic peers");
                }
            }
            Input::Request(request) => self.request(request),
            Input::Sessions(events) => {
                for (token, event) in events {
                    self.event(token, event);
                }
            }
            Input::Connection(from) => self.connection(from),
            Input::Timer => self.timers(),
            Input::OwnerGone => self.notices.close(),
        }
        self.follow_journal();
        self.flush();
        let deadline = self.next_deadline();
        if deadline != self.deadline {
            self.deadline = deadline;
            self.out.push(Output::Deadline(deadline));
        }
        std::mem::take(&mut self.out)
    }

    /// The next notice for the owner, if one is due (none while best paths are
    /// held back after a restart).
    pub fn next_notice(&mut self) -> Option<Notice> {
        if self.deferral.is_some() {
            return None;
        }
        self.notices.next(&self.rib)
    }

    /// True when a notice is due.
    pub fn has_notices(&self) -> bool {
        self.deferral.is_none() && !self.notices.is_empty()
    }

    /// The next deadline: a stale-route sweep or the end of the deferral.
    fn next_deadline(&self) -> Option<Instant> {
        self.peers
            .values()
            .filter_map(|p| p.stale_until)
            .chain(self.deferral)
            .min()
    }

    fn timers(&mut self) {
        let now = self.now;
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
            Request::RemovePeer(address) => {
                self.forwarding.remove(&address);
                self.remove_peer(address, "peer removed");
            }
            Request::Originate(prefix) => self.originate(prefix, Attributes::default()),
            Request::OriginateWith { prefix, attributes } => self.originate(prefix, attributes),
            Request::Withdraw(prefix) => self.rib.withdraw(prefix.trunc(), LOCAL, None),
            Request::Status(reply) => {
                let _ = reply.send(self.status(self.now));
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
            Request::ForwardingDown { address, graceful } => {
                self.forwarding_down(address, graceful)
            }
            Request::ForwardingUp(address) => self.forwarding_up(address),
            Request::Revalidate => {
                if let Some(hook) = &self.hooks.import {
                    self.rib.revalidate(|prefix, path| {
                        hook.eligible(path.source(), &prefix, path.next_hop(), path.attributes())
                    });
                }
            }
            Request::Shutdown(message) => {
                let peers: Vec<IpAddr> = self.peers.keys().copied().collect();
                for address in peers {
                    self.remove_peer(address, &message);
                }
                self.out.push(Output::Exit);
            }
        }
    }

    fn originate(&mut self, prefix: IpNet, mut attributes: Attributes) {
        attributes.origin.get_or_insert(Origin::Igp);
        attributes.as_path.get_or_insert_with(AsPath::default);
        let attributes = self.interner.intern(attributes);
        let next_hop = IpAddr::from([0, 0, 0, 0]);
        self.rib
            .announce(prefix.trunc(), LOCAL, &attributes, next_hop, None, true);
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
            } => self.established(address, *negotiated, local, epoch),
            Event::Down(reason) | Event::Failed(reason) => self.down(address, &reason),
            Event::Received(crate::codec::Message::Update(update)) => {
                self.receive(address, update);
                self.enforce_max_prefixes(address);
            }
            Event::Received(crate::codec::Message::RouteRefresh(refresh)) => {
                self.route_refresh(address, &refresh)
            }
            // `Drained` only wakes the speaker: the flush below uses the room.
            Event::Received(_) | Event::Drained => {}
        }
    }

    /// Hands every consumer the RIB's changes since the last input.
    fn follow_journal(&mut self) {
        let peers = &mut self.peers;
        let notices = &mut self.notices;
        for touched in self.rib.drain() {
            // Any change may have left an attribute set unused.
            self.removed += 1;
            for session in peers.values_mut().filter_map(|p| p.session.as_mut()) {
                session.outbox.follow(touched);
            }
            if self.config.best_notices {
                notices.follow(touched);
            }
        }
        if self.removed > COLLECT_AFTER + self.interner.len() / 2 {
            self.interner.collect();
            self.removed = 0;
        }
    }

    /// Queues what every peer is owed, as far as each one's queue allows.
    fn flush(&mut self) {
        if self.deferral.is_some() {
            if !self.all_tables_complete() {
                return;
            }
            tracing::info!("every peer sent End-of-RIB; selection deferral over");
            self.deferral = None;
        }
        for peer in self.peers.values_mut() {
            let Some(session) = peer.session.as_mut() else {
                continue;
            };
            if !session.refresh_begin_due.is_empty() {
                // What the refresh re-sends must follow its beginning.
                if !export::room(session) {
                    continue;
                }
                session.send_refresh_markers(RouteRefreshKind::Begin);
            }
            let clean = export::flush(
                &self.rib,
                &peer.config,
                session,
                &self.hooks,
                &mut self.scratch,
            );
            if clean && session.end_of_rib_due && export::room(session) {
                session.end_of_rib_due = false;
                session.send_end_of_rib();
            }
            if clean && !session.refresh_end_due.is_empty() && export::room(session) {
                session.send_refresh_markers(RouteRefreshKind::End);
            }
        }
        self.scratch.end_round();
    }

    /// True when every configured peer is up and sent End-of-RIB, or cannot
    /// (it is up without graceful restart). Without configured peers (the owner
    /// adds them just after the start) the bound decides.
    fn all_tables_complete(&self) -> bool {
        let mut configured = self.peers.values().filter(|p| p.range.is_none()).peekable();
        configured.peek().is_some()
            && configured.all(|p| match &p.session {
                Some(session) => {
                    session.table_complete() || session.negotiated.peer_graceful_restart.is_none()
                }
                None => false,
            })
    }

    /// Every peer as `node status` shows it, at `now`.
    pub fn status(&self, now: Instant) -> Vec<PeerStatus> {
        let mut peers: Vec<PeerStatus> = self
            .peers
            .iter()
            .map(|(address, peer)| peer.status(*address, &self.config, &self.rib, now))
            .collect();
        peers.sort_by_key(|p| p.address);
        peers
    }
}

/// The number of `class`, added when new.
pub(super) fn class_id(classes: &mut Vec<ExportClass>, class: ExportClass) -> u32 {
    let at = match classes.iter().position(|c| *c == class) {
        Some(at) => at,
        None => {
            classes.push(class);
            classes.len() - 1
        }
    };
    u32::try_from(at).expect("fewer than 2^32 export classes")
}
