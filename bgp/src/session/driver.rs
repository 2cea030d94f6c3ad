//! The tokio task that runs one [`Session`]: it owns the socket and the timers,
//! frames and decodes what arrives, writes what the session and the speaker send,
//! and reports session events on a bounded channel.
//!
//! ```text
//!   owner ──commands (control, unbounded)──▶ ┐
//!   owner ──updates (encoded, bounded)─────▶ ├─ driver ◀──▶ socket
//!   owner ◀──events (bounded, back-pressure)─┘   │
//!   owner ◀──────── stats (atomics: state, counters, "blocked" flag)
//! ```
//!
//! Encoded UPDATEs are taken from their channel only while the write buffer is
//! below [`HIGH_WATER`], so a slow peer fills its channel and the owner learns it
//! (a full `try_send`), keeps the changes in its own tables and sends them later:
//! nothing piles up here. Reads stop while the owner's event channel is full.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::codec::{Message, MessageKind, Notification, SessionContext, decode_message};
use crate::transport::{self, Endpoint, TransportError};

use super::config::SessionConfig;
use super::fsm::{DownReason, Input, Output, Session, State, Timer};
use super::negotiate::Negotiated;

/// Take no more encoded UPDATEs while this much waits to be written.
pub const HIGH_WATER: usize = 256 * 1024;
/// Encoded chunks the owner may queue for one session.
pub const UPDATE_QUEUE: usize = 4;
/// How long a closing connection may take to send its last NOTIFICATION.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// What the owner of a session can ask of it.
// Sized by `Message`, which carries UPDATEs unboxed on purpose.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Command {
    /// Send an UPDATE or ROUTE-REFRESH; dropped unless Established.
    Send(Message),
    /// Send messages already encoded for this session (packed UPDATEs); dropped
    /// unless Established. Bulk output goes through [`SessionHandle::updates`].
    SendEncoded(BytesMut),
    /// A connection the listener accepted from this peer (passive sessions).
    Accepted(TcpStream),
    /// Reset the session with this NOTIFICATION and back off before reconnecting.
    Reset(Notification),
    /// Reset with this NOTIFICATION, then neither connect nor accept for this long
    /// (maximum prefixes, RFC 4486).
    ResetFor(Notification, Duration),
    /// Cease with this administrative shutdown message; the task ends.
    Stop(String),
}

/// UPDATEs encoded for the session that came up as `epoch` (see [`Event::Up`]):
/// chunks meant for an earlier session are dropped.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub epoch: u64,
    pub bytes: Bytes,
    /// How many UPDATEs `bytes` holds, for the counters.
    pub updates: u64,
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
        epoch: u64,
    },
    Down(DownReason),
    Received(Message),
    /// A connection attempt or session failed before Established.
    Failed(DownReason),
    /// The update queue had been found full and has room again.
    Drained,
}

/// Counters and state of one session, readable at any time.
#[derive(Debug, Default)]
pub struct SessionStats {
    state: AtomicU8,
    pub messages_received: AtomicU64,
    pub messages_sent: AtomicU64,
    pub updates_received: AtomicU64,
    pub updates_sent: AtomicU64,
    /// Set by the owner when a `try_send` on the update queue failed; the driver
    /// answers with [`Event::Drained`] once it takes a chunk.
    pub blocked: AtomicBool,
}

impl SessionStats {
    pub fn state(&self) -> State {
        match self.state.load(Ordering::Relaxed) {
            1 => State::Connect,
            2 => State::Active,
            3 => State::OpenSent,
            4 => State::OpenConfirm,
            5 => State::Established,
            _ => State::Idle,
        }
    }

    fn set_state(&self, state: State) {
        let code = match state {
            State::Idle => 0,
            State::Connect => 1,
            State::Active => 2,
            State::OpenSent => 3,
            State::OpenConfirm => 4,
            State::Established => 5,
        };
        self.state.store(code, Ordering::Relaxed);
    }

    fn count(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Where a driver reports: a shared channel, each event tagged with `token`.
#[derive(Debug, Clone)]
pub struct EventSink {
    pub events: mpsc::Sender<(u64, Event)>,
    pub token: u64,
}

/// A running session: send it commands and updates, read its events (when
/// started with [`spawn`]; [`spawn_into`] reports to a shared sink instead).
#[derive(Debug)]
pub struct SessionHandle {
    pub commands: mpsc::UnboundedSender<Command>,
    pub updates: mpsc::Sender<Outgoing>,
    pub stats: Arc<SessionStats>,
    pub events: mpsc::Receiver<Event>,
    /// The driver; it ends after [`Command::Stop`] once the Cease is written.
    pub task: JoinHandle<()>,
}

/// Starts the session with `endpoint` on the current tokio runtime.
pub fn spawn(config: SessionConfig, endpoint: Endpoint) -> SessionHandle {
    let (tagged, mut tagged_rx) = mpsc::channel(64);
    let (event_tx, events) = mpsc::channel(64);
    let handle = spawn_into(
        config,
        endpoint,
        EventSink {
            events: tagged,
            token: 0,
        },
    );
    tokio::spawn(async move {
        while let Some((_, event)) = tagged_rx.recv().await {
            if event_tx.send(event).await.is_err() {
                return;
            }
        }
    });
    SessionHandle { events, ..handle }
}

/// Starts the session, reporting its events to `sink`; the returned handle's
/// `events` channel stays empty.
pub fn spawn_into(config: SessionConfig, endpoint: Endpoint, sink: EventSink) -> SessionHandle {
    let (updates, update_rx) = mpsc::channel(UPDATE_QUEUE);
    let stats = Arc::new(SessionStats::default());
    let (commands, task) = spawn_linked(config, endpoint, sink, update_rx, Arc::clone(&stats));
    let (_, events) = mpsc::channel(1);
    SessionHandle {
        commands,
        updates,
        stats,
        events,
        task,
    }
}

/// Starts the session on an update queue and counters its owner made (the
/// speaker's core makes them with the peer); returns its command channel and
/// task.
pub fn spawn_linked(
    config: SessionConfig,
    endpoint: Endpoint,
    sink: EventSink,
    updates: mpsc::Receiver<Outgoing>,
    stats: Arc<SessionStats>,
) -> (mpsc::UnboundedSender<Command>, JoinHandle<()>) {
    let (commands, command_rx) = mpsc::unbounded_channel();
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
        epoch: 0,
        sink,
        stats,
    };
    (commands, tokio::spawn(driver.run(command_rx, updates)))
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
    /// A read or write failed: the connection is gone.
    lost: bool,
    /// Counts the sessions that came up; tags their update chunks.
    epoch: u64,
    sink: EventSink,
    stats: Arc<SessionStats>,
}

/// A second connection from the peer, and what it sent so far.
struct Candidate {
    stream: TcpStream,
    read: BytesMut,
}

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
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut updates: mpsc::Receiver<Outgoing>,
    ) {
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
            let take_updates = self.write.len() < HIGH_WATER;
            tokio::select! {
                command = commands.recv() => {
                    if !self.command(command).await {
                        return;
                    }
                }
                Some(chunk) = updates.recv(), if take_updates => {
                    if self.stats.blocked.swap(false, Ordering::Relaxed) {
                        self.report(Event::Drained).await;
                    }
                    if self.session.state() == State::Established && chunk.epoch == self.epoch {
                        SessionStats::count(&self.stats.updates_sent, chunk.updates);
                        SessionStats::count(&self.stats.messages_sent, chunk.updates);
                        self.write.extend_from_slice(&chunk.bytes);
                        self.try_write();
                    }
                }
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
                ready = readable(self.stream.as_ref()) => {
                    if ready.is_ok() {
                        self.try_read().await;
                    } else {
                        self.lost = true;
                    }
                }
                ready = writable(self.stream.as_ref()), if !self.write.is_empty() => {
                    if ready.is_ok() {
                        self.try_write();
                    } else {
                        self.lost = true;
                    }
                }
                () = tokio::time::sleep_until(deadline), if next_timer.is_some() => {
                    self.timers[slot(timer)] = None;
                    self.input(Input::Expired(timer)).await;
                }
            }
            if std::mem::take(&mut self.lost) {
                self.stream = None;
                self.write.clear();
                self.input(Input::Closed).await;
            }
        }
    }

    /// Carries out one command; false when the task must end.
    async fn command(&mut self, command: Option<Command>) -> bool {
        match command {
            Some(Command::Send(message)) => {
                if self.session.state() == State::Established {
                    self.send(&message);
                    self.try_write();
                }
            }
            Some(Command::SendEncoded(bytes)) => {
                if self.session.state() == State::Established {
                    self.write.extend_from_slice(&bytes);
                    self.try_write();
                }
            }
            Some(Command::Accepted(stream)) => self.accepted(stream).await,
            Some(Command::Reset(notification)) => {
                self.input(Input::Reset(notification)).await;
            }
            Some(Command::ResetFor(notification, wait)) => {
                self.input(Input::ResetFor(notification, wait)).await;
            }
            Some(Command::Stop(message)) => {
                self.input(Input::Stop(message)).await;
                return false;
            }
            // The owner is gone: end the session politely.
            None => {
                self.input(Input::Stop("shutting down".into())).await;
                return false;
            }
        }
        true
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

    /// Reads the OPEN on the peer's connection; the session decides which of the
    /// two connections survives (RFC 4271 6.8).
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
        self.input(Input::Collision(open)).await;
    }

    /// Reads what the socket has and feeds every whole message to the session.
    async fn try_read(&mut self) {
        let Some(stream) = self.stream.as_ref() else {
            return;
        };
        if self.read.capacity() - self.read.len() < 4096 {
            self.read.reserve(64 * 1024);
        }
        match stream.try_read_buf(&mut self.read) {
            Ok(0) => self.lost = true,
            Ok(_) => self.decode().await,
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => self.lost = true,
        }
    }

    /// Writes as much of the write buffer as the socket takes now.
    fn try_write(&mut self) {
        let Some(stream) = self.stream.as_ref() else {
            self.write.clear();
            return;
        };
        while !self.write.is_empty() {
            match stream.try_write(&self.write) {
                Ok(n) => self.write.advance(n),
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.lost = true;
                    return;
                }
            }
        }
    }

    /// Sends what is buffered (within [`CLOSE_GRACE`]) and closes the connection.
    async fn close(&mut self) {
        if let Some(mut stream) = self.stream.take() {
            let pending = std::mem::take(&mut self.write);
            let _ = tokio::time::timeout(CLOSE_GRACE, async {
                let _ = stream.write_all(&pending).await;
                let _ = stream.shutdown().await;
            })
            .await;
        }
        self.write.clear();
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
                    SessionStats::count(&self.stats.messages_received, 1);
                    if message.kind() == MessageKind::Update {
                        SessionStats::count(&self.stats.updates_received, 1);
                    }
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
                    self.close().await;
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
                        Some(local) => {
                            self.epoch += 1;
                            let epoch = self.epoch;
                            self.report(Event::Up {
                                negotiated,
                                local,
                                epoch,
                            })
                            .await;
                        }
                        // The connection died as the session came up; the read
                        // side reports it next.
                        None => self.lost = true,
                    }
                }
                Output::Down(reason) => self.report(Event::Down(reason)).await,
                Output::Received(message) => self.report(Event::Received(message)).await,
                Output::AdoptIncoming => {
                    if let Some(candidate) = self.candidate.take() {
                        self.stream = Some(candidate.stream);
                        self.read = candidate.read;
                    }
                }
                Output::RefuseIncoming(notification) => {
                    if let Some(mut candidate) = self.candidate.take() {
                        let mut cease = BytesMut::new();
                        let _ = Message::Notification(notification)
                            .encode(&SessionContext::default(), &mut cease);
                        let _ = tokio::time::timeout(CLOSE_GRACE, async {
                            let _ = candidate.stream.write_all(&cease).await;
                            let _ = candidate.stream.shutdown().await;
                        })
                        .await;
                    }
                }
            }
        }
        self.stats.set_state(self.session.state());
        let failed = was != State::Idle && self.session.state() == State::Idle && !went_down;
        if failed && let Some(reason) = self.session.last_error() {
            let reason = reason.clone();
            self.report(Event::Failed(reason)).await;
        }
        self.try_write();
    }

    fn send(&mut self, message: &Message) {
        let context = self
            .session
            .negotiated()
            .map_or_else(SessionContext::default, |n| n.context);
        match message.encode(&context, &mut self.write) {
            Ok(()) => SessionStats::count(&self.stats.messages_sent, 1),
            Err(error) => {
                tracing::error!(peer = %self.endpoint.remote, %error, "cannot encode a message")
            }
        }
    }

    async fn report(&mut self, event: Event) {
        // The owner may have stopped listening; the session runs on regardless.
        let _ = self.sink.events.send((self.sink.token, event)).await;
    }
}

async fn readable(stream: Option<&TcpStream>) -> std::io::Result<()> {
    match stream {
        Some(stream) => stream.readable().await,
        None => std::future::pending().await,
    }
}

async fn writable(stream: Option<&TcpStream>) -> std::io::Result<()> {
    match stream {
        Some(stream) => stream.writable().await,
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
