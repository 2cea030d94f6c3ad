//! Import and export hooks: Rust code the owner plugs into the speaker, called for
//! every route after the built-in checks and the declarative filters (the agent
//! and the reflector judge pod routes against IPAM block ownership with one).

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use crate::codec::Attributes;
use crate::rib::Source;

/// What a hook decides for one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Reject,
    /// Accept with these attributes instead.
    Replace(Attributes),
}

/// Called for each route received from `peer` that passed the loop checks and the
/// peer's import filter.
pub trait ImportHook: Send + Sync {
    /// Rewrites or drops the route.
    fn import(&self, _peer: &Source, _prefix: &IpNet, _attributes: &Attributes) -> Verdict {
        Verdict::Accept
    }

    /// Whether the route may be selected, judged on what can change behind the
    /// speaker's back (who may be the next hop). A route refused here stays in
    /// the RIB but never becomes best, so the next valid path takes its place;
    /// every path is judged again on `Request::Revalidate`.
    fn eligible(
        &self,
        _peer: &Source,
        _prefix: &IpNet,
        _next_hop: IpAddr,
        _attributes: &Attributes,
    ) -> bool {
        true
    }
}

/// Called for each route about to be sent to `peer`, with the attributes it would
/// carry.
pub trait ExportHook: Send + Sync {
    fn export(&self, peer: &Source, prefix: &IpNet, attributes: &Attributes) -> Verdict;
}

/// The hooks a speaker runs; none by default.
#[derive(Clone, Default)]
pub struct Hooks {
    pub import: Option<Arc<dyn ImportHook>>,
    pub export: Option<Arc<dyn ExportHook>>,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("import", &self.import.is_some())
            .field("export", &self.export.is_some())
            .finish()
    }
}

/// Judges a route to a prefix through a next hop, learned from a peer (its
/// address): `Ok` to let it be selected, or why not.
pub type Judgement<T, R> = fn(&T, IpNet, IpAddr, Option<IpAddr>) -> Result<(), R>;

/// An import hook whose [`ImportHook::eligible`] is `judge` over the owner's
/// latest view (a watch channel the owner updates, then sends
/// `Request::Revalidate`). Each refusal goes to the owner on a bounded queue,
/// for its log and metrics; when the queue is full it is counted in `overflow`
/// instead, so a peer sending many refused routes cannot grow the owner's memory.
pub struct JudgeHook<T, R> {
    view: tokio::sync::watch::Receiver<Arc<T>>,
    judge: Judgement<T, R>,
    refused: tokio::sync::mpsc::Sender<R>,
    overflow: Arc<std::sync::atomic::AtomicU64>,
}

impl<T, R> JudgeHook<T, R> {
    pub fn new(
        view: tokio::sync::watch::Receiver<Arc<T>>,
        judge: Judgement<T, R>,
        refused: tokio::sync::mpsc::Sender<R>,
        overflow: Arc<std::sync::atomic::AtomicU64>,
    ) -> Self {
        Self {
            view,
            judge,
            refused,
            overflow,
        }
    }
}

impl<T, R> fmt::Debug for JudgeHook<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JudgeHook")
            .field(
                "queued",
                &(self.refused.max_capacity() - self.refused.capacity()),
            )
            .finish()
    }
}

impl<T: Send + Sync, R: Send + Sync> ImportHook for JudgeHook<T, R> {
    fn eligible(
        &self,
        peer: &Source,
        prefix: &IpNet,
        next_hop: IpAddr,
        _attributes: &Attributes,
    ) -> bool {
        let verdict = (self.judge)(&self.view.borrow(), *prefix, next_hop, peer.peer);
        match verdict {
            Ok(()) => true,
            Err(refusal) => {
                if self.refused.try_send(refusal).is_err() {
                    self.overflow
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use tokio::sync::{mpsc, watch};

    use super::*;

    #[test]
    fn hardening_refusals_beyond_the_queue_are_counted_not_queued() {
        const QUEUE: usize = 16;
        // The view: prefixes longer than this are refused.
        let (_view_tx, view) = watch::channel(Arc::new(24u8));
        let judge: Judgement<u8, IpNet> =
            |longest, prefix, _, _| match prefix.prefix_len() > *longest {
                true => Err(prefix),
                false => Ok(()),
            };
        let (refused, mut queue) = mpsc::channel(QUEUE);
        let overflow = Arc::new(AtomicU64::new(0));
        let hook = JudgeHook::new(view, judge, refused, Arc::clone(&overflow));
        let source = Source {
            peer: Some(IpAddr::from([192, 0, 2, 11])),
            router_id: "192.0.2.11".parse().unwrap(),
            remote_as: 64512,
            internal: true,
            rr_client: false,
        };
        let next_hop = IpAddr::from([192, 0, 2, 11]);
        let none = Attributes::default();
        assert!(hook.eligible(&source, &"10.0.0.0/24".parse().unwrap(), next_hop, &none));
        for i in 0..QUEUE + 10 {
            let prefix = IpNet::new(IpAddr::from([10, 0, 0, i as u8]), 32).unwrap();
            assert!(!hook.eligible(&source, &prefix, next_hop, &none));
        }
        assert_eq!(overflow.load(Ordering::Relaxed), 10);
        let mut queued = 0;
        while queue.try_recv().is_ok() {
            queued += 1;
        }
        assert_eq!(queued, QUEUE);
    }
}
