//! The FSM's transitions not covered next to it, one test each, named for what
//! happens (RFC 4271 8.2.2): events in each state, without sockets or clocks.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::config::{OPEN_HOLD_TIME, SessionConfig};
use super::fsm::{DownReason, Input, Output, Session, State, Timer};
use crate::codec::{
    Capability, DecodeError, Family, Message, Notification, Open, Reason, RouteRefresh,
    RouteRefreshKind, Update,
};

const PEER_AS: u32 = 65001;

fn config() -> SessionConfig {
    SessionConfig::new(64512, Ipv4Addr::new(10, 0, 0, 1), Some(PEER_AS))
}

fn peer_open() -> Message {
    Message::Open(Open::new(
        PEER_AS,
        30,
        Ipv4Addr::new(10, 0, 0, 2),
        vec![Capability::FourOctetAs(PEER_AS)],
    ))
}

fn notification_sent(out: &[Output]) -> Option<(u8, u8)> {
    out.iter().find_map(|o| match o {
        Output::Send(Message::Notification(n)) => Some((n.code, n.subcode)),
        _ => None,
    })
}

fn down(out: &[Output]) -> Option<&DownReason> {
    out.iter().find_map(|o| match o {
        Output::Down(reason) => Some(reason),
        _ => None,
    })
}

fn retry(out: &[Output]) -> Option<Duration> {
    out.iter().find_map(|o| match o {
        Output::SetTimer(Timer::ConnectRetry, after) => Some(*after),
        _ => None,
    })
}

fn connecting() -> Session {
    let mut session = Session::new(config());
    session.handle(Input::Start);
    assert_eq!(session.state(), State::Connect);
    session
}

fn open_sent() -> Session {
    let mut session = connecting();
    session.handle(Input::Connected);
    assert_eq!(session.state(), State::OpenSent);
    session
}

fn open_confirm() -> Session {
    let mut session = open_sent();
    session.handle(Input::Message(peer_open()));
    assert_eq!(session.state(), State::OpenConfirm);
    session
}

fn established() -> Session {
    let mut session = open_confirm();
    session.handle(Input::Message(Message::Keepalive));
    assert_eq!(session.state(), State::Established);
    session
}

fn malformed() -> DecodeError {
    DecodeError::reset(3, 1, Vec::new(), Reason::Truncated { field: "test" })
}

#[test]
fn idle_without_start_ignores_connections_messages_and_timers() {
    let mut session = Session::new(config());
    assert_eq!(session.handle(Input::Connected), []);
    assert_eq!(session.handle(Input::Message(Message::Keepalive)), []);
    assert_eq!(session.handle(Input::Expired(Timer::Hold)), []);
    assert_eq!(session.handle(Input::Expired(Timer::ConnectRetry)), []);
    assert_eq!(session.state(), State::Idle);
}

#[test]
fn a_failed_connect_moves_to_active_and_the_retry_timer_connects_again() {
    let mut session = connecting();
    assert_eq!(session.handle(Input::ConnectFailed), []);
    assert_eq!(session.state(), State::Active);
    let out = session.handle(Input::Expired(Timer::ConnectRetry));
    assert!(out.contains(&Output::Connect), "{out:?}");
    assert_eq!(session.state(), State::Connect);
}

#[test]
fn the_retry_timer_in_connect_abandons_the_attempt_and_starts_another() {
    let mut session = connecting();
    let out = session.handle(Input::Expired(Timer::ConnectRetry));
    assert_eq!(out[0], Output::Disconnect);
    assert!(out.contains(&Output::Connect));
    assert_eq!(session.state(), State::Connect);
}

#[test]
fn stop_while_connecting_closes_without_a_notification() {
    let mut session = connecting();
    let out = session.handle(Input::Stop("bye".into()));
    assert_eq!(notification_sent(&out), None);
    assert!(out.contains(&Output::Disconnect));
    assert_eq!(session.state(), State::Idle);
}

#[test]
fn a_connection_accepted_while_idle_after_a_failure_opens_at_once() {
    let mut session = open_sent();
    session.handle(Input::Closed);
    assert_eq!(session.state(), State::Idle);
    let out = session.handle(Input::Connected);
    assert!(matches!(
        out.iter().find(|o| matches!(o, Output::Send(_))),
        Some(Output::Send(Message::Open(_)))
    ));
    assert_eq!(session.state(), State::OpenSent);
}

#[test]
fn a_closed_connection_in_open_sent_retries_without_reporting_down() {
    let mut session = open_sent();
    let out = session.handle(Input::Closed);
    assert_eq!(down(&out), None, "never Established");
    assert!(retry(&out).is_some());
    assert_eq!(session.last_error(), Some(&DownReason::ConnectionLost));
}

#[test]
fn the_hold_timer_in_open_sent_sends_4_0() {
    let mut session = open_sent();
    let out = session.handle(Input::Expired(Timer::Hold));
    assert_eq!(notification_sent(&out), Some((4, 0)));
    assert_eq!(session.state(), State::Idle);
}

#[test]
fn a_notification_in_open_sent_ends_the_attempt_and_is_remembered() {
    let mut session = open_sent();
    let cease = Notification::administrative_shutdown("");
    let out = session.handle(Input::Message(Message::Notification(cease.clone())));
    assert_eq!(notification_sent(&out), None);
    assert_eq!(session.last_error(), Some(&DownReason::Received(cease)));
    assert_eq!(session.state(), State::Idle);
}

#[test]
fn stop_in_open_sent_sends_cease_administrative_shutdown() {
    let mut session = open_sent();
    let out = session.handle(Input::Stop("maintenance".into()));
    assert_eq!(notification_sent(&out), Some((6, 2)));
    assert_eq!(retry(&out), None);
}

#[test]
fn a_malformed_message_in_open_sent_sends_its_notification() {
    let mut session = open_sent();
    let out = session.handle(Input::Malformed(malformed()));
    assert_eq!(notification_sent(&out), Some((3, 1)));
    assert_eq!(session.state(), State::Idle);
}

#[test]
fn the_open_hold_time_is_the_large_value_until_the_open_arrives() {
    let mut session = connecting();
    let out = session.handle(Input::Connected);
    assert!(out.contains(&Output::SetTimer(Timer::Hold, OPEN_HOLD_TIME)));
}

#[test]
fn an_update_in_open_confirm_is_an_fsm_error_5_2() {
    let mut session = open_confirm();
    let out = session.handle(Input::Message(Message::Update(Update::default())));
    assert_eq!(notification_sent(&out), Some((5, 2)));
}

#[test]
fn the_hold_timer_in_open_confirm_sends_4_0() {
    let mut session = open_confirm();
    let out = session.handle(Input::Expired(Timer::Hold));
    assert_eq!(notification_sent(&out), Some((4, 0)));
}

#[test]
fn the_keepalive_timer_in_open_confirm_sends_a_keepalive() {
    let mut session = open_confirm();
    let out = session.handle(Input::Expired(Timer::Keepalive));
    assert_eq!(out[0], Output::Send(Message::Keepalive));
}

#[test]
fn a_notification_or_a_closed_connection_in_open_confirm_goes_idle() {
    let mut session = open_confirm();
    session.handle(Input::Message(Message::Notification(
        Notification::administrative_shutdown(""),
    )));
    assert_eq!(session.state(), State::Idle);
    let mut session = open_confirm();
    let out = session.handle(Input::Closed);
    assert_eq!(down(&out), None);
    assert_eq!(session.state(), State::Idle);
}

#[test]
fn a_keepalive_in_established_restarts_the_hold_timer() {
    let mut session = established();
    let out = session.handle(Input::Message(Message::Keepalive));
    assert_eq!(
        out,
        [Output::SetTimer(Timer::Hold, Duration::from_secs(30))]
    );
}

#[test]
fn a_route_refresh_in_established_reaches_the_routing_layer() {
    let mut session = established();
    let refresh = Message::RouteRefresh(RouteRefresh {
        family: Family::IPV4_UNICAST,
        kind: RouteRefreshKind::Request,
    });
    let out = session.handle(Input::Message(refresh.clone()));
    assert!(out.contains(&Output::Received(refresh)));
}

#[test]
fn a_closed_connection_in_established_reports_down_and_retries() {
    let mut session = established();
    let out = session.handle(Input::Closed);
    assert_eq!(down(&out), Some(&DownReason::ConnectionLost));
    assert_eq!(retry(&out), Some(Duration::from_secs(1)));
}

#[test]
fn a_malformed_message_in_established_sends_its_notification_and_reports_down() {
    let mut session = established();
    let out = session.handle(Input::Malformed(malformed()));
    assert_eq!(notification_sent(&out), Some((3, 1)));
    assert!(matches!(down(&out), Some(DownReason::Sent(_))));
}

#[test]
fn reset_for_a_while_refuses_connections_until_the_wait_is_over() {
    let mut session = established();
    let cease = Notification::maximum_prefixes_reached(0);
    let out = session.handle(Input::ResetFor(cease, Duration::from_secs(60)));
    assert_eq!(notification_sent(&out), Some((6, 1)));
    assert_eq!(
        out.last(),
        Some(&Output::SetTimer(
            Timer::ConnectRetry,
            Duration::from_secs(60)
        ))
    );
    // The peer calling back is turned away, and so is a restart.
    assert_eq!(session.handle(Input::Connected), [Output::Disconnect]);
    assert_eq!(session.handle(Input::Start), []);
    let out = session.handle(Input::Expired(Timer::ConnectRetry));
    assert!(out.contains(&Output::Connect));
    assert_eq!(session.state(), State::Connect);
}

#[test]
fn reset_while_not_connected_sends_nothing_and_waits() {
    let mut session = connecting();
    let cease = Notification::maximum_prefixes_reached(0);
    let out = session.handle(Input::ResetFor(cease, Duration::from_secs(5)));
    assert_eq!(notification_sent(&out), None);
    assert_eq!(session.state(), State::Idle);
    assert_eq!(session.handle(Input::Connected), [Output::Disconnect]);
}

/// The session in OpenConfirm on its own connection, and the peer's OPEN on
/// a second one, from a peer with identifier `peer_id`.
fn collide(peer_id: Ipv4Addr) -> (Session, Vec<Output>) {
    let mut session = Session::new(config());
    session.handle(Input::Start);
    session.handle(Input::Connected);
    session.handle(Input::Message(peer_open()));
    let open = Open::new(PEER_AS, 30, peer_id, vec![Capability::FourOctetAs(PEER_AS)]);
    let out = session.handle(Input::Collision(open));
    (session, out)
}

#[test]
fn a_collision_with_a_higher_identifier_moves_to_the_peers_connection() {
    // Ours is 10.0.0.1: the peer's connection wins.
    let (mut session, out) = collide(Ipv4Addr::new(10, 0, 0, 9));
    let cease = Notification::connection_collision_resolution();
    let adopt = out
        .iter()
        .position(|o| *o == Output::AdoptIncoming)
        .unwrap();
    assert_eq!(
        out[..2],
        [
            Output::Send(Message::Notification(cease)),
            Output::Disconnect
        ],
        "ours closes with Cease/7 first"
    );
    // Then our OPEN and KEEPALIVE on the peer's connection: it answers the
    // OPEN the peer sent there, and no failure was counted.
    let after: Vec<&Message> = out[adopt..]
        .iter()
        .filter_map(|o| match o {
            Output::Send(message) => Some(message),
            _ => None,
        })
        .collect();
    assert!(
        matches!(after[..], [Message::Open(_), Message::Keepalive]),
        "{after:?}"
    );
    assert_eq!(session.state(), State::OpenConfirm);
    assert_eq!(session.last_error(), None);
    let out = session.handle(Input::Message(Message::Keepalive));
    assert!(matches!(out.last(), Some(Output::Up(_))));
}

#[test]
fn a_collision_with_a_lower_identifier_refuses_the_peers_connection() {
    let (session, out) = collide(Ipv4Addr::new(10, 0, 0, 0));
    assert_eq!(
        out,
        [Output::RefuseIncoming(
            Notification::connection_collision_resolution()
        )]
    );
    assert_eq!(session.state(), State::OpenConfirm, "ours carries on");
}

#[test]
fn an_established_session_refuses_a_colliding_connection_whatever_its_identifier() {
    let mut session = established();
    let open = Open::new(PEER_AS, 30, Ipv4Addr::new(10, 0, 0, 200), vec![]);
    let out = session.handle(Input::Collision(open));
    assert!(matches!(out[..], [Output::RefuseIncoming(_)]));
    assert_eq!(session.state(), State::Established);
}
