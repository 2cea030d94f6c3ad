//! An rtnetlink socket on tokio: dumps, and batches of requests in one `sendmsg`.
//!
//! Why not the `rtnetlink` crate: its connection sends one datagram per request and
//! asks for an ack for each, so 100,000 routes cost 100,000 `sendmsg` and 100,000
//! `recvmsg` calls. Here a batch of requests goes out in one `sendmsg` (the kernel
//! processes a netlink datagram message by message), only the batch's last request
//! asks for an ack, and the kernel reports every failure anyway (it acks any request
//! that fails, ack flag or not), matched to its request by sequence number. A
//! batch is done when the last request's answer arrives: the kernel answers a
//! socket's requests in order.

use std::io;
use std::os::fd::AsRawFd;

use netlink_packet_core::{
    Emitable, NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NetlinkSerializable,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{Socket as SysSocket, SocketAddr, protocols::NETLINK_ROUTE};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::NetlinkError;

/// Bytes of requests per `sendmsg` (about 1,500 routes). The kernel does the work
/// of a whole datagram inside `sendmsg`, on the runtime thread, so a datagram is
/// kept to a few milliseconds of kernel time; the syscall per 1,500 routes costs
/// nothing measurable next to that work (256 KiB measured the same).
const BATCH_BYTES: usize = 64 * 1024;
/// The receive buffer, forced past `rmem_max` when the process may (CAP_NET_ADMIN,
/// which programming routes needs anyway): the answers to a whole batch, should
/// every request fail, must fit (a batch holds at most ~1,800 requests).
const SOCKET_BUFFER: libc::c_int = 4 * 1024 * 1024;
/// What one queued error answer costs in the receive buffer (skb overhead
/// included), to bound how many requests may be in flight.
const ANSWER_COST: usize = 1024;
/// One `recvmsg`'s buffer: the kernel fills dump datagrams to a few pages at most.
const RECV_BYTES: usize = 1024 * 1024;
/// `sizeof(struct nlmsghdr)`.
const NETLINK_HEADER_LEN: usize = 16;
/// A dump the kernel marks as interrupted by a concurrent change is retried.
const DUMP_ATTEMPTS: usize = 5;

/// One request of a batch: the message and its verb's flags (`NLM_F_CREATE |
/// NLM_F_REPLACE` for a replace, none for a delete).
#[derive(Debug, Clone)]
pub struct Request {
    pub message: RouteNetlinkMessage,
    pub flags: u16,
}

/// The kernel's answer to one request that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The positive errno (`libc::ENOENT`, ...).
    pub errno: i32,
    /// The kernel's extended-ack message, when it gave one.
    pub message: Option<String>,
}

/// An rtnetlink socket in the network namespace of the thread that opened it.
#[derive(Debug)]
pub struct Socket {
    fd: AsyncFd<SysSocket>,
    next_seq: u32,
    max_in_flight: usize,
    rx: Vec<u8>,
}

impl Socket {
    /// Opens a socket in the calling thread's network namespace; needs a tokio runtime.
    pub fn open() -> Result<Self, NetlinkError> {
        let io = |op| move |source| NetlinkError::Io { op, source };
        let mut socket = SysSocket::new(NETLINK_ROUTE).map_err(io("socket"))?;
        socket.bind_auto().map_err(io("bind"))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(io("connect"))?;
        // Failures echo only the request's header, with the kernel's reason.
        socket.set_cap_ack(true).map_err(io("NETLINK_CAP_ACK"))?;
        socket.set_ext_ack(true).map_err(io("NETLINK_EXT_ACK"))?;
        // Lets dump requests filter in the kernel (main table, one device).
        socket
            .set_netlink_get_strict_chk(true)
            .map_err(io("NETLINK_GET_STRICT_CHK"))?;
        force_receive_buffer(&socket);
        let rcvbuf = socket.get_rx_buf_sz().map_err(io("SO_RCVBUF"))?;
        socket.set_non_blocking(true).map_err(io("O_NONBLOCK"))?;
        Ok(Self {
            fd: register(socket).map_err(io("register with tokio"))?,
            next_seq: 1,
            max_in_flight: (rcvbuf / ANSWER_COST).max(1),
            rx: Vec::with_capacity(RECV_BYTES),
        })
    }

    /// Sends `requests` in as few datagrams as fit and returns one answer per request,
    /// in order: `None` when the kernel accepted it.
    pub async fn batch(
        &mut self,
        requests: &[Request],
    ) -> Result<Vec<Option<Refusal>>, NetlinkError> {
        let mut answers = vec![None; requests.len()];
        let mut start = 0;
        let mut tx = Vec::with_capacity(BATCH_BYTES);
        while start < requests.len() {
            tx.clear();
            let first_seq = self.next_seq;
            let mut end = start;
            let mut len = encoded_len(&requests[start]);
            loop {
                let request = &requests[end];
                // Only the batch's last request asks for an ack: it marks the end.
                let next_len = requests.get(end + 1).map(encoded_len);
                let next_fits = next_len.is_some_and(|next| {
                    end + 1 - start < self.max_in_flight && tx.len() + len + next <= BATCH_BYTES
                });
                let ack = if next_fits { 0 } else { NLM_F_ACK };
                self.encode(&request.message, request.flags | ack, len, &mut tx);
                end += 1;
                match next_len {
                    Some(next) if next_fits => len = next,
                    _ => break,
                }
            }
            self.send(&tx).await?;
            self.collect(first_seq, &mut answers[start..end]).await?;
            start = end;
        }
        Ok(answers)
    }

    /// Dumps `request` (a `Get*` message) and returns every object the kernel sent.
    pub async fn dump(
        &mut self,
        request: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        for _ in 0..DUMP_ATTEMPTS {
            let mut tx = Vec::new();
            let seq = self.next_seq;
            self.encode(
                &request,
                NLM_F_DUMP,
                NETLINK_HEADER_LEN + NetlinkSerializable::buffer_len(&request),
                &mut tx,
            );
            self.send(&tx).await?;
            let mut objects = Vec::new();
            let mut interrupted = false;
            'datagrams: loop {
                self.recv().await?;
                for message in messages(&self.rx) {
                    let message = message?;
                    if message.header.sequence_number != seq {
                        continue;
                    }
                    interrupted |= message.header.flags & NLM_F_DUMP_INTR != 0;
                    match message.payload {
                        NetlinkPayload::InnerMessage(object) => objects.push(object),
                        NetlinkPayload::Done(_) => break 'datagrams,
                        NetlinkPayload::Error(error) if error.code.is_some() => {
                            return Err(NetlinkError::Dump {
                                errno: error.raw_code().abs(),
                            });
                        }
                        _ => {}
                    }
                }
            }
            if !interrupted {
                return Ok(objects);
            }
        }
        Err(NetlinkError::DumpInterrupted)
    }

    /// Appends `message` as a netlink message of `len` bytes (see [`encoded_len`]).
    fn encode(&mut self, message: &RouteNetlinkMessage, flags: u16, len: usize, tx: &mut Vec<u8>) {
        let mut header = NetlinkHeader::default();
        header.length = len as u32;
        header.message_type = message.message_type();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        let at = tx.len();
        tx.resize(at + len, 0);
        header.emit(&mut tx[at..at + NETLINK_HEADER_LEN]);
        message.serialize(&mut tx[at + NETLINK_HEADER_LEN..]);
    }

    /// Reads answers until the one for the last request in `answers` arrives.
    async fn collect(
        &mut self,
        first_seq: u32,
        answers: &mut [Option<Refusal>],
    ) -> Result<(), NetlinkError> {
        let last = answers.len() - 1;
        loop {
            match self.recv().await {
                Ok(()) => {}
                // Answers were dropped: the kernel has handled the whole batch (it
                // does so inside `sendmsg`), so report the unknown outcome and let
                // the next resync find what did not happen.
                Err(NetlinkError::Io { source, .. })
                    if source.raw_os_error() == Some(libc::ENOBUFS) =>
                {
                    let lost = Refusal {
                        errno: libc::ENOBUFS,
                        message: None,
                    };
                    answers
                        .iter_mut()
                        .filter(|a| a.is_none())
                        .for_each(|a| *a = Some(lost.clone()));
                    return Ok(());
                }
                Err(other) => return Err(other),
            }
            let mut done = false;
            for message in messages(&self.rx) {
                let message = message?;
                let index = message.header.sequence_number.wrapping_sub(first_seq) as usize;
                let NetlinkPayload::Error(error) = &message.payload else {
                    continue;
                };
                if index > last {
                    continue;
                }
                if error.code.is_some() {
                    answers[index] = Some(Refusal {
                        errno: error.raw_code().abs(),
                        message: extended_ack(message.header.flags, &error.header),
                    });
                }
                done |= index == last;
            }
            if done {
                return Ok(());
            }
        }
    }

    async fn send(&self, bytes: &[u8]) -> Result<(), NetlinkError> {
        let sent = self
            .fd
            .async_io(Interest::WRITABLE, |socket| socket.send(bytes, 0))
            .await
            .map_err(|source| NetlinkError::Io {
                op: "sendmsg",
                source,
            })?;
        if sent != bytes.len() {
            return Err(NetlinkError::Io {
                op: "sendmsg",
                source: io::Error::other("short send"),
            });
        }
        Ok(())
    }

    /// Reads one datagram into `self.rx`.
    async fn recv(&mut self) -> Result<(), NetlinkError> {
        self.rx.clear();
        let rx = &mut self.rx;
        let len = self
            .fd
            .async_io(Interest::READABLE, |socket| {
                socket.recv(rx, libc::MSG_TRUNC)
            })
            .await
            .map_err(|source| NetlinkError::Io {
                op: "recvmsg",
                source,
            })?;
        if len > RECV_BYTES {
            return Err(NetlinkError::Truncated { len });
        }
        Ok(())
    }
}

/// The netlink messages packed in one datagram.
fn messages(
    datagram: &[u8],
) -> impl Iterator<Item = Result<NetlinkMessage<RouteNetlinkMessage>, NetlinkError>> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        let rest = datagram
            .get(at..)
            .filter(|rest| rest.len() >= NETLINK_HEADER_LEN)?;
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len < NETLINK_HEADER_LEN || len > rest.len() {
            let error =
                NetlinkError::Decode(format!("netlink message length {len} at offset {at}"));
            at = datagram.len();
            return Some(Err(error));
        }
        at += (len + 3) & !3;
        Some(
            NetlinkMessage::deserialize(&rest[..len])
                .map_err(|e| NetlinkError::Decode(e.to_string())),
        )
    })
}

/// The kernel's reason for a refusal (NLMSGERR_ATTR_MSG), from the TLVs after the
/// echoed request header of a capped ack.
fn extended_ack(flags: u16, payload: &[u8]) -> Option<String> {
    const NLMSGERR_ATTR_MSG: u16 = 1;
    if flags & NLM_F_ACK_TLVS == 0 || flags & NLM_F_CAPPED == 0 {
        return None;
    }
    let mut tlvs = payload.get(NETLINK_HEADER_LEN..)?;
    while tlvs.len() >= 4 {
        let len = u16::from_ne_bytes([tlvs[0], tlvs[1]]) as usize;
        let kind = u16::from_ne_bytes([tlvs[2], tlvs[3]]) & 0x3fff;
        let value = tlvs.get(4..len)?;
        if kind == NLMSGERR_ATTR_MSG {
            let text = value.split(|&b| b == 0).next().unwrap_or_default();
            return Some(String::from_utf8_lossy(text).into_owned());
        }
        tlvs = tlvs.get(((len + 3) & !3).max(4)..)?;
    }
    None
}

/// The length of a request on the wire: header and payload (NLA-aligned already).
fn encoded_len(request: &Request) -> usize {
    NETLINK_HEADER_LEN + NetlinkSerializable::buffer_len(&request.message)
}

/// Raises the receive buffer, past the sysctl maximum when allowed.
fn force_receive_buffer(socket: &SysSocket) {
    if setsockopt_int(socket, libc::SO_RCVBUFFORCE, SOCKET_BUFFER).is_err() {
        // Without CAP_NET_ADMIN the sysctl maximum applies; batches shrink to fit.
        let _ = setsockopt_int(socket, libc::SO_RCVBUF, SOCKET_BUFFER);
    }
}

#[allow(unsafe_code)]
fn register(socket: SysSocket) -> io::Result<AsyncFd<SysSocket>> {
    // SAFETY: `SysSocket` owns its descriptor (closes it on drop, never swaps it),
    // so it stays open and the same for the whole life of the `AsyncFd`.
    unsafe { AsyncFd::register(socket) }.map_err(io::Error::from)
}

#[allow(unsafe_code)]
fn setsockopt_int(socket: &SysSocket, option: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: setsockopt(2) reads exactly `size_of::<c_int>()` bytes from a live
    // local; the fd is owned by `socket` for the duration of the call.
    // netlink-sys exposes SO_RCVBUF but not the FORCE variants.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_reason_is_read_from_a_capped_extended_ack() {
        let mut payload = vec![0u8; 16];
        let text = b"Nexthop device is not up\0";
        let len = (4 + text.len()) as u16;
        payload.extend_from_slice(&len.to_ne_bytes());
        payload.extend_from_slice(&1u16.to_ne_bytes());
        payload.extend_from_slice(text);
        let flags = NLM_F_ACK_TLVS | NLM_F_CAPPED;
        assert_eq!(
            extended_ack(flags, &payload).as_deref(),
            Some("Nexthop device is not up")
        );
        assert_eq!(extended_ack(0, &payload), None);
    }

    #[test]
    fn a_truncated_datagram_is_a_decode_error_not_a_panic() {
        let mut datagram = vec![0u8; 20];
        datagram[..4].copy_from_slice(&200u32.to_ne_bytes());
        let parsed: Vec<_> = messages(&datagram).collect();
        assert!(
            matches!(parsed.as_slice(), [Err(NetlinkError::Decode(_))]),
            "{parsed:?}"
        );
    }
}
