//! The speaker's import hook: refuses a mesh or reflector route for a block or
//! address that IPAM gives another node, before best-path selection, so a
//! misbehaving node cannot win over the owner. Every refusal goes to the agent's
//! loop, for the log line and the metric.

use std::sync::Arc;

use bgp::codec::Attributes;
use bgp::rib::Source;
use bgp::speaker::{ImportHook, Verdict};
use ipnet::IpNet;
use tokio::sync::{mpsc, watch};

use crate::desired::{Owners, Rejection};

#[derive(Debug)]
pub struct OwnershipHook {
    owners: watch::Receiver<Arc<Owners>>,
    refused: mpsc::UnboundedSender<Rejection>,
}

impl OwnershipHook {
    pub fn new(
        owners: watch::Receiver<Arc<Owners>>,
        refused: mpsc::UnboundedSender<Rejection>,
    ) -> Self {
        Self { owners, refused }
    }
}

impl ImportHook for OwnershipHook {
    fn import(&self, peer: &Source, prefix: &IpNet, attributes: &Attributes) -> Verdict {
        let originator = attributes.originator_id.unwrap_or(peer.router_id);
        let verdict = self
            .owners
            .borrow()
            .check_announcement(*prefix, peer.internal, originator);
        match verdict {
            Ok(()) => Verdict::Accept,
            Err(refusal) => {
                let _ = self.refused.send(Rejection {
                    prefix: *prefix,
                    next_hop: None,
                    peer: peer.peer,
                    refusal,
                });
                Verdict::Reject
            }
        }
    }
}
