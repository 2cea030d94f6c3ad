//! The routes an UPDATE announces and withdraws, whatever field or attribute they
//! came in.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::codec::{NextHop, Update};

/// One announced route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Announced {
    pub prefix: IpNet,
    pub path_id: Option<u32>,
    pub next_hop: IpAddr,
}

/// (announced, withdrawn as prefix and path id)
pub(crate) fn routes(update: &Update) -> (Vec<Announced>, Vec<(IpNet, Option<u32>)>) {
    let mut withdrawn: Vec<(IpNet, Option<u32>)> = update
        .withdrawn
        .iter()
        .chain(update.mp_unreach.iter().flat_map(|u| &u.nlri))
        .map(|n| (n.prefix, n.path_id))
        .collect();
    let mut announced = Vec::new();
    if let Some(next_hop) = update.next_hop {
        announced.extend(update.nlri.iter().map(|n| Announced {
            prefix: n.prefix,
            path_id: n.path_id,
            next_hop: IpAddr::V4(next_hop),
        }));
    }
    if let Some(reach) = &update.mp_reach {
        let next_hop = match reach.next_hop {
            NextHop::V4(address) => IpAddr::V4(address),
            NextHop::V6 { global, .. } => IpAddr::V6(global),
        };
        announced.extend(reach.nlri.iter().map(|n| Announced {
            prefix: n.prefix,
            path_id: n.path_id,
            next_hop,
        }));
    }
    if update.treat_as_withdraw() {
        // RFC 7606: the UPDATE's announcements count as withdrawals.
        withdrawn.extend(announced.drain(..).map(|a| (a.prefix, a.path_id)));
    }
    (announced, withdrawn)
}
