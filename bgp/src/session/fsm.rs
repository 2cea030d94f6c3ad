//! The session state machine of RFC 4271 section 8, without I/O: inputs in (TCP
//! events, decoded messages, timer expiries, admin commands), outputs out (connect,
//! send, timers to set, session up and down). The driver owns the socket and clocks.

use std::fmt;
use std::time::Duration;

use crate::codec::{DecodeError, FsmSubcode, Message, Notification, Open};

use super::collision::keep_incoming;
use super::config::{OPEN_HOLD_TIME, SessionConfig};
use super::negotiate::{Negotiated, negotiate};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// Between connection attempts, and the back-off after a failure.
    ConnectRetry,
    Hold,
    Keepalive,
}

// Most inputs are messages, mostly UPDATEs (see `Message`): boxing would cost an
// allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Start the session (and restart it automatically after failures).
    Start,
    /// Stop it: Cease/Administrative Shutdown with this RFC 9003 message.
    Stop(String),
    /// A TCP connection to the peer is up, ours or accepted.
    Connected,
    ConnectFailed,
    /// The peer closed or reset the connection.
    Closed,
    /// The peer opened a second connection while this one is opening, and sent
    /// this OPEN on it: a collision to resolve (RFC 4271 6.8, RFC 6286 2.3).
    Collision(Open),
    Message(Message),
    /// A message that resets the session (RFC 7606 session-reset outcome).
    Malformed(DecodeError),
    /// Reset the session with this NOTIFICATION, then back off before
    /// reconnecting as after any failure.
    Reset(Notification),
    /// Reset the session with this NOTIFICATION (say, Cease/Maximum Number of
    /// Prefixes Reached, RFC 4486), then neither connect nor accept a connection
    /// for this long.
    ResetFor(Notification, Duration),
    Expired(Timer),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Open a TCP connection to the peer.
    Connect,
    /// Close the connection (after sending what precedes this output).
    Disconnect,
    Send(Message),
    SetTimer(Timer, Duration),
    CancelTimer(Timer),
    /// The session is Established.
    Up(Box<Negotiated>),
    /// The Established session ended.
    Down(DownReason),
    /// An UPDATE or ROUTE-REFRESH for the routing layer.
    Received(Message),
    /// Collision resolution kept the peer's connection: carry on with it (this
    /// one was closed by the outputs before). The outputs after this one are for it.
    AdoptIncoming,
    /// Collision resolution kept this connection: send this NOTIFICATION on the
    /// peer's and close it.
    RefuseIncoming(Notification),
}

/// Why a session ended, in the words an operator reads in `node status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    Stopped,
    ConnectionLost,
    Sent(Notification),
    Received(Notification),
}

impl fmt::Display for DownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownReason::Stopped => f.write_str("administratively stopped"),
            DownReason::ConnectionLost => f.write_str("connection closed by peer"),
            DownReason::Sent(n) => write!(f, "sent NOTIFICATION {}", describe(n)),
            DownReason::Received(n) => write!(f, "received NOTIFICATION {}", describe(n)),
        }
    }
}

fn describe(n: &Notification) -> String {
    match n.shutdown_communication() {
        Some(text) if !text.is_empty() => format!("{}/{} \"{text}\"", n.code, n.subcode),
        _ => format!("{}/{}", n.code, n.subcode),
    }
}

/// One session with one peer.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    local_open: Open,
    state: State,
    negotiated: Option<Negotiated>,
    /// Restart automatically after a failure.
    started: bool,
    /// The next back-off before reconnecting.
    retry: Duration,
    /// Refuse connections until the ConnectRetry timer fires (after `ResetFor`).
    suspended: bool,
    last_error: Option<DownReason>,
}

impl Session {
    pub fn new(config: SessionConfig) -> Self {
        Self {
            local_open: config.open(),
            retry: config.connect_retry,
            config,
            state: State::Idle,
            negotiated: None,
            started: false,
            suspended: false,
            last_error: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// What was agreed, while OpenConfirm or Established.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// Why the session last failed or ended, for status output.
    pub fn last_error(&self) -> Option<&DownReason> {
        self.last_error.as_ref()
    }

    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Start => self.start(&mut out),
            Input::Stop(message) => self.stop(&message, &mut out),
            Input::Connected => self.connected(&mut out),
            Input::ConnectFailed => {
                if self.state == State::Connect {
                    // The ConnectRetry timer still runs and tries again.
                    self.state = State::Active;
                }
            }
            Input::Closed => {
                if self.connected_state() {
                    self.fail(None, DownReason::ConnectionLost, &mut out);
                }
            }
            Input::Collision(open) => self.collision(open, &mut out),
            Input::Message(message) => self.message(message, &mut out),
            Input::Malformed(error) => {
                if self.connected_state() {
                    let notification = error.notification;
                    self.fail(
                        Some(notification.clone()),
                        DownReason::Sent(notification),
                        &mut out,
                    );
                }
            }
            Input::Reset(notification) => {
                if self.connected_state() {
                    self.fail(
                        Some(notification.clone()),
                        DownReason::Sent(notification),
                        &mut out,
                    );
                }
            }
            Input::ResetFor(notification, wait) => {
                if self.connected_state() {
                    self.fail(
                        Some(notification.clone()),
                        DownReason::Sent(notification),
                        &mut out,
                    );
                }
                if self.started {
                    self.suspended = true;
                    self.state = State::Idle;
                    out.push(Output::SetTimer(Timer::ConnectRetry, wait));
                }
            }
            Input::Expired(timer) => self.expired(timer, &mut out),
        }
        out
    }

    fn connected_state(&self) -> bool {
        matches!(
            self.state,
            State::OpenSent | State::OpenConfirm | State::Established
        )
    }

    fn start(&mut self, out: &mut Vec<Output>) {
        self.started = true;
        if self.state == State::Idle && !self.suspended {
            self.begin(out);
        }
    }

    /// Idle to Connect (active) or Active (passive).
    fn begin(&mut self, out: &mut Vec<Output>) {
        if self.config.passive {
            self.state = State::Active;
        } else {
            self.state = State::Connect;
            out.push(Output::Connect);
            out.push(Output::SetTimer(Timer::ConnectRetry, self.retry));
        }
    }

    fn stop(&mut self, message: &str, out: &mut Vec<Output>) {
        self.started = false;
        self.suspended = false;
        self.retry = self.config.connect_retry;
        if self.connected_state() {
            out.push(Output::Send(Message::Notification(
                Notification::administrative_shutdown(message),
            )));
        }
        if self.state != State::Idle {
            out.push(Output::Disconnect);
        }
        self.go_idle(DownReason::Stopped, out);
        out.push(Output::CancelTimer(Timer::ConnectRetry));
    }

    fn connected(&mut self, out: &mut Vec<Output>) {
        if self.suspended {
            out.push(Output::Disconnect);
            return;
        }
        let accepting = matches!(self.state, State::Connect | State::Active)
            || (self.state == State::Idle && self.started);
        if !accepting {
            // A second connection while one is open is the driver's collision to
            // resolve (RFC 4271 6.8) before it reaches this session.
            return;
        }
        out.push(Output::CancelTimer(Timer::ConnectRetry));
        out.push(Output::Send(Message::Open(self.local_open.clone())));
        out.push(Output::SetTimer(Timer::Hold, OPEN_HOLD_TIME));
        self.state = State::OpenSent;
    }

    fn message(&mut self, message: Message, out: &mut Vec<Output>) {
        match (self.state, message) {
            (
                State::OpenSent | State::OpenConfirm | State::Established,
                Message::Notification(n),
            ) => {
                self.fail(None, DownReason::Received(n), out);
            }
            (State::OpenSent, Message::Open(open)) => {
                match negotiate(&self.config, &self.local_open, &open) {
                    Ok(negotiated) => self.open_confirm(negotiated, out),
                    Err(n) => self.fail(Some(n.clone()), DownReason::Sent(n), out),
                }
            }
            (State::OpenConfirm, Message::Keepalive) => {
                self.state = State::Established;
                self.retry = self.config.connect_retry;
                self.restart_hold(out);
                let negotiated = self.negotiated.clone().expect("negotiated in OpenSent");
                out.push(Output::Up(Box::new(negotiated)));
            }
            (State::Established, Message::Keepalive) => self.restart_hold(out),
            (State::Established, message @ (Message::Update(_) | Message::RouteRefresh(_))) => {
                self.restart_hold(out);
                out.push(Output::Received(message));
            }
            (State::OpenSent, _) => self.unexpected(FsmSubcode::UnexpectedInOpenSent, out),
            (State::OpenConfirm, _) => self.unexpected(FsmSubcode::UnexpectedInOpenConfirm, out),
            (State::Established, _) => self.unexpected(FsmSubcode::UnexpectedInEstablished, out),
            // Without a connection there is nothing to receive from.
            (State::Idle | State::Connect | State::Active, _) => {}
        }
    }

    /// Keeps one of the two connections: the one initiated by the speaker with the
    /// higher BGP Identifier (or AS). An Established session always stays.
    fn collision(&mut self, open: Open, out: &mut Vec<Output>) {
        let cease = Notification::connection_collision_resolution();
        let opening = matches!(self.state, State::OpenSent | State::OpenConfirm);
        let config = &self.config;
        if !opening || !keep_incoming(config.router_id, config.local_as, open.bgp_id, open.asn()) {
            out.push(Output::RefuseIncoming(cease));
            return;
        }
        // Ours closes with the Cease; the session starts over on the peer's
        // connection without counting a failure, and answers the OPEN it sent.
        out.push(Output::Send(Message::Notification(cease)));
        out.push(Output::Disconnect);
        out.push(Output::CancelTimer(Timer::Hold));
        out.push(Output::CancelTimer(Timer::Keepalive));
        out.push(Output::AdoptIncoming);
        self.negotiated = None;
        self.state = State::Active;
        self.connected(out);
        self.message(Message::Open(open), out);
    }

    fn open_confirm(&mut self, negotiated: Negotiated, out: &mut Vec<Output>) {
        out.push(Output::Send(Message::Keepalive));
        if negotiated.hold_time.is_zero() {
            out.push(Output::CancelTimer(Timer::Hold));
        } else {
            out.push(Output::SetTimer(Timer::Hold, negotiated.hold_time));
            out.push(Output::SetTimer(Timer::Keepalive, negotiated.keepalive));
        }
        self.negotiated = Some(negotiated);
        self.state = State::OpenConfirm;
    }

    fn restart_hold(&self, out: &mut Vec<Output>) {
        if let Some(n) = &self.negotiated
            && !n.hold_time.is_zero()
        {
            out.push(Output::SetTimer(Timer::Hold, n.hold_time));
        }
    }

    fn unexpected(&mut self, subcode: FsmSubcode, out: &mut Vec<Output>) {
        let n = Notification::fsm_error(subcode);
        self.fail(Some(n.clone()), DownReason::Sent(n), out);
    }

    fn expired(&mut self, timer: Timer, out: &mut Vec<Output>) {
        match (timer, self.state) {
            (Timer::ConnectRetry, State::Connect | State::Active) if !self.config.passive => {
                out.push(Output::Disconnect);
                self.begin(out);
            }
            (Timer::ConnectRetry, State::Idle) if self.started => {
                self.suspended = false;
                self.begin(out);
            }
            (Timer::Hold, State::OpenSent | State::OpenConfirm | State::Established) => {
                let n = Notification::hold_timer_expired();
                self.fail(Some(n.clone()), DownReason::Sent(n), out);
            }
            (Timer::Keepalive, State::OpenConfirm | State::Established) => {
                if let Some(n) = &self.negotiated {
                    out.push(Output::Send(Message::Keepalive));
                    out.push(Output::SetTimer(Timer::Keepalive, n.keepalive));
                }
            }
            // A timer that fired as it was being cancelled.
            _ => {}
        }
    }

    /// Ends the connection (sending `notification` first) and waits out the back-off
    /// before trying again, when the session is started.
    fn fail(
        &mut self,
        notification: Option<Notification>,
        reason: DownReason,
        out: &mut Vec<Output>,
    ) {
        if let Some(n) = notification {
            out.push(Output::Send(Message::Notification(n)));
        }
        out.push(Output::Disconnect);
        self.go_idle(reason, out);
        if self.started {
            out.push(Output::SetTimer(Timer::ConnectRetry, self.retry));
            self.retry = (self.retry * 2).min(self.config.max_connect_retry);
        }
    }

    fn go_idle(&mut self, reason: DownReason, out: &mut Vec<Output>) {
        out.push(Output::CancelTimer(Timer::Hold));
        out.push(Output::CancelTimer(Timer::Keepalive));
        if self.state == State::Established {
            out.push(Output::Down(reason.clone()));
        }
        if reason != DownReason::Stopped || self.state != State::Idle {
            self.last_error = Some(reason);
        }
        self.negotiated = None;
        self.state = State::Idle;
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::codec::{Capability, Update};

    const PEER_AS: u32 = 65001;

    fn config() -> SessionConfig {
        SessionConfig::new(64512, Ipv4Addr::new(10, 0, 0, 1), Some(PEER_AS))
    }

    fn peer_open(hold: u16) -> Message {
        Message::Open(Open::new(
            PEER_AS,
            hold,
            Ipv4Addr::new(10, 0, 0, 2),
            vec![Capability::FourOctetAs(PEER_AS)],
        ))
    }

    fn sent(out: &[Output]) -> Vec<&Message> {
        out.iter()
            .filter_map(|o| match o {
                Output::Send(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    fn notification(out: &[Output]) -> Option<(u8, u8)> {
        sent(out).into_iter().find_map(|m| match m {
            Message::Notification(n) => Some((n.code, n.subcode)),
            _ => None,
        })
    }

    /// A session driven to Established with a 30 s hold time.
    fn established() -> Session {
        let mut session = Session::new(config());
        session.handle(Input::Start);
        session.handle(Input::Connected);
        session.handle(Input::Message(peer_open(30)));
        let out = session.handle(Input::Message(Message::Keepalive));
        assert!(matches!(out.last(), Some(Output::Up(_))), "{out:?}");
        session
    }

    #[test]
    fn an_active_session_connects_sends_open_and_comes_up_on_keepalive() {
        let mut session = Session::new(config());
        let out = session.handle(Input::Start);
        assert_eq!(session.state(), State::Connect);
        assert_eq!(out[0], Output::Connect);

        let out = session.handle(Input::Connected);
        assert_eq!(session.state(), State::OpenSent);
        assert!(matches!(sent(&out)[..], [Message::Open(_)]));
        assert!(out.contains(&Output::SetTimer(Timer::Hold, OPEN_HOLD_TIME)));

        let out = session.handle(Input::Message(peer_open(30)));
        assert_eq!(session.state(), State::OpenConfirm);
        assert_eq!(sent(&out), [&Message::Keepalive]);
        assert!(out.contains(&Output::SetTimer(Timer::Hold, Duration::from_secs(30))));
        assert!(out.contains(&Output::SetTimer(Timer::Keepalive, Duration::from_secs(10))));

        let out = session.handle(Input::Message(Message::Keepalive));
        assert_eq!(session.state(), State::Established);
        let Some(Output::Up(negotiated)) = out.last() else {
            panic!("no Up in {out:?}")
        };
        assert_eq!(negotiated.remote_as, PEER_AS);
    }

    #[test]
    fn a_passive_session_waits_for_the_peer_to_connect() {
        let mut session = Session::new(SessionConfig {
            passive: true,
            ..config()
        });
        assert_eq!(session.handle(Input::Start), []);
        assert_eq!(session.state(), State::Active);
        assert_eq!(session.handle(Input::Expired(Timer::ConnectRetry)), []);
        session.handle(Input::Connected);
        assert_eq!(session.state(), State::OpenSent);
    }

    #[test]
    fn updates_reach_the_routing_layer_and_restart_the_hold_timer() {
        let mut session = established();
        let update = Message::Update(Update::default());
        let out = session.handle(Input::Message(update.clone()));
        assert_eq!(
            out,
            [
                Output::SetTimer(Timer::Hold, Duration::from_secs(30)),
                Output::Received(update)
            ]
        );
    }

    #[test]
    fn hold_timer_expiry_sends_4_0_and_reports_down() {
        let mut session = established();
        let out = session.handle(Input::Expired(Timer::Hold));
        assert_eq!(notification(&out), Some((4, 0)));
        assert!(out.contains(&Output::Disconnect));
        assert!(matches!(
            out.iter().find(|o| matches!(o, Output::Down(_))),
            Some(Output::Down(DownReason::Sent(_)))
        ));
        assert_eq!(session.state(), State::Idle);
        assert_eq!(
            session.last_error().unwrap().to_string(),
            "sent NOTIFICATION 4/0"
        );
    }

    #[test]
    fn an_open_in_established_is_an_fsm_error_with_the_rfc_6608_subcode() {
        let mut session = established();
        let out = session.handle(Input::Message(peer_open(30)));
        assert_eq!(notification(&out), Some((5, 3)));
    }

    #[test]
    fn an_update_before_open_is_an_fsm_error_in_open_sent() {
        let mut session = Session::new(config());
        session.handle(Input::Start);
        session.handle(Input::Connected);
        let out = session.handle(Input::Message(Message::Update(Update::default())));
        assert_eq!(notification(&out), Some((5, 1)));
        assert_eq!(session.state(), State::Idle);
    }

    #[test]
    fn a_bad_open_is_answered_with_its_notification() {
        let mut session = Session::new(config());
        session.handle(Input::Start);
        session.handle(Input::Connected);
        let out = session.handle(Input::Message(Message::Open(Open::new(
            65999,
            90,
            Ipv4Addr::new(10, 0, 0, 2),
            vec![],
        ))));
        assert_eq!(notification(&out), Some((2, 2)));
        // Never established, so no Down; the reason is kept for status output.
        assert!(!out.iter().any(|o| matches!(o, Output::Down(_))));
        assert!(matches!(session.last_error(), Some(DownReason::Sent(_))));
    }

    #[test]
    fn failures_back_off_doubling_to_the_maximum_and_reset_once_established() {
        let mut session = Session::new(SessionConfig {
            connect_retry: Duration::from_secs(1),
            max_connect_retry: Duration::from_secs(4),
            ..config()
        });
        session.handle(Input::Start);
        let mut waits = Vec::new();
        for _ in 0..4 {
            session.handle(Input::Connected);
            let out = session.handle(Input::Closed);
            waits.extend(out.iter().filter_map(|o| match o {
                Output::SetTimer(Timer::ConnectRetry, d) => Some(d.as_secs()),
                _ => None,
            }));
            session.handle(Input::Expired(Timer::ConnectRetry));
        }
        assert_eq!(waits, [1, 2, 4, 4]);
        session.handle(Input::Connected);
        session.handle(Input::Message(peer_open(30)));
        session.handle(Input::Message(Message::Keepalive));
        let out = session.handle(Input::Closed);
        assert!(out.contains(&Output::SetTimer(
            Timer::ConnectRetry,
            Duration::from_secs(1)
        )));
    }

    #[test]
    fn stop_sends_an_administrative_shutdown_with_its_message_and_stays_down() {
        let mut session = established();
        let out = session.handle(Input::Stop("maintenance".into()));
        let Some(Message::Notification(n)) = sent(&out).first().copied() else {
            panic!("no NOTIFICATION in {out:?}")
        };
        assert_eq!(n.shutdown_communication(), Some("maintenance"));
        assert!(out.contains(&Output::Down(DownReason::Stopped)));
        assert!(!out.contains(&Output::Connect));
        assert_eq!(session.handle(Input::Expired(Timer::ConnectRetry)), []);
        assert_eq!(session.state(), State::Idle);
    }

    #[test]
    fn a_peer_notification_ends_the_session_with_its_reason() {
        let mut session = established();
        let cease = Notification::administrative_shutdown("bye");
        let out = session.handle(Input::Message(Message::Notification(cease.clone())));
        assert!(out.contains(&Output::Down(DownReason::Received(cease))));
        assert_eq!(notification(&out), None, "a NOTIFICATION is never answered");
        assert_eq!(
            session.last_error().unwrap().to_string(),
            "received NOTIFICATION 6/2 \"bye\""
        );
    }

    #[test]
    fn a_reset_sends_its_notification_and_backs_off() {
        let mut session = established();
        let cease = Notification::maximum_prefixes_reached(2);
        let out = session.handle(Input::Reset(cease.clone()));
        assert_eq!(sent(&out), [&Message::Notification(cease.clone())]);
        assert!(out.contains(&Output::Down(DownReason::Sent(cease))));
        assert!(
            out.iter()
                .any(|o| matches!(o, Output::SetTimer(Timer::ConnectRetry, _)))
        );
    }

    #[test]
    fn keepalives_follow_the_negotiated_interval_and_zero_hold_sends_none() {
        let mut session = established();
        let out = session.handle(Input::Expired(Timer::Keepalive));
        assert_eq!(
            out,
            [
                Output::Send(Message::Keepalive),
                Output::SetTimer(Timer::Keepalive, Duration::from_secs(10))
            ]
        );
        let mut session = Session::new(config());
        session.handle(Input::Start);
        session.handle(Input::Connected);
        let out = session.handle(Input::Message(peer_open(0)));
        assert!(out.contains(&Output::CancelTimer(Timer::Hold)));
        assert!(
            !out.iter()
                .any(|o| matches!(o, Output::SetTimer(Timer::Keepalive, _)))
        );
    }
}
