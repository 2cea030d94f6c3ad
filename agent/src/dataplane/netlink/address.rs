//! Interface addresses: a workload's (or a tunnel device's) host address (/32 or
//! /128), its removal, and the dump that reads them back.

use std::net::IpAddr;

use ipnet::IpNet;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};

use super::routes::family;
use super::socket::Request;

/// `ip addr replace ADDRESS/32 dev INDEX nodad` (`/128` for IPv6): a host address
/// without a prefix route, usable at once (no duplicate address detection, since
/// IPAM already guarantees the address is unique).
pub fn replace_host_address(index: u32, address: IpAddr) -> Request {
    let mut message = AddressMessage::default();
    message.header.family = family(address);
    message.header.prefix_len = if address.is_ipv4() { 32 } else { 128 };
    message.header.index = index;
    message.header.scope = AddressScope::Universe;
    message.header.flags = AddressHeaderFlags::Nodad;
    message.attributes.push(AddressAttribute::Local(address));
    message.attributes.push(AddressAttribute::Address(address));
    message
        .attributes
        .push(AddressAttribute::Flags(AddressFlags::Nodad));
    Request {
        message: RouteNetlinkMessage::NewAddress(message),
        flags: NLM_F_CREATE | NLM_F_REPLACE,
    }
}

/// `ip addr delete ADDRESS/LEN dev INDEX`.
pub fn delete(index: u32, address: IpNet) -> Request {
    let mut message = AddressMessage::default();
    message.header.family = family(address.addr());
    message.header.prefix_len = address.prefix_len();
    message.header.index = index;
    message
        .attributes
        .push(AddressAttribute::Local(address.addr()));
    message
        .attributes
        .push(AddressAttribute::Address(address.addr()));
    Request {
        message: RouteNetlinkMessage::DelAddress(message),
        flags: 0,
    }
}

/// A dump of every address, both families.
pub fn dump_request() -> RouteNetlinkMessage {
    RouteNetlinkMessage::GetAddress(AddressMessage::default())
}

/// The addresses (with prefix lengths) on device `index` in an address dump.
pub fn on_device(messages: &[RouteNetlinkMessage], index: u32) -> Vec<(IpAddr, u8)> {
    messages
        .iter()
        .filter_map(|message| match message {
            RouteNetlinkMessage::NewAddress(a) if a.header.index == index => Some(a),
            _ => None,
        })
        .filter_map(|a| {
            // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer's on
            // point-to-point links and the only one IPv6 sends.
            let local = a.attributes.iter().find_map(|attr| match attr {
                AddressAttribute::Local(ip) => Some(*ip),
                _ => None,
            });
            let address = a.attributes.iter().find_map(|attr| match attr {
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            });
            Some((local.or(address)?, a.header.prefix_len))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_address_reads_back_on_its_device_only() {
        let v4: IpAddr = "10.244.0.5".parse().unwrap();
        let v6: IpAddr = "fd00:244::5".parse().unwrap();
        let as_answer = |request: Request| match request.message {
            RouteNetlinkMessage::NewAddress(a) => RouteNetlinkMessage::NewAddress(a),
            other => panic!("not an address: {other:?}"),
        };
        let dump = [
            as_answer(replace_host_address(3, v4)),
            as_answer(replace_host_address(3, v6)),
            as_answer(replace_host_address(4, "10.0.0.1".parse().unwrap())),
        ];
        assert_eq!(on_device(&dump, 3), vec![(v4, 32), (v6, 128)]);
    }
}
