//! The tokio task that runs one [`Session`]: it owns the socket and the timers,
//! frames and decodes what arrives, encodes what the session sends, and reports
//! session events on a channel.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::codec::{Message, Notification, SessionContext, decode_message};
use crate::transport::{self, Endpoint, TransportError};

use super::collision::keep_incoming;
use super::config::SessionConfig;
use super::fsm::{DownReason, Input, Output, Session, State, Timer};
use super::negotiate::Negotiated;

/// What the owner of a session can ask of it.
// Sized by `Message`, which carries UPDATEs unboxed on purpose.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Command {
    /// Send an UPDATE or ROUTE-REFRESH; dropped unless Established.
    Send(Message),
    /// Send messages already encoded for this session (packed UPDATEs); dropped
    /// unless Established.
    SendEncoded(BytesMut),
    /// A connection the listener accepted from this peer (passive sessions).
    Accepted(TcpStream),
    /// Reset the session with this NOTIFICATION and back off before reconnecting.
    Reset(Notification),
    /// Cease with this administrative shutdown message; the task ends.
    Stop(String),
}

/// What a session reports.
// Mostly received UPDATEs; see `Command`.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Established, with what was agreed and this end's address of the connection.
    Up {
        negotiated: Box<Negotiated>,
        local: SocketAddr,
    },
    Down(DownReason),
    Received(Message),
    /// A connection attempt or session failed before Established.
    Failed(DownReason),
}

/// A running session: send it commands, read its events.
#[derive(Debug)]
pub struct SessionHandle {
    pub commands: mpsc::UnboundedSender<Command>,
    pub events: mpsc::UnboundedReceiver<Event>,
}

/// Starts the session with `endpoint` on the current tokio runtime.
pub fn spawn(config: SessionConfig, endpoint: Endpoint) -> SessionHandle {
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (event_tx, events) = mpsc::unbounded_channel();
    let driver = Driver {
        session: Session::new(config),
        endpoint,
        stream: None,
        read: BytesMut::with_capacity(64 * 1024),
        write: BytesMut::new(),
        timers: [None; 3],
        connecting: None,
        candidate: None,
        lost: false,
        events: event_tx,
    };
    tokio::spawn(driver.run(command_rx));
    SessionHandle { commands, events }
}

struct Driver {
    session: Session,
    endpoint: Endpoint,
    stream: Option<TcpStream>,
    read: BytesMut,
    write: BytesMut,
    /// Deadlines of ConnectRetry, Hold and Keepalive.
    timers: [Option<Instant>; 3],
    /// The outgoing connection attempt in progress.
    connecting: Option<Connecting>,
    /// The peer's connection while ours is opening: a collision to resolve.
    candidate: Option<Candidate>,
    /// A write failed: the connection is gone.
    lost: bool,
    events: mpsc::UnboundedSender<Event>,
}

/// A second connection from the peer, and what it sent so far.
struct Candidate {
    stream: TcpStream,
    read: BytesMut,
}

/// Cease subcode 7 (RFC 4486).
const CEASE: u8 = 6;
const CONNECTION_COLLISION_RESOLUTION: u8 = 7;

type Connecting = Pin<Box<dyn Future<Output = Result<TcpStream, TransportError>> + Send>>;

fn slot(timer: Timer) -> usize {
    match timer {
        Timer::ConnectRetry => 0,
        Timer::Hold => 1,
        Timer::Keepalive => 2,
    }
}

const TIMERS: [Timer; 3] = [Timer::ConnectRetry, Timer::Hold, Timer::Keepalive];

impl Driver {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        self.input(Input::Start).await;
        loop {
            let next_timer = self
                .timers
                .iter()
                .enumerate()
                .filter_map(|(i, t)| t.map(|at| (at, TIMERS[i])))
                .min_by_key(|(at, _)| *at);
            let far = Instant::now() + Duration::from_secs(3600);
            let (deadline, timer) = next_timer.unwrap_or((far, Timer::ConnectRetry));
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Send(message)) => {
                        if self.session.state() == State::Established {
                            self.send(&message);
                            self.flush().await;
                        }
                    }
                    Some(Command::SendEncoded(bytes)) => {
                        if self.session.state() == State::Established {
                            self.write.extend_from_slice(&bytes);
                            self.flush().await;
                        }
                    }
                    Some(Command::Accepted(stream)) => self.accepted(stream).await,
                    Some(Command::Reset(notification)) => {
                        self.input(Input::Reset(notification)).await;
                    }
                    Some(Command::Stop(message)) => {
                        self.input(Input::Stop(message)).await;
                        return;
                    }
                    // The owner is gone: end the session politely.
                    None => {
                        self.input(Input::Stop("shutting down".into())).await;
                        return;
                    }
                },
                connected = poll_connect(&mut self.connecting) => {
                    self.connecting = None;
                    match connected {
                        Ok(stream) => {
                            self.stream = Some(stream);
                            self.input(Input::Connected).await;
                        }
                        Err(error) => {
                            tracing::debug!(peer = %self.endpoint.remote, %error, "connect failed");
                            self.input(Input::ConnectFailed).await;
                        }
                    }
                }
                read = read_candidate(self.candidate.as_mut()) => match read {
                    Ok(n) if n > 0 => self.resolve_collision().await,
                    // The peer gave up on its connection.
                    _ => self.candidate = None,
                },
                read = read_some(self.stream.as_mut(), &mut self.read), if self.stream.is_some() => {
                    match read {
                        Ok(0) | Err(_) => {
                            self.stream = None;
                            self.input(Input::Closed).await;
                        }
                        Ok(_) => self.decode().await,
                    }
                }
                () = tokio::time::sleep_until(deadline), if next_timer.is_some() => {
                    self.timers[slot(timer)] = None;
                    self.input(Input::Expired(timer)).await;
                }
            }
            if std::mem::take(&mut self.lost) {
                self.input(Input::Closed).await;
            }
        }
    }

    /// A connection the peer opened. With none open it is the session's; while
    /// ours is opening both live until the peer's OPEN says which one survives.
    async fn accepted(&mut self, stream: TcpStream) {
        if self.stream.is_none() {
            self.stream = Some(stream);
            self.connecting = None;
            self.input(Input::Connected).await;
        } else if matches!(self.session.state(), State::OpenSent | State::OpenConfirm) {
            self.candidate = Some(Candidate {
                stream,
                read: BytesMut::new(),
            });
        }
        // Established: the new connection is dropped, ours stays (RFC 4271 6.8).
    }

    /// Reads the OPEN on the peer's connection and keeps one of the two (RFC 4271
    /// 6.8, RFC 6286 2.3), closing the other with Cease/Connection Collision
    /// Resolution.
    async fn resolve_collision(&mut self) {
        let Some(candidate) = self.candidate.as_mut() else {
            return;
        };
        let open = match decode_message(&candidate.read, &SessionContext::default()) {
            Ok(None) => return,
            Ok(Some((Message::Open(open), len))) => {
                candidate.read.advance(len);
                open
            }
            // Anything but an OPEN first: not a session worth keeping.
            Ok(Some(_)) | Err(_) => {
                self.candidate = None;
                return;
            }
        };
        let mut candidate = self.candidate.take().expect("checked above");
        let config = self.session.config();
        let mut cease = BytesMut::new();
        let _ = Message::Notification(Notification {
            code: CEASE,
            subcode: CONNECTION_COLLISION_RESOLUTION,
            data: Vec::new(),
        })
        .encode(&SessionContext::default(), &mut cease);
        if keep_incoming(config.router_id, config.local_as, open.bgp_id, open.asn()) {
            self.write.extend_from_slice(&cease);
            self.flush().await;
            if let Some(mut ours) = self.stream.replace(candidate.stream) {
                let _ = ours.shutdown().await;
            }
            self.read = candidate.read;
            self.input(Input::Replaced).await;
            self.input(Input::Connected).await;
            self.input(Input::Message(Message::Open(open))).await;
        } else {
            let _ = candidate.stream.write_all(&cease).await;
            let _ = candidate.stream.shutdown().await;
        }
    }

    /// Decodes every whole message in the read buffer and feeds it to the session.
    async fn decode(&mut self) {
        loop {
            let context = self
                .session
                .negotiated()
                .map_or_else(SessionContext::default, |n| n.context);
            match decode_message(&self.read, &context) {
                Ok(Some((message, len))) => {
                    self.read.advance(len);
                    self.input(Input::Message(message)).await;
                    if self.stream.is_none() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(error) => {
                    tracing::warn!(peer = %self.endpoint.remote, %error, "malformed message");
                    self.read.clear();
                    self.input(Input::Malformed(error)).await;
                    return;
                }
            }
        }
    }

    async fn input(&mut self, input: Input) {
        let was = self.session.state();
        let outputs = self.session.handle(input);
        let went_down = outputs.iter().any(|o| matches!(o, Output::Down(_)));
        for output in outputs {
            match output {
                Output::Connect => {
                    let endpoint = self.endpoint.clone();
                    self.connecting =
                        Some(Box::pin(async move { transport::connect(&endpoint).await }));
                }
                Output::Disconnect => {
                    self.flush().await;
                    if let Some(mut stream) = self.stream.take() {
                        let _ = stream.shutdown().await;
                    }
                    self.connecting = None;
                    self.read.clear();
                }
                Output::Send(message) => self.send(&message),
                Output::SetTimer(timer, after) => {
                    self.timers[slot(timer)] = Some(Instant::now() + after);
                }
                Output::CancelTimer(timer) => self.timers[slot(timer)] = None,
                Output::Up(negotiated) => {
                    let local = self.stream.as_ref().and_then(|s| s.local_addr().ok());
                    match local {
                        Some(local) => self.report(Event::Up { negotiated, local }),
                        // The connection died as the session came up; the read
                        // side reports it next.
                        None => self.lost = true,
                    }
                }
                Output::Down(reason) => self.report(Event::Down(reason)),
                Output::Received(message) => self.report(Event::Received(message)),
            }
        }
        let failed = was != State::Idle && self.session.state() == State::Idle && !went_down;
        if failed && let Some(reason) = self.session.last_error() {
            self.report(Event::Failed(reason.clone()));
        }
        self.flush().await;
    }

    fn send(&mut self, message: &Message) {
        let context = self
            .session
            .negotiated()
            .map_or_else(SessionContext::default, |n| n.context);
        if let Err(error) = message.encode(&context, &mut self.write) {
            tracing::error!(peer = %self.endpoint.remote, %error, "cannot encode a message");
        }
    }

    async fn flush(&mut self) {
        if self.write.is_empty() {
            return;
        }
        if let Some(stream) = self.stream.as_mut()
            && stream.write_all(&self.write).await.is_err()
        {
            self.stream = None;
            self.lost = true;
        }
        self.write.clear();
    }

    fn report(&self, event: Event) {
        // The owner may have stopped listening; the session runs on regardless.
        let _ = self.events.send(event);
    }
}

async fn read_some(stream: Option<&mut TcpStream>, buf: &mut BytesMut) -> std::io::Result<usize> {
    match stream {
        Some(stream) => stream.read_buf(buf).await,
        None => std::future::pending().await,
    }
}

async fn poll_connect(connecting: &mut Option<Connecting>) -> Result<TcpStream, TransportError> {
    match connecting {
        Some(attempt) => attempt.await,
        None => std::future::pending().await,
    }
}

async fn read_candidate(candidate: Option<&mut Candidate>) -> std::io::Result<usize> {
    match candidate {
        Some(c) => c.stream.read_buf(&mut c.read).await,
        None => std::future::pending().await,
    }
}
