//! Neighbour (ARP/NDP) and FDB messages for the remote VTEPs on `vxlan.tabby`.

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::routes::family;
use super::socket::Request;
use crate::dataplane::diff::NeighbourChange;
use crate::dataplane::model::Mac;

/// The request for `change` on the device with index `ifindex`:
/// `ip neigh replace IP lladdr MAC dev vxlan.tabby nud permanent`,
/// `bridge fdb replace MAC dev vxlan.tabby dst IP self permanent`, or the deletes.
pub fn request(change: &NeighbourChange, ifindex: u32) -> Request {
    let (message, replace) = match *change {
        NeighbourChange::ReplaceNeighbour { address, mac } => {
            (neighbour(ifindex, address, mac), true)
        }
        NeighbourChange::DeleteNeighbour { address, mac } => {
            (neighbour(ifindex, address, mac), false)
        }
        NeighbourChange::ReplaceFdb { mac, underlay } => (fdb(ifindex, mac, underlay), true),
        NeighbourChange::DeleteFdb { mac, underlay } => (fdb(ifindex, mac, underlay), false),
    };
    if replace {
        Request {
            message: RouteNetlinkMessage::NewNeighbour(message),
            flags: NLM_F_CREATE | NLM_F_REPLACE,
        }
    } else {
        Request {
            message: RouteNetlinkMessage::DelNeighbour(message),
            flags: 0,
        }
    }
}

/// A dump of the ARP and NDP tables of one device (filtered by the kernel).
pub fn dump_neighbours(ifindex: u32) -> RouteNetlinkMessage {
    let mut message = NeighbourMessage::default();
    message
        .attributes
        .push(NeighbourAttribute::IfIndex(ifindex));
    RouteNetlinkMessage::GetNeighbour(message)
}

/// A dump of one device's FDB.
pub fn dump_fdb(ifindex: u32) -> RouteNetlinkMessage {
    let mut message = NeighbourMessage::default();
    message.header.family = AddressFamily::Bridge;
    message.header.ifindex = ifindex;
    RouteNetlinkMessage::GetNeighbour(message)
}

/// A permanent entry on `ifindex` as `(IP, MAC)`: the kernel's own (learned,
/// incomplete, ...) entries are not tabby's and are skipped.
pub fn read(message: &NeighbourMessage, ifindex: u32) -> Option<(IpAddr, Mac)> {
    let header = &message.header;
    if header.ifindex != ifindex || header.state != NeighbourState::Permanent {
        return None;
    }
    let mut address = None;
    let mut mac = None;
    for attribute in &message.attributes {
        match attribute {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                address = Some(IpAddr::V4(*v4))
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                address = Some(IpAddr::V6(*v6))
            }
            // In an FDB (family bridge) the parser cannot tell the remote's family.
            NeighbourAttribute::Destination(NeighbourAddress::Other(bytes)) => {
                address = raw_address(bytes)
            }
            NeighbourAttribute::LinkLayerAddress(bytes) => {
                mac = <[u8; 6]>::try_from(bytes.as_slice()).ok()
            }
            _ => {}
        }
    }
    Some((address?, Mac(mac?)))
}

fn raw_address(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

fn neighbour(ifindex: u32, address: IpAddr, mac: Mac) -> NeighbourMessage {
    let mut message = NeighbourMessage::default();
    message.header.family = family(address);
    message.header.ifindex = ifindex;
    message.header.state = NeighbourState::Permanent;
    message
        .attributes
        .push(NeighbourAttribute::Destination(address.into()));
    message
        .attributes
        .push(NeighbourAttribute::LinkLayerAddress(mac.0.to_vec()));
    message
}

fn fdb(ifindex: u32, mac: Mac, underlay: IpAddr) -> NeighbourMessage {
    let mut message = NeighbourMessage::default();
    message.header.family = AddressFamily::Bridge;
    message.header.ifindex = ifindex;
    message.header.state = NeighbourState::Permanent;
    // `self`: the entry belongs to the VXLAN device's own table, not a bridge's.
    message.header.flags = NeighbourFlags::Own;
    message
        .attributes
        .push(NeighbourAttribute::LinkLayerAddress(mac.0.to_vec()));
    message
        .attributes
        .push(NeighbourAttribute::Destination(underlay.into()));
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: Mac = Mac([0x66, 0xee, 0, 0, 0, 2]);

    fn built(change: NeighbourChange) -> NeighbourMessage {
        match request(&change, 9).message {
            RouteNetlinkMessage::NewNeighbour(m) | RouteNetlinkMessage::DelNeighbour(m) => m,
            other => panic!("not a neighbour message: {other:?}"),
        }
    }

    #[test]
    fn neighbour_and_fdb_entries_read_back_as_written() {
        let address: IpAddr = "10.0.1.0".parse().unwrap();
        let underlay: IpAddr = "fd00::2".parse().unwrap();
        assert_eq!(
            read(
                &built(NeighbourChange::ReplaceNeighbour { address, mac: MAC }),
                9
            ),
            Some((address, MAC))
        );
        assert_eq!(
            read(
                &built(NeighbourChange::ReplaceFdb { mac: MAC, underlay }),
                9
            ),
            Some((underlay, MAC))
        );
    }

    #[test]
    fn an_fdb_remote_the_parser_left_raw_is_read_by_its_length() {
        let mut message = built(NeighbourChange::ReplaceFdb {
            mac: MAC,
            underlay: "192.0.2.2".parse().unwrap(),
        });
        message.attributes[1] =
            NeighbourAttribute::Destination(NeighbourAddress::Other(vec![192, 0, 2, 2]));
        assert_eq!(read(&message, 9), Some(("192.0.2.2".parse().unwrap(), MAC)));
    }

    #[test]
    fn entries_on_other_devices_or_not_permanent_are_not_tabbys() {
        let address: IpAddr = "10.0.1.0".parse().unwrap();
        let message = built(NeighbourChange::ReplaceNeighbour { address, mac: MAC });
        assert_eq!(read(&message, 10), None);
        let mut learned = message;
        learned.header.state = NeighbourState::Reachable;
        assert_eq!(read(&learned, 9), None);
    }
}
