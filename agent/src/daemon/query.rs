//! Questions for the agent's loop from the status API, answered from the state the
//! loop owns (the speaker's sessions, best paths, the last desired state), so no
//! state is shared behind a lock.

use std::net::{IpAddr, Ipv4Addr};

use api::resources::Node;
use bgp::rib::Path;
use bgp::speaker::PeerStatus;
use ipnet::IpNet;
use tokio::sync::{mpsc, oneshot, watch};

use super::status::Status;
use crate::desired::Desired;
use crate::peering::PeerKind;

/// Prefixes with their paths, best first.
pub type Routes = Vec<(IpNet, Vec<Path>)>;

/// One question.
#[derive(Debug)]
pub enum Query {
    Peers(oneshot::Sender<Peers>),
    /// Every path of the RIB, best first, of one prefix or all.
    Routes {
        prefix: Option<IpNet>,
        reply: oneshot::Sender<Routes>,
    },
    /// The last desired state.
    Desired(oneshot::Sender<Option<Desired>>),
    /// This node's resource as the agent last saw it.
    Node(oneshot::Sender<Option<Node>>),
}

/// The speaker's sessions, with where each comes from.
#[derive(Debug, Clone, Default)]
pub struct Peers {
    pub local_as: u32,
    pub router_id: Option<Ipv4Addr>,
    pub peers: Vec<Peer>,
}

#[derive(Debug, Clone)]
pub struct Peer {
    pub address: IpAddr,
    pub kind: PeerKind,
    /// The BGPPeer or mesh node it comes from.
    pub source: String,
    pub rr_client: bool,
    /// What the speaker says; `None` before it knows the peer.
    pub status: Option<PeerStatus>,
    /// Its BFD session, when configured.
    pub bfd: Option<bfd::peers::PeerState>,
}

/// The loop's side: where it publishes its status and receives questions.
#[derive(Debug)]
pub struct Reporting {
    pub(super) status: watch::Sender<Status>,
    pub(super) queries: mpsc::UnboundedReceiver<Query>,
}

/// The askers' side, cloned by every server that needs it.
#[derive(Debug, Clone)]
pub struct Handle {
    pub status: watch::Receiver<Status>,
    queries: mpsc::UnboundedSender<Query>,
}

/// A connected pair.
pub fn channels() -> (Reporting, Handle) {
    let (status_sender, status) = watch::channel(Status::default());
    let (queries, receiver) = mpsc::unbounded_channel();
    (
        Reporting {
            status: status_sender,
            queries: receiver,
        },
        Handle { status, queries },
    )
}

impl Handle {
    /// The speaker's sessions; empty while the agent is not running one.
    pub async fn peers(&self) -> Peers {
        self.ask(Query::Peers).await.unwrap_or_default()
    }

    pub async fn routes(&self, prefix: Option<IpNet>) -> Routes {
        self.ask(|reply| Query::Routes { prefix, reply })
            .await
            .unwrap_or_default()
    }

    pub async fn desired(&self) -> Option<Desired> {
        self.ask(Query::Desired).await.flatten()
    }

    pub async fn node(&self) -> Option<Node> {
        self.ask(Query::Node).await.flatten()
    }

    /// `None` when the agent has stopped.
    async fn ask<T>(&self, query: impl FnOnce(oneshot::Sender<T>) -> Query) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        self.queries.send(query(reply)).ok()?;
        answer.await.ok()
    }
}

/// A handle whose loop is a task showing `status` and answering `peers` (for
/// tests of what the servers make of them).
#[cfg(test)]
pub(crate) fn fixed(status: Status, peers: Peers) -> Handle {
    let (mut reporting, handle) = channels();
    reporting.status.send_replace(status);
    tokio::spawn(async move {
        let _keep = reporting.status;
        while let Some(query) = reporting.queries.recv().await {
            if let Query::Peers(reply) = query {
                let _ = reply.send(peers.clone());
            }
        }
    });
    handle
}
