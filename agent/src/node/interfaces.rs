//! The node's interfaces and their addresses, read over netlink.

use ipnet::IpNet;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{LinkAttribute, LinkFlags};

use super::autodetect::Interface;
use crate::dataplane::NetlinkError;
use crate::dataplane::netlink::socket::Socket;
use crate::dataplane::netlink::{address, link};

/// Every interface of the calling thread's namespace, in index order.
pub async fn read(socket: &mut Socket) -> Result<Vec<Interface>, NetlinkError> {
    let links = socket.dump(link::dump_request()).await?;
    let addresses = socket.dump(address::dump_request()).await?;
    let mut interfaces: Vec<(u32, Interface)> = links
        .iter()
        .filter_map(|message| {
            let RouteNetlinkMessage::NewLink(link) = message else {
                return None;
            };
            let mut name = None;
            let mut mtu = 0;
            for attribute in &link.attributes {
                match attribute {
                    LinkAttribute::IfName(n) => name = Some(n.clone()),
                    LinkAttribute::Mtu(m) => mtu = *m,
                    _ => {}
                }
            }
            let index = link.header.index;
            let interface = Interface {
                name: name?,
                up: link.header.flags.contains(LinkFlags::Up),
                mtu,
                addresses: address::on_device(&addresses, index)
                    .into_iter()
                    .filter_map(|(ip, len)| IpNet::new(ip, len).ok())
                    .collect(),
            };
            Some((index, interface))
        })
        .collect();
    interfaces.sort_by_key(|(index, _)| *index);
    Ok(interfaces.into_iter().map(|(_, i)| i).collect())
}
