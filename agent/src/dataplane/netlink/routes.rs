//! Route messages: pure builders from the model, and the reader that normalises
//! the kernel's dump back into the model.

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteNextHop,
    RouteNextHopFlags, RouteProtocol, RouteScope, RouteType, RouteVia,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::link::{Links, MissingDevice};
use super::socket::Request;
use crate::dataplane::model::{NextHop, Route, RouteTarget, TABBY_PROTOCOL};

/// A route from the kernel's dump, sorted by who owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Carries tabby's protocol; `None` when its shape is one tabby never programs
    /// or it names a device that is gone.
    Owned(IpNet, Option<RouteTarget>),
    /// Another protocol's route in the main table.
    Foreign(IpNet),
}

/// `ip route replace ... proto 84`: creates the route or updates it in place.
/// Fails with the name of a device that does not exist.
pub fn replace(route: &Route, links: &Links) -> Result<Request, MissingDevice> {
    let mut message = base(route.dst);
    message.header.kind = RouteType::Unicast;
    match &route.target {
        RouteTarget::Workload { device } => {
            // IPv6 has no route scopes; the kernel reports universe for every route.
            if route.dst.addr().is_ipv4() {
                message.header.scope = RouteScope::Link;
            }
            message
                .attributes
                .push(RouteAttribute::Oif(links.index(device)?));
        }
        RouteTarget::Blackhole => message.header.kind = RouteType::BlackHole,
        RouteTarget::Gateway(hop) => {
            message.attributes.push(gateway(route.dst, hop.gateway));
            if let Some(device) = &hop.device {
                message
                    .attributes
                    .push(RouteAttribute::Oif(links.index(device)?));
            }
            if hop.onlink {
                message.header.flags |= RouteFlags::Onlink;
            }
        }
        RouteTarget::Multipath(hops) => {
            let hops = hops
                .iter()
                .map(|hop| next_hop(route.dst, hop, links))
                .collect::<Result<_, _>>()?;
            message.attributes.push(RouteAttribute::MultiPath(hops));
        }
    }
    Ok(Request {
        message: RouteNetlinkMessage::NewRoute(message),
        flags: NLM_F_CREATE | NLM_F_REPLACE,
    })
}

/// `ip route delete dst proto 84`: the protocol makes the kernel delete only
/// tabby's route, never another protocol's route to the same destination.
pub fn delete(dst: IpNet) -> Request {
    let mut message = base(dst);
    // NOWHERE and UNSPEC are the kernel's wildcards for "any scope, any type".
    message.header.scope = RouteScope::NoWhere;
    message.header.kind = RouteType::Unspec;
    Request {
        message: RouteNetlinkMessage::DelRoute(message),
        flags: 0,
    }
}

/// A dump of the main table, both families, filtered by the kernel.
pub fn dump_request() -> RouteNetlinkMessage {
    let mut message = RouteMessage::default();
    message.header.table = RouteHeader::RT_TABLE_MAIN;
    RouteNetlinkMessage::GetRoute(message)
}

/// Sorts one dumped route; `None` for what tabby ignores (other tables, cache
/// clones, other families).
pub fn read(message: &RouteMessage, links: &Links) -> Option<Seen> {
    let header = &message.header;
    let table = message
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(table) => Some(*table),
            _ => None,
        })
        .unwrap_or(u32::from(header.table));
    if table != u32::from(RouteHeader::RT_TABLE_MAIN) || header.flags.contains(RouteFlags::Cloned) {
        return None;
    }
    let unspecified: IpAddr = match header.address_family {
        AddressFamily::Inet => std::net::Ipv4Addr::UNSPECIFIED.into(),
        AddressFamily::Inet6 => std::net::Ipv6Addr::UNSPECIFIED.into(),
        _ => return None,
    };
    let addr = message.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(dst) => address(dst),
        _ => None,
    });
    let dst = IpNet::new(
        addr.unwrap_or(unspecified),
        header.destination_prefix_length,
    )
    .ok()?;
    if u8::from(header.protocol) != TABBY_PROTOCOL {
        return Some(Seen::Foreign(dst));
    }
    Some(Seen::Owned(dst, target(message, links)))
}

fn target(message: &RouteMessage, links: &Links) -> Option<RouteTarget> {
    let mut oif = None;
    let mut gateway = None;
    let mut multipath = None;
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Oif(index) => oif = Some(*index),
            RouteAttribute::Gateway(gw) => gateway = address(gw),
            RouteAttribute::Via(via) => gateway = via_address(via),
            RouteAttribute::MultiPath(hops) => multipath = Some(hops),
            _ => {}
        }
    }
    match (message.header.kind, multipath, gateway, oif) {
        (RouteType::BlackHole, ..) => Some(RouteTarget::Blackhole),
        (RouteType::Unicast, Some(hops), ..) => {
            let mut hops = hops
                .iter()
                .map(|hop| read_next_hop(hop, links))
                .collect::<Option<Vec<_>>>()?;
            hops.sort();
            Some(match hops.len() {
                0 => return None,
                1 => RouteTarget::Gateway(hops.remove(0)),
                _ => RouteTarget::Multipath(hops),
            })
        }
        (RouteType::Unicast, None, Some(gateway), oif) => Some(RouteTarget::Gateway(NextHop {
            gateway,
            device: match oif {
                Some(index) => Some(links.name(index)?.to_owned()),
                None => None,
            },
            onlink: message.header.flags.contains(RouteFlags::Onlink),
        })),
        (RouteType::Unicast, None, None, Some(index)) => Some(RouteTarget::Workload {
            device: links.name(index)?.to_owned(),
        }),
        _ => None,
    }
}

fn base(dst: IpNet) -> RouteMessage {
    let mut message = RouteMessage::default();
    message.header = RouteHeader {
        address_family: family(dst.addr()),
        destination_prefix_length: dst.prefix_len(),
        table: RouteHeader::RT_TABLE_MAIN,
        protocol: RouteProtocol::from(TABBY_PROTOCOL),
        scope: RouteScope::Universe,
        ..RouteHeader::default()
    };
    message
        .attributes
        .push(RouteAttribute::Destination(dst.addr().into()));
    message
}

/// The next hop's attribute: RTA_GATEWAY in the destination's family, RTA_VIA for
/// an IPv4 destination through an IPv6 next hop (RFC 8950).
fn gateway(dst: IpNet, gateway: IpAddr) -> RouteAttribute {
    match gateway {
        IpAddr::V6(v6) if dst.addr().is_ipv4() => RouteAttribute::Via(RouteVia::Inet6(v6)),
        _ => RouteAttribute::Gateway(gateway.into()),
    }
}

fn next_hop(dst: IpNet, hop: &NextHop, links: &Links) -> Result<RouteNextHop, MissingDevice> {
    let mut next = RouteNextHop::default();
    if let Some(device) = &hop.device {
        next.interface_index = links.index(device)?;
    }
    if hop.onlink {
        next.flags |= RouteNextHopFlags::Onlink;
    }
    next.attributes.push(gateway(dst, hop.gateway));
    Ok(next)
}

fn read_next_hop(hop: &RouteNextHop, links: &Links) -> Option<NextHop> {
    let gateway = hop.attributes.iter().find_map(|a| match a {
        RouteAttribute::Gateway(gw) => address(gw),
        RouteAttribute::Via(via) => via_address(via),
        _ => None,
    })?;
    let device = match hop.interface_index {
        0 => None,
        index => Some(links.name(index)?.to_owned()),
    };
    Some(NextHop {
        gateway,
        device,
        onlink: hop.flags.contains(RouteNextHopFlags::Onlink),
    })
}

fn address(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(v4) => Some((*v4).into()),
        RouteAddress::Inet6(v6) => Some((*v6).into()),
        _ => None,
    }
}

fn via_address(via: &RouteVia) -> Option<IpAddr> {
    match via {
        RouteVia::Inet(v4) => Some((*v4).into()),
        RouteVia::Inet6(v6) => Some((*v6).into()),
        _ => None,
    }
}

pub(super) fn family(addr: IpAddr) -> AddressFamily {
    match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::parse::{ip, net};

    fn links() -> Links {
        Links::from_pairs([(7, "cali1"), (8, "tunl0"), (9, "eth0")])
    }

    /// What the kernel would report for `route`: the request read back.
    fn round_trip(route: &Route) -> Option<Seen> {
        let request = replace(route, &links()).unwrap();
        let RouteNetlinkMessage::NewRoute(message) = request.message else {
            panic!("not a new route")
        };
        read(&message, &links())
    }

    #[test]
    fn every_route_kind_reads_back_as_what_was_requested() {
        let routes = [
            Route::workload(net("10.0.0.1/32"), "cali1").unwrap(),
            Route::workload(net("fd00::1/128"), "cali1").unwrap(),
            Route::blackhole(net("10.0.0.0/26")),
            Route::blackhole(net("fd00::/122")),
            Route::via(net("10.0.1.0/26"), [NextHop::via(ip("192.0.2.2"))]).unwrap(),
            Route::via(
                net("10.0.1.0/26"),
                [NextHop::onlink(ip("192.0.2.2"), "tunl0")],
            )
            .unwrap(),
            Route::via(
                net("10.0.2.0/26"),
                [
                    NextHop::via(ip("192.0.2.3")),
                    NextHop::onlink(ip("192.0.2.4"), "eth0"),
                ],
            )
            .unwrap(),
            Route::via(
                net("fd00:1::/122"),
                [
                    NextHop::via(ip("fd00:ff::2")),
                    NextHop::via(ip("fd00:ff::3")),
                ],
            )
            .unwrap(),
            // IPv4 through IPv6 next hops (RFC 8950).
            Route::via(net("10.0.3.0/26"), [NextHop::via(ip("fd00:ff::2"))]).unwrap(),
            Route::via(
                net("10.0.4.0/26"),
                [
                    NextHop::via(ip("fd00:ff::2")),
                    NextHop::onlink(ip("fd00:ff::3"), "eth0"),
                ],
            )
            .unwrap(),
        ];
        for route in routes {
            assert_eq!(
                round_trip(&route),
                Some(Seen::Owned(route.dst, Some(route.target.clone()))),
                "{route}"
            );
        }
    }

    #[test]
    fn a_route_to_a_missing_device_names_the_device() {
        let route = Route::workload(net("10.0.0.1/32"), "cali9").unwrap();
        assert_eq!(
            replace(&route, &links()).unwrap_err(),
            MissingDevice("cali9".into())
        );
    }

    #[test]
    fn routes_of_other_protocols_are_foreign_and_other_tables_are_ignored() {
        let RouteNetlinkMessage::DelRoute(mut message) = delete(net("10.0.0.0/24")).message else {
            panic!()
        };
        message.header.protocol = RouteProtocol::Static;
        assert_eq!(
            read(&message, &links()),
            Some(Seen::Foreign(net("10.0.0.0/24")))
        );
        message.header.table = 100;
        assert_eq!(read(&message, &links()), None);
    }

    #[test]
    fn an_owned_route_through_a_vanished_device_reads_as_unknown_shape() {
        let mut message = base(net("10.0.0.1/32"));
        message.header.kind = RouteType::Unicast;
        message.attributes.push(RouteAttribute::Oif(99));
        assert_eq!(
            read(&message, &links()),
            Some(Seen::Owned(net("10.0.0.1/32"), None))
        );
    }

    #[test]
    fn deletes_carry_tabbys_protocol_and_wildcard_scope() {
        let RouteNetlinkMessage::DelRoute(message) = delete(net("10.0.0.0/26")).message else {
            panic!()
        };
        assert_eq!(u8::from(message.header.protocol), TABBY_PROTOCOL);
        assert_eq!(message.header.scope, RouteScope::NoWhere);
    }
}
