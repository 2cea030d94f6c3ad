//! A BGP client written with tabby's codec, for speaker tests over loopback: each
//! client has its own 127.0.x.y address, the speaker connects to it, and the test
//! announces, withdraws and reads the speaker's routes through it.
#![allow(dead_code)] // each test binary uses its own subset

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bgp::codec::{
    AsPath, Attributes, Capability, Message, NextHop, Nlri, Open, Origin, SessionContext, Update,
    UpdatePacker, decode_message,
};
use bgp::speaker::{self, Notice, PeerConfig, Request, SpeakerConfig, SpeakerHandle};
use bgp::transport::TtlPolicy;
use bytes::{Buf, BytesMut};
use ipnet::IpNet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const TIMEOUT: Duration = Duration::from_secs(10);
pub const SPEAKER_AS: u32 = 64512;

pub fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// A speaker with `config` and nothing else.
pub fn speaker(config: SpeakerConfig) -> SpeakerHandle {
    speaker::start(config).unwrap()
}

pub fn speaker_config() -> SpeakerConfig {
    SpeakerConfig::new(SPEAKER_AS, Ipv4Addr::new(10, 255, 0, 1))
}

/// What a client announces in its OPEN besides 4-octet AS.
#[derive(Debug, Clone, Default)]
pub struct Offer {
    pub capabilities: Vec<Capability>,
}

/// Where a client listens, before the speaker connects.
pub struct Pending {
    pub listener: TcpListener,
    pub address: IpAddr,
    pub asn: u32,
}

impl Pending {
    /// Listens on 127.0.`net`.`host`.
    pub async fn new(net: u8, host: u8, asn: u32) -> Self {
        let address = IpAddr::V4(Ipv4Addr::new(127, 0, net, host));
        let listener = TcpListener::bind(SocketAddr::new(address, 0))
            .await
            .unwrap();
        Self {
            listener,
            address,
            asn,
        }
    }

    /// The speaker's configuration for this client.
    pub fn peer(&self) -> PeerConfig {
        PeerConfig {
            port: self.listener.local_addr().unwrap().port(),
            ttl: TtlPolicy::Hops(64),
            ..PeerConfig::new(self.address, Some(self.asn))
        }
    }

    /// Adds the client to `speaker` with `config` and completes the handshake.
    pub async fn join(self, speaker: &SpeakerHandle, config: PeerConfig, offer: Offer) -> Client {
        speaker.requests.send(Request::AddPeer(config)).unwrap();
        self.accept(offer).await
    }

    /// Takes the speaker's connection and comes up.
    pub async fn accept(self, offer: Offer) -> Client {
        let (stream, _) = tokio::time::timeout(TIMEOUT, self.listener.accept())
            .await
            .expect("the speaker never connected")
            .unwrap();
        let mut client = Client {
            stream,
            context: SessionContext::default(),
            buf: BytesMut::new(),
            address: self.address,
            asn: self.asn,
            listener: Some(self.listener),
            routes: BTreeMap::new(),
            updates: 0,
            end_of_rib: 0,
        };
        client.handshake(offer).await;
        client
    }
}

/// The last announcement of a prefix: attributes and next hop.
pub type Route = (Attributes, NextHop);

pub struct Client {
    pub stream: TcpStream,
    pub context: SessionContext,
    buf: BytesMut,
    pub address: IpAddr,
    pub asn: u32,
    pub listener: Option<TcpListener>,
    /// What the speaker has announced and not withdrawn.
    pub routes: BTreeMap<IpNet, Route>,
    /// UPDATEs read, End-of-RIB markers not counted.
    pub updates: usize,
    pub end_of_rib: usize,
}

impl Client {
    async fn handshake(&mut self, offer: Offer) {
        let Some(Message::Open(theirs)) = self.read().await else {
            panic!("expected the speaker's OPEN");
        };
        let id = match self.address {
            IpAddr::V4(v4) => v4,
            IpAddr::V6(_) => Ipv4Addr::new(10, 9, 9, 9),
        };
        let mut capabilities = vec![Capability::FourOctetAs(self.asn)];
        capabilities.extend(offer.capabilities);
        let ours = Open::new(self.asn, 90, id, capabilities);
        self.context = SessionContext::negotiate(&ours, &theirs);
        self.send_with(Message::Open(ours), SessionContext::default())
            .await;
        self.send(Message::Keepalive).await;
        assert_eq!(self.read().await, Some(Message::Keepalive));
    }

    /// The next whole message; `None` once the speaker closed.
    pub async fn read(&mut self) -> Option<Message> {
        loop {
            match decode_message(&self.buf, &self.context) {
                Ok(Some((message, len))) => {
                    self.buf.advance(len);
                    return Some(message);
                }
                Ok(None) => {}
                Err(error) => panic!("the speaker sent a malformed message: {error}"),
            }
            let read = tokio::time::timeout(TIMEOUT, self.stream.read_buf(&mut self.buf)).await;
            if read.expect("the speaker went silent").unwrap_or(0) == 0 {
                return None;
            }
        }
    }

    pub async fn send(&mut self, message: Message) {
        let context = self.context;
        self.send_with(message, context).await;
    }

    async fn send_with(&mut self, message: Message, context: SessionContext) {
        let mut out = BytesMut::new();
        message.encode(&context, &mut out).unwrap();
        self.stream.write_all(&out).await.unwrap();
    }

    /// Announces `prefixes` with `attributes` via `next_hop`.
    pub async fn announce(
        &mut self,
        prefixes: &[IpNet],
        attributes: &Attributes,
        next_hop: IpAddr,
    ) {
        let nlri: Vec<Nlri> = prefixes.iter().map(|&p| Nlri::new(p)).collect();
        let next_hop = match next_hop {
            IpAddr::V4(v4) => NextHop::V4(v4),
            IpAddr::V6(global) => NextHop::V6 {
                global,
                link_local: None,
            },
        };
        let mut out = BytesMut::new();
        let mut packer = UpdatePacker::new(self.context);
        for family in [true, false] {
            let part: Vec<Nlri> = nlri
                .iter()
                .filter(|n| n.prefix.addr().is_ipv4() == family)
                .cloned()
                .collect();
            packer
                .announce(attributes, next_hop, &part, &mut out)
                .unwrap();
        }
        self.stream.write_all(&out).await.unwrap();
    }

    pub async fn withdraw(&mut self, prefixes: &[IpNet]) {
        let nlri: Vec<Nlri> = prefixes.iter().map(|&p| Nlri::new(p)).collect();
        let mut out = BytesMut::new();
        UpdatePacker::new(self.context)
            .withdraw(&nlri, &mut out)
            .unwrap();
        self.stream.write_all(&out).await.unwrap();
    }

    pub async fn end_of_rib(&mut self) {
        self.send(Message::Update(Update::end_of_rib(bgp::codec::Afi::Ipv4)))
            .await;
    }

    /// Applies one UPDATE to `routes`.
    pub fn apply(&mut self, update: Update) {
        if update.end_of_rib_family().is_some() {
            self.end_of_rib += 1;
            return;
        }
        self.updates += 1;
        for n in update
            .withdrawn
            .iter()
            .chain(update.mp_unreach.iter().flat_map(|u| &u.nlri))
        {
            self.routes.remove(&n.prefix);
        }
        if let Some(next_hop) = update.next_hop {
            for n in &update.nlri {
                self.routes
                    .insert(n.prefix, (update.attributes.clone(), NextHop::V4(next_hop)));
            }
        }
        if let Some(reach) = &update.mp_reach {
            for n in &reach.nlri {
                self.routes
                    .insert(n.prefix, (update.attributes.clone(), reach.next_hop));
            }
        }
    }

    /// Reads UPDATEs until `done(self)` holds.
    pub async fn until(&mut self, what: &str, done: impl Fn(&Client) -> bool) {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while !done(self) {
            let message = tokio::time::timeout_at(deadline, self.read())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "timed out waiting for {what}; routes: {:?}",
                        self.routes.keys()
                    )
                });
            match message {
                Some(Message::Update(update)) => self.apply(update),
                Some(_) => {}
                None => panic!("the speaker closed the session waiting for {what}"),
            }
        }
    }

    /// Waits for the route to `prefix`.
    pub async fn route(&mut self, prefix: IpNet) -> Route {
        self.until(&format!("a route to {prefix}"), |c| {
            c.routes.contains_key(&prefix)
        })
        .await;
        self.routes[&prefix].clone()
    }

    /// Waits until `prefix` is withdrawn.
    pub async fn gone(&mut self, prefix: IpNet) {
        self.until(&format!("{prefix} withdrawn"), |c| {
            !c.routes.contains_key(&prefix)
        })
        .await;
    }

    /// Reads for `window` and fails if `prefix` shows up meanwhile.
    pub async fn never(&mut self, prefix: IpNet, window: Duration) {
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(message) = tokio::time::timeout_at(deadline, self.read()).await {
            if let Some(Message::Update(update)) = message {
                self.apply(update);
            }
            assert!(
                !self.routes.contains_key(&prefix),
                "{prefix} reached {} but must not",
                self.address
            );
        }
    }
}

/// iBGP attributes as a client announces them.
pub fn internal(local_pref: u32) -> Attributes {
    Attributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::default()),
        local_pref: Some(local_pref),
        ..Attributes::default()
    }
}

/// eBGP attributes: the client's AS first.
pub fn external(path: &[u32]) -> Attributes {
    Attributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence(path.to_vec())),
        ..Attributes::default()
    }
}

/// Waits for the owner's notice about `prefix`.
pub async fn best(handle: &mut SpeakerHandle, prefix: IpNet) -> bgp::rib::Change {
    tokio::time::timeout(TIMEOUT, async {
        loop {
            match handle.notices.recv().await.expect("speaker running") {
                Notice::Best(change) if change_prefix(&change) == prefix => return change,
                _ => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no best-path change for {prefix}"))
}

fn change_prefix(change: &bgp::rib::Change) -> IpNet {
    match change {
        bgp::rib::Change::Best { prefix, .. } | bgp::rib::Change::Withdrawn { prefix } => *prefix,
    }
}

pub async fn status(handle: &SpeakerHandle) -> Vec<speaker::PeerStatus> {
    let (reply, status) = tokio::sync::oneshot::channel();
    handle.requests.send(Request::Status(reply)).unwrap();
    status.await.unwrap()
}

impl Client {
    /// A client on a connection taken by hand (to look at the speaker's OPEN
    /// first); [`Client::finish_handshake`] completes it.
    pub fn raw(stream: TcpStream, address: IpAddr, asn: u32) -> Client {
        Client {
            stream,
            context: SessionContext::default(),
            buf: BytesMut::new(),
            address,
            asn,
            listener: None,
            routes: BTreeMap::new(),
            updates: 0,
            end_of_rib: 0,
        }
    }

    /// Answers the speaker's OPEN (already read) and comes up.
    pub async fn finish_handshake(&mut self, theirs: Open) {
        self.finish_handshake_with(theirs, Vec::new()).await;
    }
}

impl Client {
    /// [`Client::finish_handshake`] offering `capabilities` too.
    pub async fn finish_handshake_with(&mut self, theirs: Open, capabilities: Vec<Capability>) {
        let id = Ipv4Addr::new(10, 9, 9, 7);
        let mut all = vec![Capability::FourOctetAs(self.asn)];
        all.extend(capabilities);
        let ours = Open::new(self.asn, 90, id, all);
        self.context = SessionContext::negotiate(&ours, &theirs);
        self.send_with(Message::Open(ours), SessionContext::default())
            .await;
        self.send(Message::Keepalive).await;
        assert_eq!(self.read().await, Some(Message::Keepalive));
    }
}
