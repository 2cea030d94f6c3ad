//! The speaker's policy driven through its sans-IO core, without sockets or
//! clocks: graceful restart in both roles, the prefix limit, dynamic neighbours
//! and the connections the listener hands over. Time is whatever the test says.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use tokio::sync::{mpsc, oneshot};

use crate::codec::{
    AsPath, Attributes, Capability, Family, GracefulRestart, Message, Notification, Open, Origin,
    SessionContext, Update, decode_message,
};
use crate::session::{Command, DownReason, Event, GracefulRestartConfig, Outgoing, negotiate};
use crate::transport::TtlPolicy;

use super::config::{ListenRange, PeerConfig, SpeakerConfig};
use super::core::{Core, Input, Output};
use super::hooks::Hooks;
use super::{Notice, PeerStatus, Request};

const AS: u32 = 64512;

fn speaker() -> SpeakerConfig {
    SpeakerConfig::new(AS, Ipv4Addr::new(192, 0, 2, 1))
}

fn host(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, n))
}

fn net(text: &str) -> IpNet {
    text.parse().unwrap()
}

/// The graceful-restart capability a peer offers: `restart_time` seconds, the F
/// bit for IPv4 unicast as given.
fn graceful_restart(restart_time: u16, forwarding: bool) -> Capability {
    Capability::GracefulRestart(GracefulRestart {
        restarting: false,
        notification: false,
        restart_time,
        families: vec![(Family::IPV4_UNICAST, forwarding)],
    })
}

/// A peer of the core under test, seen from the shell's side.
struct Session {
    token: u64,
    address: IpAddr,
    config: crate::session::SessionConfig,
    updates: mpsc::Receiver<Outgoing>,
    context: SessionContext,
}

impl Session {
    /// The session's events come from this peer's OPEN with `capabilities`.
    fn up(&mut self, core: &mut Core, now: Instant, capabilities: Vec<Capability>) -> Vec<Output> {
        let local = self.config.open();
        let mut offered = vec![Capability::FourOctetAs(AS)];
        offered.extend(capabilities);
        let open = Open::new(AS, 90, Ipv4Addr::new(10, 9, 9, self.token as u8), offered);
        let negotiated = negotiate(&self.config, &local, &open).expect("acceptable OPEN");
        self.context = negotiated.context;
        let event = Event::Up {
            negotiated: Box::new(negotiated),
            local: SocketAddr::new(host(1), 179),
            epoch: 1,
        };
        core.handle(now, Input::Sessions(vec![(self.token, event)]))
    }

    fn event(&self, core: &mut Core, now: Instant, event: Event) -> Vec<Output> {
        core.handle(now, Input::Sessions(vec![(self.token, event)]))
    }

    fn announce(&self, core: &mut Core, now: Instant, prefixes: &[&str]) -> Vec<Output> {
        let update = Update {
            attributes: Attributes {
                origin: Some(Origin::Igp),
                as_path: Some(AsPath::default()),
                local_pref: Some(100),
                ..Attributes::default()
            },
            next_hop: match self.address {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            },
            nlri: prefixes
                .iter()
                .map(|p| crate::codec::Nlri::new(net(p)))
                .collect(),
            ..Update::default()
        };
        self.event(core, now, Event::Received(Message::Update(update)))
    }

    fn end_of_rib(&self, core: &mut Core, now: Instant) -> Vec<Output> {
        let update = Update::end_of_rib(crate::codec::Afi::Ipv4);
        self.event(core, now, Event::Received(Message::Update(update)))
    }

    fn down(&self, core: &mut Core, now: Instant) -> Vec<Output> {
        let event = Event::Down(DownReason::ConnectionLost);
        self.event(core, now, event)
    }

    /// What the core queued for the peer so far: announced prefixes and how many
    /// End-of-RIB markers.
    fn received(&mut self) -> (Vec<IpNet>, usize) {
        let mut prefixes = Vec::new();
        let mut end_of_rib = 0;
        while let Ok(chunk) = self.updates.try_recv() {
            let mut bytes = &chunk.bytes[..];
            while let Some((message, len)) = decode_message(bytes, &self.context).unwrap() {
                bytes = &bytes[len..];
                let Message::Update(update) = message else {
                    continue;
                };
                if update.end_of_rib_family().is_some() {
                    end_of_rib += 1;
                }
                prefixes.extend(update.nlri.iter().map(|n| n.prefix));
            }
        }
        (prefixes, end_of_rib)
    }
}

/// Adds `config` and returns its session as the shell would have started it.
fn add(core: &mut Core, now: Instant, config: PeerConfig) -> Session {
    let address = config.address;
    let outputs = core.handle(now, Input::Request(Request::AddPeer(config)));
    session_of(outputs, address)
}

fn session_of(outputs: Vec<Output>, address: IpAddr) -> Session {
    let spawn = outputs
        .into_iter()
        .find_map(|o| match o {
            Output::Spawn(spawn) => Some(spawn),
            _ => None,
        })
        .expect("a session is started");
    Session {
        token: spawn.token,
        address,
        config: spawn.session,
        updates: spawn.updates,
        context: SessionContext::default(),
    }
}

fn status(core: &mut Core, now: Instant) -> Vec<PeerStatus> {
    let (reply, answer) = oneshot::channel();
    core.handle(now, Input::Request(Request::Status(reply)));
    answer.blocking_recv().unwrap()
}

fn routes(core: &mut Core, now: Instant) -> Vec<(IpNet, bool)> {
    let (reply, answer) = oneshot::channel();
    core.handle(now, Input::Request(Request::Routes(reply)));
    answer
        .blocking_recv()
        .unwrap()
        .into_iter()
        .flat_map(|(prefix, paths)| paths.into_iter().map(move |p| (prefix, p.stale)))
        .collect()
}

fn deadline(outputs: &[Output]) -> Option<Option<Instant>> {
    outputs.iter().find_map(|o| match o {
        Output::Deadline(at) => Some(*at),
        _ => None,
    })
}

fn notices(core: &mut Core) -> Vec<Notice> {
    std::iter::from_fn(|| core.next_notice()).collect()
}

// Graceful restart, this speaker as the helper (RFC 4724 4.2).

#[test]
fn a_restarting_peers_routes_stay_stale_until_its_restart_time_passes() {
    let t0 = Instant::now();
    let mut core = Core::new(speaker(), Hooks::default(), t0);
    let mut peer = add(&mut core, t0, PeerConfig::new(host(2), Some(AS)));
    peer.up(&mut core, t0, vec![graceful_restart(120, true)]);
    peer.announce(&mut core, t0, &["10.1.0.0/24"]);
    let down_at = t0 + Duration::from_secs(5);
    let out = peer.down(&mut core, down_at);
    assert_eq!(
        deadline(&out),
        Some(Some(down_at + Duration::from_secs(120)))
    );
    assert_eq!(routes(&mut core, down_at), [(net("10.1.0.0/24"), true)]);
    assert!(status(&mut core, down_at)[0].restarting);
    // A second early: still there.
    let early = down_at + Duration::from_secs(119);
    core.handle(early, Input::Timer);
    assert_eq!(routes(&mut core, early), [(net("10.1.0.0/24"), true)]);
    let late = down_at + Duration::from_secs(120);
    let out = core.handle(late, Input::Timer);
    assert_eq!(deadline(&out), Some(None));
    assert_eq!(routes(&mut core, late), []);
}

/// Graceful restart covers a session that ended without a NOTIFICATION (RFC 4724
/// 4.2). One ended by a NOTIFICATION, sent or received (a hold timer that fired
/// on a silent partition), is an ordinary end (RFC 8538 4: tabby never sets the N
/// bit): its routes go at once, or a partitioned node's block stays routed to it
/// for the whole restart time.
#[test]
fn fault_a_session_ended_by_a_notification_loses_its_routes_at_once_despite_graceful_restart() {
    let t0 = Instant::now();
    for reason in [
        DownReason::Sent(Notification::hold_timer_expired()),
        DownReason::Received(Notification::hold_timer_expired()),
    ] {
        let mut core = Core::new(speaker(), Hooks::default(), t0);
        let mut peer = add(&mut core, t0, PeerConfig::new(host(2), Some(AS)));
        peer.up(&mut core, t0, vec![graceful_restart(120, true)]);
        peer.announce(&mut core, t0, &["10.1.0.0/24"]);
        let out = peer.event(&mut core, t0, Event::Down(reason.clone()));
        assert_eq!(deadline(&out), None, "{reason}: no restart timer");
        assert_eq!(routes(&mut core, t0), [], "{reason}");
    }
}

#[test]
fn a_restarted_peers_end_of_rib_sweeps_the_stale_routes_it_did_not_resend() {
    let t0 = Instant::now();
    let mut core = Core::new(speaker(), Hooks::default(), t0);
    let mut peer = add(&mut core, t0, PeerConfig::new(host(2), Some(AS)));
    peer.up(&mut core, t0, vec![graceful_restart(120, true)]);
    peer.announce(&mut core, t0, &["10.1.0.0/24", "10.2.0.0/24"]);
    peer.down(&mut core, t0);
    let back = t0 + Duration::from_secs(30);
    peer.up(&mut core, back, vec![graceful_restart(120, true)]);
    peer.announce(&mut core, back, &["10.1.0.0/24"]);
    assert_eq!(routes(&mut core, back).len(), 2, "kept until End-of-RIB");
    let out = peer.end_of_rib(&mut core, back);
    assert_eq!(deadline(&out), Some(None), "no sweep is due any more");
    assert_eq!(routes(&mut core, back), [(net("10.1.0.0/24"), false)]);
}

#[test]
fn a_peer_back_without_its_forwarding_state_loses_its_stale_routes_at_once() {
    let t0 = Instant::now();
    let mut core = Core::new(speaker(), Hooks::default(), t0);
    let mut peer = add(&mut core, t0, PeerConfig::new(host(2), Some(AS)));
    peer.up(&mut core, t0, vec![graceful_restart(120, true)]);
    peer.announce(&mut core, t0, &["10.1.0.0/24"]);
    peer.down(&mut core, t0);
    peer.up(&mut core, t0, vec![graceful_restart(120, false)]);
    assert_eq!(routes(&mut core, t0), []);
}

#[test]
fn a_peer_without_graceful_restart_loses_its_routes_when_its_session_ends() {
    let t0 = Instant::now();
    let mut core = Core::new(speaker(), Hooks::default(), t0);
    let mut peer = add(&mut core, t0, PeerConfig::new(host(2), Some(AS)));
    peer.up(&mut core, t0, Vec::new());
    peer.announce(&mut core, t0, &["10.1.0.0/24"]);
    let out = peer.down(&mut core, t0);
    assert_eq!(deadline(&out), None, "no timer for it");
    assert_eq!(routes(&mut core, t0), []);
    assert!(matches!(
        notices(&mut core).last(),
        Some(Notice::PeerDown { .. })
    ));
}

// BFD (RFC 5882): a forwarding failure the owner learned from BFD.

/// A core with one peer up with graceful restart (120 s, forwarding kept) that
/// announced 10.1.0.0/24.
fn restartable_peer(t0: Instant) -> (Core, Session) {
    let mut core = Core::new(speaker(), Hooks::default(), t0);
    let mut peer = add(&mut core, t0, PeerConfig::new(host(2), Some(AS)));
    peer.up(&mut core, t0, vec![graceful_restart(120, true)]);
    peer.announce(&mut core, t0, &["10.1.0.0/24"]);
    (core, peer)
}

fn forwarding_down(core: &mut Core, now: Instant, address: IpAddr, graceful: bool) -> Vec<Output> {
    let request = Request::ForwardingDown { address, graceful };
    core.handle(now, Input::Request(request))
}

#[test]
fn bfd_down_resets_the_session_with_cease_bfd_down_and_its_routes_go_at_once_despite_graceful_restart()
 {
    let t0 = Instant::now();
    let (mut core, peer) = restartable_peer(t0);
    notices(&mut core);
    let out = forwarding_down(&mut core, t0, host(2), false);
    let reset = out.iter().find_map(|o| match o {
        Output::Command(token, Command::Reset(n)) if *token == peer.token => Some(n.clone()),
        _ => None,
    });
    assert_eq!(
        reset,
        Some(Notification::cease(
            crate::codec::CeaseSubcode::BfdDown,
            Vec::new()
        ))
    );
    assert_eq!(deadline(&out), None, "no stale-route timer");
    assert_eq!(routes(&mut core, t0), []);
    assert!(notices(&mut core).contains(&Notice::PeerDown {
        address: host(2),
        reason: "BFD down".into()
    }));
    // The session's own Down event follows and changes nothing.
    peer.down(&mut core, t0);
    assert_eq!(routes(&mut core, t0), []);
    assert!(!status(&mut core, t0)[0].restarting);
}

#[test]
fn bfd_down_with_graceful_restart_kept_leaves_the_routes_stale_for_the_restart_time() {
    let t0 = Instant::now();
    let (mut core, _peer) = restartable_peer(t0);
    let out = forwarding_down(&mut core, t0, host(2), true);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Command(_, Command::Reset(_))))
    );
    assert_eq!(deadline(&out), Some(Some(t0 + Duration::from_secs(120))));
    assert_eq!(routes(&mut core, t0), [(net("10.1.0.0/24"), true)]);
    assert!(status(&mut core, t0)[0].restarting);
}

#[test]
fn bfd_down_after_the_connection_already_dropped_ends_the_restart_under_way() {
    // A killed agent: its TCP connection closes first, BFD times out after.
    let t0 = Instant::now();
    let (mut core, peer) = restartable_peer(t0);
    peer.down(&mut core, t0);
    assert_eq!(routes(&mut core, t0), [(net("10.1.0.0/24"), true)]);
    let later = t0 + Duration::from_millis(900);
    let kept = forwarding_down(&mut core, later, host(2), true);
    assert!(kept.is_empty(), "graceful: the restart goes on: {kept:?}");
    assert_eq!(routes(&mut core, later), [(net("10.1.0.0/24"), true)]);
    let out = forwarding_down(&mut core, later, host(2), false);
    assert_eq!(deadline(&out), Some(None), "the sweep timer is gone");
    assert_eq!(routes(&mut core, later), []);
    assert!(!status(&mut core, later)[0].restarting);
}

#[test]
fn bfd_down_for_a_peer_without_a_session_or_unknown_changes_nothing() {
    let t0 = Instant::now();
    let mut core = Core::new(speaker(), Hooks::default(), t0);
    add(&mut core, t0, PeerConfig::new(host(2), Some(AS)));
    assert!(forwarding_down(&mut core, t0, host(2), false).is_empty());
    assert!(forwarding_down(&mut core, t0, host(9), false).is_empty());
}

// Graceful restart, this speaker restarting (RFC 4724 4.1).

fn restarting(deferral: Duration) -> SpeakerConfig {
    SpeakerConfig {
        graceful_restart: Some(GracefulRestartConfig {
            restart_time: 120,
            restarting: true,
            forwarding_preserved: true,
        }),
        selection_deferral: deferral,
        ..speaker()
    }
}

#[test]
fn a_restarting_speaker_holds_its_table_back_until_every_configured_peer_sent_end_of_rib() {
    let t0 = Instant::now();
    let mut core = Core::new(restarting(Duration::from_secs(30)), Hooks::default(), t0);
    let out = core.handle(t0, Input::Request(Request::Originate(net("10.244.0.0/26"))));
    assert_eq!(deadline(&out), Some(Some(t0 + Duration::from_secs(30))));
    let mut a = add(&mut core, t0, PeerConfig::new(host(2), Some(AS)));
    let mut b = add(&mut core, t0, PeerConfig::new(host(3), Some(AS)));
    a.up(&mut core, t0, vec![graceful_restart(120, true)]);
    a.announce(&mut core, t0, &["10.1.0.0/24"]);
    a.end_of_rib(&mut core, t0);
    assert_eq!(a.received(), (vec![], 0), "nothing before b's End-of-RIB");
    assert!(
        notices(&mut core).is_empty(),
        "the owner is not told either"
    );
    b.up(&mut core, t0, vec![graceful_restart(120, true)]);
    b.announce(&mut core, t0, &["10.2.0.0/24"]);
    assert_eq!(b.received(), (vec![], 0));
    let out = b.end_of_rib(&mut core, t0);
    assert_eq!(deadline(&out), Some(None), "the deferral is over");
    // Both get the table (iBGP peers: only what this speaker originates), then
    // End-of-RIB.
    assert_eq!(a.received(), (vec![net("10.244.0.0/26")], 1));
    assert_eq!(b.received(), (vec![net("10.244.0.0/26")], 1));
    assert!(!notices(&mut core).is_empty());
}

#[test]
fn the_deferral_ends_at_its_bound_without_every_end_of_rib() {
    let t0 = Instant::now();
    let bound = Duration::from_millis(800);
    let mut core = Core::new(restarting(bound), Hooks::default(), t0);
    core.handle(t0, Input::Request(Request::Originate(net("10.244.0.0/26"))));
    let mut a = add(&mut core, t0, PeerConfig::new(host(2), Some(AS)));
    a.up(&mut core, t0, vec![graceful_restart(120, true)]);
    // b never comes up.
    add(&mut core, t0, PeerConfig::new(host(3), Some(AS)));
    core.handle(t0 + bound - Duration::from_millis(1), Input::Timer);
    assert_eq!(a.received(), (vec![], 0), "held back until the bound");
    let out = core.handle(t0 + bound, Input::Timer);
    assert_eq!(deadline(&out), Some(None));
    assert_eq!(a.received(), (vec![net("10.244.0.0/26")], 1));
}

// The prefix limit (RFC 4486).

#[test]
fn a_peer_over_its_prefix_limit_is_reset_kept_away_and_loses_its_routes() {
    let t0 = Instant::now();
    let mut core = Core::new(speaker(), Hooks::default(), t0);
    let config = PeerConfig {
        max_prefixes: Some(2),
        max_prefixes_restart: Duration::from_secs(60),
        ..PeerConfig::new(host(2), Some(AS))
    };
    let mut peer = add(&mut core, t0, config);
    peer.up(&mut core, t0, Vec::new());
    let out = peer.announce(&mut core, t0, &["10.1.0.0/24", "10.2.0.0/24"]);
    assert!(
        !out.iter().any(|o| matches!(o, Output::Command(..))),
        "at the limit"
    );
    let out = peer.announce(&mut core, t0, &["10.3.0.0/24"]);
    let reset = out.iter().find_map(|o| match o {
        Output::Command(token, Command::ResetFor(notification, wait)) => {
            Some((*token, notification.clone(), *wait))
        }
        _ => None,
    });
    assert_eq!(
        reset,
        Some((
            peer.token,
            Notification::maximum_prefixes_reached(2),
            Duration::from_secs(60)
        ))
    );
    assert_eq!(
        Notification::maximum_prefixes_reached(2).data,
        [0, 1, 1, 0, 0, 0, 2],
        "AFI, SAFI and the limit"
    );
    assert_eq!(routes(&mut core, t0), []);
}

// Dynamic neighbours and accepted connections.

fn with_range(max_sessions: usize) -> SpeakerConfig {
    let template = PeerConfig {
        ttl: TtlPolicy::Hops(64),
        md5_key: Some(b"secret".to_vec().into()),
        ..PeerConfig::new(host(1), Some(AS))
    };
    SpeakerConfig {
        listen_ranges: vec![ListenRange {
            prefix: net("10.0.4.0/24"),
            max_sessions,
            template,
        }],
        ..speaker()
    }
}

#[test]
fn a_peer_that_reads_nothing_shows_its_updates_queued_then_its_backlog_growing() {
    let t0 = Instant::now();
    let mut core = Core::new(speaker(), Hooks::default(), t0);
    let mut peer = add(&mut core, t0, PeerConfig::new(host(2), Some(AS)));
    peer.up(&mut core, t0, Vec::new());
    peer.received();
    // Each origination is flushed at once, a chunk each, until the queue is full.
    for i in 0..10 {
        let prefix = net(&format!("10.9.{i}.0/24"));
        core.handle(t0, Input::Request(Request::Originate(prefix)));
    }
    let shown = &status(&mut core, t0)[0];
    let queue = crate::session::UPDATE_QUEUE;
    assert_eq!(
        (shown.export_queued, shown.export_backlog),
        (queue, 10 - queue)
    );
    let (sent, _) = peer.received();
    assert_eq!(sent.len(), queue);
    core.handle(t0, Input::Sessions(Vec::new()));
    let (sent, _) = peer.received();
    assert_eq!(
        sent.len(),
        10 - queue,
        "the backlog goes once there is room"
    );
    let shown = &status(&mut core, t0)[0];
    assert_eq!((shown.export_queued, shown.export_backlog), (0, 0));
}

// BFD strict mode: a peer's session runs only while BFD is Up.

fn strict(n: u8) -> PeerConfig {
    PeerConfig {
        bfd_strict: true,
        ..PeerConfig::new(host(n), Some(AS))
    }
}

fn forwarding_up(core: &mut Core, now: Instant, address: IpAddr) -> Vec<Output> {
    core.handle(now, Input::Request(Request::ForwardingUp(address)))
}

fn spawned(outputs: &[Output]) -> bool {
    outputs.iter().any(|o| matches!(o, Output::Spawn(_)))
}

#[test]
fn a_bfd_strict_peer_gets_no_session_and_no_connection_until_bfd_is_up() {
    let t0 = Instant::now();
    let mut core = Core::new(speaker(), Hooks::default(), t0);
    let out = core.handle(t0, Input::Request(Request::AddPeer(strict(2))));
    assert!(!spawned(&out), "held: {out:?}");
    let out = connection(&mut core, t0, "192.0.2.2");
    assert!(matches!(out[..], [Output::Refuse]), "refused: {out:?}");
    let shown = &status(&mut core, t0)[0];
    assert!(!shown.established);
    assert_eq!(
        shown.info.as_deref(),
        Some("waiting for BFD Up (strict mode)")
    );
    let mut peer = session_of(forwarding_up(&mut core, t0, host(2)), host(2));
    assert!(accepted(&connection(&mut core, t0, "192.0.2.2")).is_some());
    peer.up(&mut core, t0, Vec::new());
    peer.announce(&mut core, t0, &["10.1.0.0/24"]);
    assert_eq!(routes(&mut core, t0), [(net("10.1.0.0/24"), false)]);
    assert!(
        !spawned(&forwarding_up(&mut core, t0, host(2))),
        "a second Up changes nothing"
    );
}

#[test]
fn a_bfd_strict_peer_whose_bfd_was_up_first_starts_at_once_and_is_held_again_after_bfd_down() {
    let t0 = Instant::now();
    let mut core = Core::new(speaker(), Hooks::default(), t0);
    // BFD may come Up before the owner adds the peer.
    forwarding_up(&mut core, t0, host(2));
    let mut peer = add(&mut core, t0, strict(2));
    peer.up(&mut core, t0, vec![graceful_restart(120, true)]);
    peer.announce(&mut core, t0, &["10.1.0.0/24"]);
    let out = forwarding_down(&mut core, t0, host(2), false);
    let commands: Vec<&Command> = out
        .iter()
        .filter_map(|o| match o {
            Output::Command(token, command) if *token == peer.token => Some(command),
            _ => None,
        })
        .collect();
    assert!(
        matches!(commands[..], [Command::Reset(_), Command::Stop(_)]),
        "Cease/BFD Down, then no reconnecting: {commands:?}"
    );
    assert_eq!(routes(&mut core, t0), []);
    // The stopped session's own Down event finds nothing to do.
    assert!(!spawned(&peer.down(&mut core, t0)));
    let out = connection(&mut core, t0, "192.0.2.2");
    assert!(matches!(out[..], [Output::Refuse]), "held again: {out:?}");
    assert_eq!(
        status(&mut core, t0)[0].info.as_deref(),
        Some("waiting for BFD Up (strict mode)")
    );
    let again = session_of(forwarding_up(&mut core, t0, host(2)), host(2));
    assert_ne!(again.token, peer.token, "a new session");
    assert_eq!(
        accepted(&connection(&mut core, t0, "192.0.2.2")).map(|(t, _)| t),
        Some(again.token)
    );
}

#[test]
fn a_peer_without_strict_mode_runs_its_session_whatever_bfd_says() {
    let t0 = Instant::now();
    let mut core = Core::new(speaker(), Hooks::default(), t0);
    let peer = add(&mut core, t0, PeerConfig::new(host(2), Some(AS)));
    let out = forwarding_down(&mut core, t0, host(2), false);
    assert!(out.is_empty(), "not held: {out:?}");
    assert_eq!(
        accepted(&connection(&mut core, t0, "192.0.2.2")).map(|(t, _)| t),
        Some(peer.token)
    );
}

fn connection(core: &mut Core, now: Instant, from: &str) -> Vec<Output> {
    core.handle(now, Input::Connection(from.parse().unwrap()))
}

fn accepted(outputs: &[Output]) -> Option<(u64, TtlPolicy)> {
    outputs.iter().find_map(|o| match o {
        Output::Accept { token, ttl } => Some((*token, *ttl)),
        _ => None,
    })
}

#[test]
fn a_listen_range_takes_dynamic_neighbours_up_to_its_cap_and_refuses_strangers() {
    let t0 = Instant::now();
    let mut core = Core::new(with_range(2), Hooks::default(), t0);
    let out = core.handle(t0, Input::Start);
    assert!(out.iter().any(|o| matches!(
        o,
        Output::ListenerKey { peers, key } if *peers == net("10.0.4.0/24") && key.as_bytes() == b"secret"
    )));
    for from in ["10.0.4.2", "10.0.4.3"] {
        let out = connection(&mut core, t0, from);
        let spawned = out
            .iter()
            .any(|o| matches!(o, Output::Spawn(s) if s.session.passive));
        assert!(spawned, "a passive session for {from}");
        assert_eq!(
            accepted(&out).map(|(_, ttl)| ttl),
            Some(TtlPolicy::Hops(64))
        );
    }
    let out = connection(&mut core, t0, "10.0.4.4");
    assert!(matches!(out[..], [Output::Refuse]), "over the cap: {out:?}");
    let out = connection(&mut core, t0, "10.9.0.1");
    assert!(matches!(out[..], [Output::Refuse]), "outside every range");
    assert_eq!(status(&mut core, t0).len(), 2);
}

#[test]
fn a_dynamic_neighbour_is_forgotten_when_its_session_ends_and_frees_its_place() {
    let t0 = Instant::now();
    let mut core = Core::new(with_range(1), Hooks::default(), t0);
    let out = connection(&mut core, t0, "10.0.4.2");
    let mut peer = session_of(out, host(2));
    peer.up(&mut core, t0, Vec::new());
    let out = peer.down(&mut core, t0);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Command(token, Command::Stop(_)) if *token == peer.token))
    );
    assert!(status(&mut core, t0).is_empty());
    assert!(accepted(&connection(&mut core, t0, "10.0.4.3")).is_some());
}

#[test]
fn a_dynamic_neighbour_that_restarts_stays_until_its_restart_time_passes() {
    let t0 = Instant::now();
    let mut core = Core::new(with_range(1), Hooks::default(), t0);
    let mut peer = session_of(connection(&mut core, t0, "10.0.4.2"), host(2));
    peer.up(&mut core, t0, vec![graceful_restart(30, true)]);
    peer.down(&mut core, t0);
    assert_eq!(status(&mut core, t0).len(), 1, "kept while restarting");
    let out = core.handle(t0 + Duration::from_secs(30), Input::Timer);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Command(_, Command::Stop(_))))
    );
    assert!(status(&mut core, t0).is_empty());
}

#[test]
fn a_configured_peers_connection_goes_to_its_own_session_with_its_ttl() {
    let t0 = Instant::now();
    let mut core = Core::new(speaker(), Hooks::default(), t0);
    let config = PeerConfig {
        passive: true,
        ttl: TtlPolicy::Security { hops: 1 },
        ..PeerConfig::new(host(2), Some(AS))
    };
    let peer = add(&mut core, t0, config);
    let out = connection(&mut core, t0, "192.0.2.2");
    assert_eq!(
        accepted(&out),
        Some((peer.token, TtlPolicy::Security { hops: 1 }))
    );
    // IPv4 over an IPv6 listener arrives mapped.
    let out = connection(&mut core, t0, "::ffff:192.0.2.2");
    assert_eq!(accepted(&out).map(|(token, _)| token), Some(peer.token));
}

#[test]
fn a_removed_listen_range_stops_its_dynamic_neighbours_only() {
    let t0 = Instant::now();
    let mut core = Core::new(with_range(4), Hooks::default(), t0);
    let dynamic = session_of(
        connection(&mut core, t0, "10.0.4.2"),
        "10.0.4.2".parse().unwrap(),
    );
    let configured = add(&mut core, t0, PeerConfig::new(host(2), Some(AS)));
    let out = core.handle(t0, Input::Request(Request::SetListenRanges(Vec::new())));
    let stopped: Vec<u64> = out
        .iter()
        .filter_map(|o| match o {
            Output::Command(token, Command::Stop(_)) => Some(*token),
            _ => None,
        })
        .collect();
    assert_eq!(stopped, [dynamic.token]);
    assert_eq!(status(&mut core, t0)[0].address, configured.address);
}

#[test]
fn status_reports_uptime_from_the_time_the_session_came_up() {
    let t0 = Instant::now();
    let mut core = Core::new(speaker(), Hooks::default(), t0);
    let mut peer = add(&mut core, t0, PeerConfig::new(host(2), Some(AS)));
    assert_eq!(status(&mut core, t0)[0].uptime, None);
    peer.up(&mut core, t0 + Duration::from_secs(2), Vec::new());
    let later = t0 + Duration::from_secs(12);
    assert_eq!(
        status(&mut core, later)[0].uptime,
        Some(Duration::from_secs(10))
    );
}

#[test]
fn a_shutdown_stops_every_session_and_exits() {
    let t0 = Instant::now();
    let mut core = Core::new(speaker(), Hooks::default(), t0);
    let a = add(&mut core, t0, PeerConfig::new(host(2), Some(AS)));
    let b = add(&mut core, t0, PeerConfig::new(host(3), Some(AS)));
    let out = core.handle(t0, Input::Request(Request::Shutdown("bye".into())));
    let mut stopped: Vec<u64> = out
        .iter()
        .filter_map(|o| match o {
            Output::Command(token, Command::Stop(message)) if message == "bye" => Some(*token),
            _ => None,
        })
        .collect();
    stopped.sort_unstable();
    assert_eq!(stopped, [a.token, b.token]);
    assert!(matches!(out.last(), Some(Output::Exit)));
}
