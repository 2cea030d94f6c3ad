//! The tokio shell around the [`Core`]: it owns the listener, the session
//! drivers, the owner's channels and the one timer, feeds the core what happens
//! (with the time) and carries out what the core returns.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::pin::Pin;

use ipnet::IpNet;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{self, OwnedPermit, error::TrySendError};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::session::{self, Command, Event, EventSink};
use crate::transport::{self, TtlPolicy};

use super::core::{Core, Input, Output};
use super::{Notice, Request, SHUTDOWN_GRACE};

/// Session events taken per round before the peers are brought up to date.
const EVENT_BATCH: usize = 64;
/// Events the sessions may queue for the speaker.
const EVENT_QUEUE: usize = 1024;

/// A running session driver.
struct Driver {
    commands: mpsc::UnboundedSender<Command>,
    task: JoinHandle<()>,
}

pub(super) struct Task {
    core: Core,
    listener: Option<TcpListener>,
    drivers: HashMap<u64, Driver>,
    /// Drivers told to stop, until they end.
    stopping: Vec<JoinHandle<()>>,
    sink: mpsc::Sender<(u64, Event)>,
    notices: NoticePump,
    deadline: Option<Instant>,
}

impl Task {
    pub fn new(core: Core, listener: Option<TcpListener>, notices: mpsc::Sender<Notice>) -> Self {
        let (sink, _) = mpsc::channel(1);
        Self {
            core,
            listener,
            drivers: HashMap::new(),
            stopping: Vec::new(),
            sink,
            notices: NoticePump::new(notices),
            deadline: None,
        }
    }

    pub async fn run(mut self, mut requests: mpsc::UnboundedReceiver<Request>) {
        let (sink, mut events) = mpsc::channel(EVENT_QUEUE);
        self.sink = sink;
        if self.step(Input::Start, None).await {
            return;
        }
        loop {
            let mut permit = None;
            let input = tokio::select! {
                // The owner dropping its handle is a shutdown too.
                request = requests.recv() => Input::Request(
                    request.unwrap_or_else(|| Request::Shutdown("shutting down".into())),
                ),
                batch = recv_batch(&mut events) => Input::Sessions(batch),
                accepted = accept(self.listener.as_ref()) => match accepted {
                    Ok(stream) => {
                        let Some(from) = prepare(&stream) else { continue };
                        if self.step(Input::Connection(from), Some(stream)).await {
                            return;
                        }
                        continue;
                    }
                    Err(_) => continue,
                },
                room = self.notices.room() => match room {
                    Some(room) => {
                        permit = Some(room);
                        // Only the notices move: a no-op input lets the core see
                        // nothing changed.
                        Input::Sessions(Vec::new())
                    }
                    None => Input::OwnerGone,
                },
                () = sleep_until(self.deadline) => Input::Timer,
            };
            if let Some(permit) = permit {
                self.notices.send_one(permit, &mut self.core);
            }
            if self.step(input, None).await {
                return;
            }
        }
    }

    /// Hands `input` to the core and carries out its outputs; `stream` is the
    /// connection an `Input::Connection` is about. True when the speaker ended.
    async fn step(&mut self, input: Input, mut stream: Option<TcpStream>) -> bool {
        let now = Instant::now().into_std();
        let outputs = self.core.handle(now, input);
        let mut exit = false;
        for output in outputs {
            match output {
                Output::Spawn(spawn) => {
                    let sink = EventSink {
                        events: self.sink.clone(),
                        token: spawn.token,
                    };
                    let (commands, task) = session::spawn_linked(
                        spawn.session,
                        spawn.endpoint,
                        sink,
                        spawn.updates,
                        spawn.stats,
                    );
                    self.drivers.insert(spawn.token, Driver { commands, task });
                }
                Output::Command(token, command) => self.command(token, command),
                Output::Accept { token, ttl } => {
                    if let (Some(stream), Some(driver)) = (stream.take(), self.drivers.get(&token))
                    {
                        apply_ttl(&stream, ttl);
                        let _ = driver.commands.send(Command::Accepted(stream));
                    }
                }
                Output::Refuse => drop(stream.take()),
                Output::ListenerKey { peers, key } => self.set_listener_key(peers, &key),
                Output::Deadline(at) => self.deadline = at.map(Instant::from_std),
                Output::Exit => exit = true,
            }
        }
        if exit {
            self.shut_down().await;
            return true;
        }
        if self.notices.pump(&mut self.core) {
            // The owner is gone; the core forgets what it had for it.
            self.core.handle(now, Input::OwnerGone);
        }
        false
    }

    fn command(&mut self, token: u64, command: Command) {
        if matches!(command, Command::Stop(_)) {
            if let Some(driver) = self.drivers.remove(&token) {
                let _ = driver.commands.send(command);
                self.stopping.retain(|task| !task.is_finished());
                self.stopping.push(driver.task);
            }
            return;
        }
        if let Some(driver) = self.drivers.get(&token) {
            let _ = driver.commands.send(command);
        }
    }

    /// Waits (at most [`SHUTDOWN_GRACE`]) until every session told to stop has
    /// written its NOTIFICATION.
    async fn shut_down(&mut self) {
        let stopping = std::mem::take(&mut self.stopping);
        let all = async {
            for task in stopping {
                let _ = task.await;
            }
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, all).await.is_err() {
            tracing::warn!("sessions still closing after the shutdown grace time");
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
}

/// The owner's notices channel: bounded, fed from the core as it has room.
struct NoticePump {
    tx: mpsc::Sender<Notice>,
    /// Waits for room once the channel was full.
    waiting: Option<Reserve>,
    closed: bool,
}

type Reserve = Pin<Box<dyn Future<Output = Option<OwnedPermit<Notice>>> + Send>>;

impl NoticePump {
    fn new(tx: mpsc::Sender<Notice>) -> Self {
        Self {
            tx,
            waiting: None,
            closed: false,
        }
    }

    /// Resolves when the channel has room again (pending while it is not waiting);
    /// `None` when the owner is gone.
    async fn room(&mut self) -> Option<OwnedPermit<Notice>> {
        match self.waiting.as_mut() {
            Some(reserve) => {
                let permit = reserve.await;
                self.waiting = None;
                if permit.is_none() {
                    self.closed = true;
                }
                permit
            }
            None => std::future::pending().await,
        }
    }

    fn send_one(&mut self, permit: OwnedPermit<Notice>, core: &mut Core) {
        if let Some(notice) = core.next_notice() {
            permit.send(notice);
        }
    }

    /// Sends what the core has for the owner until the channel is full; true
    /// when the owner turned out to be gone.
    fn pump(&mut self, core: &mut Core) -> bool {
        if self.closed || self.waiting.is_some() {
            return false;
        }
        while core.has_notices() {
            match self.tx.try_reserve() {
                Ok(permit) => {
                    if let Some(notice) = core.next_notice() {
                        permit.send(notice);
                    }
                }
                Err(TrySendError::Full(())) => {
                    let tx = self.tx.clone();
                    self.waiting = Some(Box::pin(async move { tx.reserve_owned().await.ok() }));
                    return false;
                }
                Err(TrySendError::Closed(())) => {
                    self.closed = true;
                    return true;
                }
            }
        }
        false
    }
}

/// Up to [`EVENT_BATCH`] session events (waits for the first).
async fn recv_batch(events: &mut mpsc::Receiver<(u64, Event)>) -> Vec<(u64, Event)> {
    let mut batch = Vec::with_capacity(EVENT_BATCH);
    events.recv_many(&mut batch, EVENT_BATCH).await;
    batch
}

/// The address of an accepted connection, with TCP_NODELAY set as on connected
/// sessions (UPDATEs go out as soon as they are written).
fn prepare(stream: &TcpStream) -> Option<IpAddr> {
    let from = stream.peer_addr().ok()?.ip();
    if let Err(error) = stream.set_nodelay(true) {
        tracing::warn!(address = %from, %error, "cannot set TCP_NODELAY");
    }
    Some(from)
}

fn apply_ttl(stream: &TcpStream, ttl: TtlPolicy) {
    let ipv6 = stream.local_addr().is_ok_and(|a| a.is_ipv6());
    if let Err(error) = transport::ttl::apply(stream.as_fd(), ipv6, ttl) {
        tracing::warn!(%error, "cannot apply the peer's TTL policy");
    }
}

async fn accept(listener: Option<&TcpListener>) -> std::io::Result<TcpStream> {
    match listener {
        Some(listener) => listener.accept().await.map(|(stream, _)| stream),
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
