//! Veth pairs for workloads: created with the peer already inside the pod's
//! namespace, brought up, deleted by name, and read back from a link dump.

use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};

use super::socket::Request;
use crate::dataplane::model::Mac;

/// One end of a veth pair as the plugin creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    pub name: String,
    /// `None` keeps the kernel's default (1500).
    pub mtu: Option<u32>,
    /// `None` lets the kernel pick a random address.
    pub mac: Option<Mac>,
}

/// `ip link add HOST type veth peer name PEER netns NETNS`, both ends down. The
/// peer is born inside the pod's namespace, so its name (usually `eth0`) never
/// clashes with the host's interfaces. EXCL: an existing device is reported.
pub fn create_pair(host: &End, peer: &End, peer_netns: BorrowedFd<'_>) -> Request {
    let mut peer_message = settings(peer);
    peer_message
        .attributes
        .push(LinkAttribute::NetNsFd(peer_netns.as_raw_fd()));
    let mut message = settings(host);
    message.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_message))),
    ]));
    Request {
        message: RouteNetlinkMessage::NewLink(message),
        flags: NLM_F_CREATE | NLM_F_EXCL,
    }
}

/// `ip link set dev INDEX up`.
pub fn set_up(index: u32) -> Request {
    let mut message = LinkMessage::default();
    message.header.index = index;
    message.header.flags = LinkFlags::Up;
    message.header.change_mask = LinkFlags::Up;
    Request {
        message: RouteNetlinkMessage::SetLink(message),
        flags: 0,
    }
}

/// `ip link delete NAME`: the kernel removes the peer and every route through it.
pub fn delete_by_name(name: &str) -> Request {
    let mut message = LinkMessage::default();
    message
        .attributes
        .push(LinkAttribute::IfName(name.to_owned()));
    Request {
        message: RouteNetlinkMessage::DelLink(message),
        flags: 0,
    }
}

/// A device as a link dump reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub index: u32,
    pub mac: Option<Mac>,
    pub mtu: Option<u32>,
    pub up: bool,
}

/// Device `name` in a link dump, if present.
pub fn find(messages: &[RouteNetlinkMessage], name: &str) -> Option<Device> {
    messages.iter().find_map(|message| {
        let RouteNetlinkMessage::NewLink(link) = message else {
            return None;
        };
        let mut found = false;
        let mut device = Device {
            index: link.header.index,
            mac: None,
            mtu: None,
            up: link.header.flags.contains(LinkFlags::Up),
        };
        for attribute in &link.attributes {
            match attribute {
                LinkAttribute::IfName(n) => found = n == name,
                LinkAttribute::Address(bytes) => {
                    device.mac = <[u8; 6]>::try_from(bytes.as_slice()).ok().map(Mac)
                }
                LinkAttribute::Mtu(mtu) => device.mtu = Some(*mtu),
                _ => {}
            }
        }
        found.then_some(device)
    })
}

fn settings(end: &End) -> LinkMessage {
    let mut message = LinkMessage::default();
    message
        .attributes
        .push(LinkAttribute::IfName(end.name.clone()));
    if let Some(mtu) = end.mtu {
        message.attributes.push(LinkAttribute::Mtu(mtu));
    }
    if let Some(mac) = end.mac {
        message
            .attributes
            .push(LinkAttribute::Address(mac.0.to_vec()));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_pair_reads_back_with_the_host_ends_settings() {
        let host = End {
            name: "cali0123456789a".into(),
            mtu: Some(1440),
            mac: Some(Mac([0xee; 6])),
        };
        let peer = End {
            name: "eth0".into(),
            mtu: Some(1440),
            mac: None,
        };
        let netns = std::fs::File::open("/dev/null").unwrap();
        let mut message = create_pair(&host, &peer, std::os::fd::AsFd::as_fd(&netns)).message;
        if let RouteNetlinkMessage::NewLink(link) = &mut message {
            link.header.index = 7;
        }
        let device = find(&[message], "cali0123456789a");
        assert_eq!(
            device,
            Some(Device {
                index: 7,
                mac: Some(Mac([0xee; 6])),
                mtu: Some(1440),
                up: false
            })
        );
    }

    #[test]
    fn a_device_of_another_name_is_not_found() {
        let message = RouteNetlinkMessage::NewLink(match delete_by_name("cali1").message {
            RouteNetlinkMessage::DelLink(link) => link,
            other => panic!("not a link message: {other:?}"),
        });
        assert!(find(std::slice::from_ref(&message), "cali2").is_none());
        assert!(find(&[message], "cali1").is_some());
    }
}
