//! Bringing one peer's Adj-RIB-Out up to date with a set of best-path changes, in
//! as few UPDATEs as the session allows.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::BytesMut;
use ipnet::IpNet;

use crate::codec::{Afi, Attributes, NextHop, Nlri};
use crate::rib::{Interner, Path, Speaker, export};

use super::config::{PeerConfig, Policy};
use super::peer::Up;

/// Encodes what `peer` must be sent so that it holds, for each of `prefixes`, the
/// export of `best(prefix)`. Returns the encoded UPDATEs (empty when nothing
/// changed).
pub(crate) fn sync(
    speaker: &Speaker,
    config: &PeerConfig,
    up: &mut Up,
    interner: &mut Interner,
    prefixes: impl IntoIterator<Item = (IpNet, Option<Path>)>,
) -> BytesMut {
    let policy = PeerConfig::effective(config.export, up.source.internal);
    let mut announce: HashMap<(Arc<Attributes>, IpAddr, Afi), Vec<Nlri>> = HashMap::new();
    let mut withdraw: Vec<Nlri> = Vec::new();
    for (prefix, best) in prefixes {
        let wanted = best
            .filter(|_| policy == Policy::Accept)
            .and_then(|path| export(speaker, &path, &up.source, up.local, config.next_hop))
            .filter(|(_, next_hop)| {
                next_hop.is_ipv4() == prefix.addr().is_ipv4()
                    || up.negotiated.context.extended_next_hop
            });
        match wanted {
            Some((attributes, next_hop)) => {
                let attributes = interner.intern(attributes);
                if up.sent.get(&prefix) != Some(&(Arc::clone(&attributes), next_hop)) {
                    up.sent.insert(prefix, (Arc::clone(&attributes), next_hop));
                    let afi = Nlri::new(prefix).afi();
                    announce
                        .entry((attributes, next_hop, afi))
                        .or_default()
                        .push(Nlri::new(prefix));
                }
            }
            None => {
                if up.sent.remove(&prefix).is_some() {
                    withdraw.push(Nlri::new(prefix));
                }
            }
        }
    }
    let mut out = BytesMut::new();
    for family in [Afi::Ipv4, Afi::Ipv6] {
        let nlri: Vec<Nlri> = withdraw
            .iter()
            .filter(|n| n.afi() == family)
            .cloned()
            .collect();
        if let Err(error) = up.packer.withdraw(&nlri, &mut out) {
            tracing::error!(%error, "cannot encode withdrawals");
        }
    }
    for ((attributes, next_hop, _), nlri) in announce {
        let next_hop = match next_hop {
            IpAddr::V4(v4) => NextHop::V4(v4),
            IpAddr::V6(global) => NextHop::V6 {
                global,
                link_local: None,
            },
        };
        if let Err(error) = up.packer.announce(&attributes, next_hop, &nlri, &mut out) {
            tracing::error!(%error, "cannot encode an announcement");
        }
    }
    out
}
