//! Peers coming and going in the core: configured and dynamic neighbours,
//! sessions coming up and going down, graceful restart as the helper (RFC 4724:
//! a restarting peer's routes are kept stale), ROUTE-REFRESH, and the prefix
//! limit.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use tokio::sync::mpsc;

use crate::codec::{
    Afi, CeaseSubcode, Message, Notification, RouteRefresh, RouteRefreshKind, UpdatePacker,
};
use crate::rib::{LocalRouter, Source};
use crate::session::{Command, DownReason, Negotiated, Outgoing, SessionStats, UPDATE_QUEUE};

use super::config::{ListenRange, PeerConfig};
use super::core::{Core, Output, Spawn, class_id};
use super::export::ExportClass;
use super::outbox::Outbox;
use super::peer::{Established, Peer};

/// Why a BFD-strict peer has no session.
const WAITING_FOR_BFD: &str = "waiting for BFD Up (strict mode)";

impl Core {
    /// Adds a peer, or changes one: in place when only policy or limits changed,
    /// with a new session otherwise.
    pub(super) fn configure(&mut self, config: PeerConfig) {
        if let Err(error) = config.validate(&format!("peer {}", config.address)) {
            tracing::error!(%error, "peer configuration refused");
            return;
        }
        if let Some(key) = &config.md5_key {
            self.out.push(Output::ListenerKey {
                peers: IpNet::from(config.address),
                key: key.clone(),
            });
        }
        let address = config.address;
        match self.peers.get_mut(&address) {
            Some(peer) if !peer.config.needs_new_session(&config) => {
                let old = std::mem::replace(&mut peer.config, config);
                let Some(session) = peer.session.as_mut() else {
                    return;
                };
                if old.export != peer.config.export
                    || old.export_filter != peer.config.export_filter
                    || old.next_hop != peer.config.next_hop
                    || old.export_learned != peer.config.export_learned
                    || old.other_family_address != peer.config.other_family_address
                {
                    let class = ExportClass::of(&peer.config, session);
                    session.class = class_id(&mut self.classes, class);
                    for (slot, _) in self.rib.prefixes() {
                        session.outbox.mark(slot);
                    }
                }
                if old.import != peer.config.import
                    || old.import_filter != peer.config.import_filter
                    || old.allowas_in != peer.config.allowas_in
                    || old.keep_reflection_attributes != peer.config.keep_reflection_attributes
                {
                    self.out.extend(refresh(peer));
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

    /// Adds a peer and asks for its session, unless BFD strict mode holds it;
    /// returns the session's token.
    pub(super) fn add_peer(&mut self, config: PeerConfig, range: Option<usize>) -> u64 {
        let address = config.address;
        let held = config.bfd_strict && !self.forwarding.contains(&address);
        let (token, updates, stats) = self.new_session(&config, !held);
        let source = self.rib.add_source(Arc::new(Source {
            peer: Some(address),
            router_id: std::net::Ipv4Addr::UNSPECIFIED,
            remote_as: config.remote_as.unwrap_or(0),
            internal: config.remote_as == Some(config.local_as(&self.config)),
            rr_client: config.rr_client,
        }));
        self.peers.insert(
            address,
            Peer {
                config,
                token,
                updates,
                stats,
                source,
                session: None,
                since: self.now,
                last_error: held.then(|| WAITING_FOR_BFD.into()),
                stale_until: None,
                range,
                announcements: 0,
                held,
            },
        );
        token
    }

    /// A token, update queue and counters for a session with `config`'s peer;
    /// the session is started when `start`.
    fn new_session(
        &mut self,
        config: &PeerConfig,
        start: bool,
    ) -> (u64, mpsc::Sender<Outgoing>, Arc<SessionStats>) {
        let token = self.next_token;
        self.next_token += 1;
        let (updates, updates_rx) = mpsc::channel(UPDATE_QUEUE);
        let stats = Arc::new(SessionStats::default());
        if start {
            self.out.push(Output::Spawn(Spawn {
                token,
                session: config.session(&self.config),
                endpoint: config.endpoint(),
                updates: updates_rx,
                stats: Arc::clone(&stats),
            }));
            self.tokens.insert(token, config.address);
        }
        (token, updates, stats)
    }

    pub(super) fn remove_peer(&mut self, address: IpAddr, why: &str) {
        let Some(peer) = self.peers.remove(&address) else {
            return;
        };
        self.out
            .push(Output::Command(peer.token, Command::Stop(why.into())));
        self.tokens.remove(&peer.token);
        self.rib.remove_source(peer.source);
        // Its session's own Down event finds no peer any more.
        if peer.session.is_some() {
            self.notices.event(super::Notice::PeerDown {
                address,
                reason: why.into(),
            });
        }
    }

    /// Dynamic neighbours leave once their session and their routes are gone.
    pub(super) fn forget_if_dynamic(&mut self, address: IpAddr) {
        let gone = self
            .peers
            .get(&address)
            .is_some_and(|p| p.range.is_some() && p.session.is_none() && p.stale_until.is_none());
        if gone {
            self.remove_peer(address, "dynamic neighbour gone");
        }
    }

    /// Replaces the listen ranges; a dynamic peer stays while the range it came
    /// through stays unchanged (its index may move).
    pub(super) fn set_listen_ranges(&mut self, ranges: Vec<ListenRange>) {
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
        for range in &self.config.listen_ranges {
            if let Some(key) = &range.template.md5_key {
                self.out.push(Output::ListenerKey {
                    peers: range.prefix,
                    key: key.clone(),
                });
            }
        }
    }

    /// A connection the listener accepted: a configured peer's session takes it;
    /// one from a listen range makes a dynamic neighbour while the range has room;
    /// anything else is refused.
    pub(super) fn connection(&mut self, from: IpAddr) {
        let address = from.to_canonical();
        if let Some(peer) = self.peers.get(&address) {
            if peer.held {
                tracing::info!(%address, "connection refused: BFD strict mode, BFD not Up");
                self.out.push(Output::Refuse);
                return;
            }
            self.out.push(Output::Accept {
                token: peer.token,
                ttl: peer.config.ttl,
            });
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
            self.out.push(Output::Refuse);
            return;
        };
        let sessions = self
            .peers
            .values()
            .filter(|p| p.range == Some(index))
            .count();
        if sessions >= range.max_sessions {
            tracing::warn!(%address, prefix = %range.prefix, sessions, "listen range full; connection refused");
            self.out.push(Output::Refuse);
            return;
        }
        let config = PeerConfig {
            address,
            passive: true,
            ..range.template.clone()
        };
        let ttl = config.ttl;
        let token = self.add_peer(config, Some(index));
        self.out.push(Output::Accept { token, ttl });
    }

    /// The session came up: its routes are kept if it restarted with forwarding
    /// state, and it is owed the whole table.
    pub(super) fn established(
        &mut self,
        address: IpAddr,
        negotiated: Negotiated,
        local: SocketAddr,
        epoch: u64,
    ) {
        let Some(peer) = self.peers.get_mut(&address) else {
            return;
        };
        let local_as = peer.config.local_as(&self.config);
        let source = Arc::new(Source {
            peer: Some(address),
            router_id: negotiated.remote_id,
            remote_as: negotiated.remote_as,
            internal: negotiated.internal(local_as),
            rr_client: peer.config.rr_client,
        });
        self.rib.set_source(peer.source, Arc::clone(&source));
        self.notices.event(super::Notice::PeerUp {
            address,
            remote_as: negotiated.remote_as,
        });
        peer.since = self.now;
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
        let mut session = Established {
            packer: UpdatePacker::new(negotiated.context),
            class: 0,
            router: LocalRouter {
                local_as,
                ..self.router.clone()
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
            refresh_begin_due: Vec::new(),
            refresh_end_due: Vec::new(),
        };
        session.class = class_id(&mut self.classes, ExportClass::of(&peer.config, &session));
        peer.session = Some(session);
    }

    /// The session ended: a peer that offered graceful restart keeps its routes,
    /// stale, for its restart time (RFC 4724), when the session ended without a
    /// NOTIFICATION; any other loses them now. (A NOTIFICATION, sent or received,
    /// is covered only when both sides set the N bit, RFC 8538 4; tabby never
    /// sets it. So a hold timer that fires on a silent partition withdraws the
    /// peer's routes at once.)
    pub(super) fn down(&mut self, address: IpAddr, why: &DownReason) {
        let notified = matches!(why, DownReason::Sent(_) | DownReason::Received(_));
        self.end_session(address, why.to_string(), !notified);
    }

    /// Ends the session with `address`; `graceful`: its routes stay stale for the
    /// restart time if it offered graceful restart.
    fn end_session(&mut self, address: IpAddr, reason: String, graceful: bool) {
        let Some(peer) = self.peers.get_mut(&address) else {
            return;
        };
        peer.last_error = Some(reason.clone());
        let Some(session) = peer.session.take() else {
            self.forget_if_dynamic(address);
            return;
        };
        peer.since = self.now;
        self.notices
            .event(super::Notice::PeerDown { address, reason });
        let restart = session
            .negotiated
            .peer_graceful_restart
            .as_ref()
            .map(|gr| Duration::from_secs(gr.restart_time.into()))
            .filter(|time| !time.is_zero() && graceful);
        match restart {
            // RFC 4724: keep forwarding on its routes while it restarts.
            Some(time) => {
                peer.stale_until = Some(self.now + time);
                self.rib.mark_stale(peer.source);
            }
            None => {
                let source = peer.source;
                self.rib.remove_source_paths(source);
                self.forget_if_dynamic(address);
            }
        }
    }

    /// BFD says the path to the peer failed (see `Request::ForwardingDown`).
    pub(super) fn forwarding_down(&mut self, address: IpAddr, graceful: bool) {
        self.forwarding.remove(&address);
        let Some(peer) = self.peers.get(&address) else {
            return;
        };
        if peer.session.is_some() {
            let cease = Notification::cease(CeaseSubcode::BfdDown, Vec::new());
            self.out
                .push(Output::Command(peer.token, Command::Reset(cease)));
            // Its session's own Down event comes later and finds it down already.
            // Graceful restart wins only when configured so (RFC 5882 4.3), although
            // a Cease is sent: the peer learns why, this speaker keeps its routes.
            self.end_session(address, "BFD down".into(), graceful);
        }
        self.hold(address);
        if graceful {
            return;
        }
        let Some(peer) = self.peers.get_mut(&address) else {
            return;
        };
        if peer.stale_until.take().is_some() {
            tracing::info!(peer = %address, "BFD down: stale routes removed at once");
            self.rib.sweep_stale(peer.source);
            self.forget_if_dynamic(address);
        }
    }

    /// Stops a BFD-strict peer's session until BFD is Up again: neither
    /// connecting nor accepting (its routes are as the session's end left them).
    fn hold(&mut self, address: IpAddr) {
        let Some(peer) = self.peers.get_mut(&address) else {
            return;
        };
        if !peer.config.bfd_strict || peer.held {
            return;
        }
        tracing::info!(peer = %address, "BFD strict mode: session held until BFD is Up");
        peer.held = true;
        // What the status shows while held (the Down's cause is in the log).
        peer.last_error = Some(WAITING_FOR_BFD.into());
        self.tokens.remove(&peer.token);
        self.out.push(Output::Command(
            peer.token,
            Command::Stop(WAITING_FOR_BFD.into()),
        ));
    }

    /// BFD is Up with the peer: a held session starts.
    pub(super) fn forwarding_up(&mut self, address: IpAddr) {
        self.forwarding.insert(address);
        let Some(config) = self
            .peers
            .get(&address)
            .filter(|p| p.held)
            .map(|p| p.config.clone())
        else {
            return;
        };
        tracing::info!(peer = %address, "BFD Up: BFD strict session starts");
        let (token, updates, stats) = self.new_session(&config, true);
        if let Some(peer) = self.peers.get_mut(&address) {
            peer.held = false;
            peer.token = token;
            peer.updates = updates;
            peer.stats = stats;
        }
    }

    /// A ROUTE-REFRESH (RFC 2918): a request has everything of its family sent
    /// again, between a beginning and an end marker with enhanced route refresh
    /// (RFC 7313 4.1); the peer's own markers bracket what it sends again, and
    /// what it did not is removed at the end (4.2). Markers of a session without
    /// enhanced route refresh, or of a family it does not carry, are ignored.
    pub(super) fn route_refresh(&mut self, address: IpAddr, refresh: &RouteRefresh) {
        let Some(peer) = self.peers.get_mut(&address) else {
            return;
        };
        let Some(session) = peer.session.as_mut() else {
            return;
        };
        let Some(afi) = Afi::of(refresh.family)
            .filter(|_| session.negotiated.families.contains(&refresh.family))
        else {
            return;
        };
        let enhanced = session.negotiated.enhanced_route_refresh;
        let ipv4 = afi == Afi::Ipv4;
        match refresh.kind {
            RouteRefreshKind::Request => {
                for (slot, prefix) in self.rib.prefixes() {
                    if prefix.addr().is_ipv4() == ipv4 {
                        session.outbox.mark(slot);
                    }
                }
                if enhanced {
                    for due in [&mut session.refresh_begin_due, &mut session.refresh_end_due] {
                        if !due.contains(&afi) {
                            due.push(afi);
                        }
                    }
                }
            }
            RouteRefreshKind::Begin if enhanced => self.rib.begin_refresh(peer.source, ipv4),
            RouteRefreshKind::End if enhanced => {
                self.rib.end_refresh(peer.source, ipv4);
                tracing::debug!(peer = %address, ?afi, "route refresh ended; what was not sent again is gone");
            }
            _ => {}
        }
    }

    /// Resets the session of a peer over its prefix limit and keeps it away for a
    /// while (RFC 4486), dropping its routes.
    pub(super) fn enforce_max_prefixes(&mut self, address: IpAddr) {
        let Some(peer) = self.peers.get(&address) else {
            return;
        };
        let accepted = self.rib.path_count(peer.source);
        let Some(limit) = peer.config.max_prefixes.filter(|&limit| accepted > limit) else {
            return;
        };
        tracing::warn!(peer = %address, accepted, limit, "maximum prefixes exceeded; resetting");
        self.out.push(Output::Command(
            peer.token,
            Command::ResetFor(
                Notification::maximum_prefixes_reached(limit),
                peer.config.max_prefixes_restart,
            ),
        ));
        self.rib.remove_source_paths(peer.source);
    }
}

/// Asks the peer to send its routes again (after an import policy change), or
/// restarts the session when it cannot.
fn refresh(peer: &Peer) -> Vec<Output> {
    let Some(session) = &peer.session else {
        return Vec::new();
    };
    if !session.negotiated.route_refresh {
        let cease = Notification::administrative_shutdown("import policy changed");
        return vec![Output::Command(peer.token, Command::Reset(cease))];
    }
    session
        .negotiated
        .families
        .iter()
        .map(|&family| {
            let refresh = RouteRefresh {
                family,
                kind: RouteRefreshKind::Request,
            };
            Output::Command(peer.token, Command::Send(Message::RouteRefresh(refresh)))
        })
        .collect()
}
