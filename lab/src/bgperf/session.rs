//! A benchmark client session: connect from its own address, exchange OPEN and
//! KEEPALIVE with the target, then one task writes (the tester's stream and
//! keepalives) and one reads (UPDATEs into a [`Held`] count, published through
//! [`Progress`]).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bgp::codec::{Capability, Family, Message, Open, SessionContext, decode_message};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;

use super::held::Held;
use super::stream::context;

/// The hold time the clients propose (BIRD's default); the target's may be lower.
const HOLD_TIME: u16 = 240;
const HEADER_LEN: usize = 19;
const UPDATE: u8 = 2;
const NOTIFICATION: u8 = 3;

/// What a monitor has received so far, readable from any thread.
#[derive(Debug, Default)]
pub struct Progress {
    held: AtomicUsize,
    /// When `held` last changed, in nanoseconds after the run's epoch.
    changed: AtomicU64,
    /// Set when the session failed; the run stops waiting.
    failed: AtomicUsize,
}

impl Progress {
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    pub fn changed_at(&self) -> Duration {
        Duration::from_nanos(self.changed.load(Ordering::Acquire))
    }

    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire) != 0
    }
}

/// An Established client session.
#[derive(Debug)]
pub struct Client {
    pub address: Ipv4Addr,
    /// Bytes to write to the target (pre-encoded UPDATEs).
    pub send: mpsc::UnboundedSender<Bytes>,
    pub progress: Arc<Progress>,
}

/// Connects from `local` to the target (retrying until `deadline`: the daemon may
/// still be binding), completes the handshake and starts the reader and writer.
/// Prefixes `0..size` are counted, except `own`.
pub async fn establish(
    local: Ipv4Addr,
    target: SocketAddrV4,
    asn: u32,
    epoch: Instant,
    size: u32,
    own: Range<u32>,
    deadline: Instant,
) -> Result<Client> {
    // A daemon may accept before its session is configured and reset the
    // connection (BIRD does while its protocols start): retry the whole handshake.
    let (stream, hold, leftover) = loop {
        let attempt = async {
            let mut stream = connect(local, target).await?;
            let (hold, leftover) = handshake(&mut stream, local, asn).await?;
            anyhow::Ok((stream, hold, leftover))
        };
        match attempt.await {
            Ok(established) => break established,
            Err(error) if Instant::now() > deadline => {
                return Err(error).context(format!("{local}: session with {target}"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let (read, write) = stream.into_split();
    let (send, outgoing) = mpsc::unbounded_channel();
    let progress = Arc::new(Progress::default());
    let keepalive = (hold > 0).then(|| Duration::from_secs(u64::from(hold) / 3));
    tokio::spawn(writer(write, outgoing, keepalive));
    tokio::spawn(reader(
        read,
        leftover,
        Held::new(size, own),
        Arc::clone(&progress),
        epoch,
        local,
    ));
    Ok(Client {
        address: local,
        send,
        progress,
    })
}

async fn connect(local: Ipv4Addr, target: SocketAddrV4) -> Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(local.into(), 0))?;
    let stream = socket.connect(target.into()).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Sends OPEN, reads the target's OPEN, confirms with KEEPALIVE and waits for the
/// target's. Returns the negotiated hold time and what arrived after the KEEPALIVE
/// (the target's first UPDATEs), for the reader.
async fn handshake(stream: &mut TcpStream, local: Ipv4Addr, asn: u32) -> Result<(u16, BytesMut)> {
    let open = Open::new(
        asn,
        HOLD_TIME,
        local,
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::FourOctetAs(asn),
        ],
    );
    let mut out = BytesMut::new();
    Message::Open(open).encode(&SessionContext::default(), &mut out)?;
    stream.write_all(&out).await?;
    let mut buf = BytesMut::new();
    let mut hold = None;
    loop {
        let ctx = if hold.is_some() {
            context()
        } else {
            SessionContext::default()
        };
        match decode_message(&buf, &ctx)? {
            Some((message, len)) => {
                let _ = buf.split_to(len);
                match message {
                    Message::Open(theirs) => {
                        hold = Some(theirs.hold_time.min(HOLD_TIME));
                        out.clear();
                        Message::Keepalive.encode(&ctx, &mut out)?;
                        stream.write_all(&out).await?;
                    }
                    Message::Keepalive if hold.is_some() => {
                        return Ok((hold.unwrap_or(HOLD_TIME), buf));
                    }
                    Message::Notification(n) => {
                        bail!("NOTIFICATION {}/{} {:?}", n.code, n.subcode, n.data)
                    }
                    other => bail!("unexpected {:?} during the handshake", other.kind()),
                }
            }
            None => {
                if stream.read_buf(&mut buf).await? == 0 {
                    bail!("the target closed the connection");
                }
            }
        }
    }
}

async fn writer(
    mut stream: OwnedWriteHalf,
    mut outgoing: mpsc::UnboundedReceiver<Bytes>,
    keepalive: Option<Duration>,
) {
    let mut keepalive_bytes = BytesMut::new();
    let _ = Message::Keepalive.encode(&context(), &mut keepalive_bytes);
    let period = keepalive.unwrap_or(Duration::from_secs(3600));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        let result = tokio::select! {
            bytes = outgoing.recv() => match bytes {
                Some(bytes) => stream.write_all(&bytes).await,
                None => return,
            },
            _ = ticks.tick(), if keepalive.is_some() => stream.write_all(&keepalive_bytes).await,
        };
        if result.is_err() {
            return;
        }
    }
}

async fn reader(
    mut stream: OwnedReadHalf,
    mut buf: BytesMut,
    mut held: Held,
    progress: Arc<Progress>,
    epoch: Instant,
    local: Ipv4Addr,
) {
    buf.reserve(256 * 1024);
    let fail = |why: String| {
        eprintln!("tabby-bgperf: session {local}: {why}");
        progress.failed.store(1, Ordering::Release);
    };
    loop {
        let before = held.count();
        let mut at = 0;
        while let Some(header) = buf.get(at..at + HEADER_LEN) {
            let len = usize::from(u16::from_be_bytes([header[16], header[17]]));
            let kind = header[18];
            if len < HEADER_LEN {
                return fail(format!("bad message length {len}"));
            }
            let Some(body) = buf.get(at + HEADER_LEN..at + len) else {
                break;
            };
            match kind {
                UPDATE => {
                    if let Err(why) = held.update(body) {
                        return fail(why.into());
                    }
                }
                NOTIFICATION => {
                    return fail(format!("NOTIFICATION {body:?}"));
                }
                _ => {}
            }
            at += len;
        }
        let _ = buf.split_to(at);
        if held.count() != before {
            let now = epoch.elapsed().as_nanos() as u64;
            progress.changed.store(now, Ordering::Release);
            progress.held.store(held.count(), Ordering::Release);
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) => return fail("closed by the target".into()),
            Err(error) => return fail(error.to_string()),
            Ok(_) => {}
        }
    }
}
