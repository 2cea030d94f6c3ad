//! The running speaker as the API and the metrics see it, published by the
//! daemon's loop on a watch channel: the speaker to ask (it changes when the
//! speaker restarts), and what the configuration says about each peer.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::AtomicU64;

use bfd::peers::PeerState;
use bgp::speaker::{PeerStatus, Request};
use ipnet::IpNet;
use tokio::sync::{mpsc, oneshot, watch};

use crate::desired::{Desired, Origin};

#[derive(Debug, Clone)]
pub struct SpeakerView {
    pub requests: mpsc::UnboundedSender<Request>,
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    /// Configured and discovered peers.
    pub peers: BTreeMap<IpAddr, Entry>,
    /// Listen ranges and whether their peers are clients.
    pub ranges: Vec<(IpNet, bool)>,
    /// The BFD sessions beside peers' sessions, by peer.
    pub bfd: watch::Receiver<BTreeMap<IpAddr, PeerState>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub origin: Origin,
    pub name: String,
    pub rr_client: bool,
}

impl SpeakerView {
    pub fn new(
        desired: &Desired,
        requests: mpsc::UnboundedSender<Request>,
        bfd: watch::Receiver<BTreeMap<IpAddr, PeerState>>,
    ) -> Self {
        Self {
            bfd,
            requests,
            local_as: desired.speaker.local_as,
            router_id: desired.speaker.router_id,
            peers: desired
                .peers
                .iter()
                .map(|(address, peer)| {
                    let entry = Entry {
                        origin: peer.origin,
                        name: peer.name.clone(),
                        rr_client: peer.config.rr_client,
                    };
                    (*address, entry)
                })
                .collect(),
            ranges: desired
                .speaker
                .listen_ranges
                .iter()
                .map(|r| (r.prefix, r.template.rr_client))
                .collect(),
        }
    }

    /// Where the peer at `address` comes from; `None` for a dynamic peer, with
    /// whether it is a client.
    pub fn describe(&self, address: IpAddr) -> (Option<&Entry>, bool) {
        match self.peers.get(&address) {
            Some(entry) => (Some(entry), entry.rr_client),
            None => {
                let client = self
                    .ranges
                    .iter()
                    .find(|(prefix, _)| prefix.contains(&address))
                    .is_some_and(|(_, client)| *client);
                (None, client)
            }
        }
    }

    /// The speaker's view of every session; `None` when the speaker is gone.
    pub async fn status(&self) -> Option<Vec<PeerStatus>> {
        let (reply, answer) = oneshot::channel();
        self.requests.send(Request::Status(reply)).ok()?;
        answer.await.ok()
    }
}

/// Counters the daemon keeps for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
    pub sessions_up: AtomicU64,
    pub sessions_down: AtomicU64,
    /// Paths the ownership rule refused (they are kept, never reflected).
    pub routes_refused: AtomicU64,
}
