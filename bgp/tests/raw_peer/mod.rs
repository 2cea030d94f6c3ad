//! A hand-driven BGP peer on a loopback socket, for session tests that need to send
//! exactly the bytes they choose.
#![allow(dead_code)] // each test binary uses its own subset

use std::net::Ipv4Addr;
use std::time::Duration;

use bgp::codec::{Capability, Message, Open, SessionContext, decode_message};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const PEER_AS: u32 = 65001;
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// One end of a connection, with what was read but not yet decoded.
#[derive(Debug)]
pub struct RawPeer {
    pub stream: TcpStream,
    /// What the two OPENs agreed, once the test says so.
    pub context: SessionContext,
    buf: BytesMut,
}

impl RawPeer {
    pub fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            context: SessionContext::default(),
            buf: BytesMut::new(),
        }
    }

    /// The next whole message; `None` once the other side closed.
    pub async fn read(&mut self) -> Option<Message> {
        loop {
            if let Some((message, len)) = decode_message(&self.buf, &self.context).unwrap() {
                let _ = self.buf.split_to(len);
                return Some(message);
            }
            let read = tokio::time::timeout(TIMEOUT, self.stream.read_buf(&mut self.buf)).await;
            if read.expect("the session went silent").unwrap_or(0) == 0 {
                return None;
            }
        }
    }

    pub async fn send(&mut self, message: Message) {
        let bytes = self.encode(message);
        self.send_bytes(&bytes).await;
    }

    pub fn encode(&self, message: Message) -> Vec<u8> {
        let mut out = BytesMut::new();
        message.encode(&self.context, &mut out).unwrap();
        out.to_vec()
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }
}

pub fn encode(message: Message) -> Vec<u8> {
    let mut out = BytesMut::new();
    message
        .encode(&SessionContext::default(), &mut out)
        .unwrap();
    out.to_vec()
}

pub fn open(router_id: Ipv4Addr) -> Message {
    Message::Open(Open::new(
        PEER_AS,
        90,
        router_id,
        vec![Capability::FourOctetAs(PEER_AS)],
    ))
}
