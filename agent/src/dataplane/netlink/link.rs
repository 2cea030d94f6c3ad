//! Link messages: the name/index table, `vxlan.tabby` built and read back, and
//! `tunl0` asked for and set up.

use std::collections::BTreeMap;
use std::net::IpAddr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};

use super::socket::Request;
use crate::dataplane::diff::{ObservedIpip, ObservedVxlan};
use crate::dataplane::model::{IPIP_DEVICE, IpipDevice, Mac, VXLAN_DEVICE, VxlanDevice};

/// A device a change names does not exist (the errno reported is ENODEV).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingDevice(pub String);

/// Interface names and indices, from one link dump.
#[derive(Debug, Clone, Default)]
pub struct Links {
    by_name: BTreeMap<String, u32>,
    by_index: BTreeMap<u32, String>,
}

/// The tunnel devices as a link dump reports them, with their indices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tunnels {
    pub vxlan: Option<(u32, ObservedVxlan)>,
    pub ipip: Option<(u32, ObservedIpip)>,
}

impl Links {
    /// The table from a link dump; also returns the tunnel devices as the kernel has
    /// them.
    pub fn read(messages: &[LinkMessage]) -> (Self, Tunnels) {
        let mut links = Self::default();
        let mut tunnels = Tunnels::default();
        for message in messages {
            let Some(name) = message.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(name) => Some(name.clone()),
                _ => None,
            }) else {
                continue;
            };
            let index = message.header.index;
            match name.as_str() {
                VXLAN_DEVICE => tunnels.vxlan = Some((index, read_vxlan(message))),
                IPIP_DEVICE => tunnels.ipip = Some((index, read_ipip(message))),
                _ => {}
            }
            links.insert(index, name);
        }
        (links, tunnels)
    }

    /// A table from `(index, name)` pairs.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (u32, &'a str)>) -> Self {
        let mut links = Self::default();
        pairs
            .into_iter()
            .for_each(|(index, name)| links.insert(index, name.to_owned()));
        links
    }

    fn insert(&mut self, index: u32, name: String) {
        self.by_name.insert(name.clone(), index);
        self.by_index.insert(index, name);
    }

    pub fn index(&self, name: &str) -> Result<u32, MissingDevice> {
        self.by_name
            .get(name)
            .copied()
            .ok_or_else(|| MissingDevice(name.to_owned()))
    }

    pub fn name(&self, index: u32) -> Option<&str> {
        self.by_index.get(&index).map(String::as_str)
    }
}

/// A dump of every link.
pub fn dump_request() -> RouteNetlinkMessage {
    RouteNetlinkMessage::GetLink(LinkMessage::default())
}

/// `ip link add vxlan.tabby up mtu M address MAC type vxlan id VNI local IP dstport
/// PORT nolearning`. EXCL: a device that appeared meanwhile is a conflict to
/// report, not something to clobber.
pub fn create_vxlan(device: &VxlanDevice) -> Request {
    let mut message = settings(device);
    message
        .attributes
        .push(LinkAttribute::IfName(VXLAN_DEVICE.to_owned()));
    let local = match device.local {
        IpAddr::V4(v4) => InfoVxlan::Local(v4),
        IpAddr::V6(v6) => InfoVxlan::Local6(v6),
    };
    let data = vec![
        InfoVxlan::Id(device.vni),
        local,
        InfoVxlan::Port(device.port),
        InfoVxlan::Learning(false),
    ];
    message.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Vxlan),
        LinkInfo::Data(InfoData::Vxlan(data)),
    ]));
    Request {
        message: RouteNetlinkMessage::NewLink(message),
        flags: NLM_F_CREATE | NLM_F_EXCL,
    }
}

/// `ip link set vxlan.tabby up mtu M address MAC`.
pub fn update_vxlan(index: u32, device: &VxlanDevice) -> Request {
    let mut message = settings(device);
    message.header.index = index;
    Request {
        message: RouteNetlinkMessage::SetLink(message),
        flags: 0,
    }
}

/// `ip link add tunl0 type ipip`. The kernel loads the `ipip` module for it, whose
/// fallback device `tunl0` then exists, so this normally answers EEXIST; on a kernel
/// without IPIP it answers EOPNOTSUPP, which is reported.
pub fn create_ipip() -> Request {
    let mut message = LinkMessage::default();
    message
        .attributes
        .push(LinkAttribute::IfName(IPIP_DEVICE.to_owned()));
    message
        .attributes
        .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
            InfoKind::IpIp,
        )]));
    Request {
        message: RouteNetlinkMessage::NewLink(message),
        flags: NLM_F_CREATE | NLM_F_EXCL,
    }
}

/// `ip link set tunl0 up mtu M`.
pub fn update_ipip(index: u32, device: &IpipDevice) -> Request {
    let mut message = LinkMessage::default();
    message.header.index = index;
    message.header.flags = LinkFlags::Up;
    message.header.change_mask = LinkFlags::Up;
    message.attributes.push(LinkAttribute::Mtu(device.mtu));
    Request {
        message: RouteNetlinkMessage::SetLink(message),
        flags: 0,
    }
}

/// `ip link delete vxlan.tabby`.
pub fn delete(index: u32) -> Request {
    let mut message = LinkMessage::default();
    message.header.index = index;
    Request {
        message: RouteNetlinkMessage::DelLink(message),
        flags: 0,
    }
}

fn settings(device: &VxlanDevice) -> LinkMessage {
    let mut message = LinkMessage::default();
    message.header.flags = LinkFlags::Up;
    message.header.change_mask = LinkFlags::Up;
    message.attributes.push(LinkAttribute::Mtu(device.mtu));
    message
        .attributes
        .push(LinkAttribute::Address(device.mac.0.to_vec()));
    message
}

fn read_ipip(message: &LinkMessage) -> ObservedIpip {
    let mtu = message
        .attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::Mtu(mtu) => Some(*mtu),
            _ => None,
        })
        .unwrap_or(0);
    ObservedIpip {
        mtu,
        up: message.header.flags.contains(LinkFlags::Up),
    }
}

fn read_vxlan(message: &LinkMessage) -> ObservedVxlan {
    let mut mtu = None;
    let mut mac = None;
    let mut data = None;
    for attribute in &message.attributes {
        match attribute {
            LinkAttribute::Mtu(value) => mtu = Some(*value),
            LinkAttribute::Address(bytes) => {
                mac = <[u8; 6]>::try_from(bytes.as_slice()).ok().map(Mac)
            }
            LinkAttribute::LinkInfo(infos) => {
                data = infos.iter().find_map(|info| match info {
                    LinkInfo::Data(InfoData::Vxlan(data)) => Some(data),
                    _ => None,
                });
            }
            _ => {}
        }
    }
    let (mut vni, mut port, mut local, mut learning) = (None, None, None, false);
    for item in data.into_iter().flatten() {
        match item {
            InfoVxlan::Id(id) => vni = Some(*id),
            InfoVxlan::Port(p) => port = Some(*p),
            InfoVxlan::Local(v4) => local = Some(IpAddr::V4(*v4)),
            InfoVxlan::Local6(v6) => local = Some(IpAddr::V6(*v6)),
            InfoVxlan::Learning(on) => learning = *on,
            _ => {}
        }
    }
    let device = (|| {
        Some(VxlanDevice {
            vni: vni?,
            port: port?,
            local: local?,
            mac: mac?,
            mtu: mtu?,
        })
    })();
    ObservedVxlan {
        device,
        learning,
        up: message.header.flags.contains(LinkFlags::Up),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_vxlan_device_reads_back_with_its_settings_and_learning_off() {
        let device = VxlanDevice::new(
            "192.0.2.10".parse().unwrap(),
            Mac([0x66, 0xee, 0, 0, 0, 1]),
            1450,
        );
        let RouteNetlinkMessage::NewLink(mut message) = create_vxlan(&device).message else {
            panic!()
        };
        message.header.index = 42;
        let (links, tunnels) = Links::read(&[message]);
        assert_eq!(links.index(VXLAN_DEVICE), Ok(42));
        assert_eq!(
            tunnels.vxlan,
            Some((
                42,
                ObservedVxlan {
                    device: Some(device),
                    learning: false,
                    up: true
                }
            ))
        );
    }

    #[test]
    fn a_device_named_vxlan_tabby_that_is_not_vxlan_reads_as_no_device() {
        let mut message = LinkMessage::default();
        message.header.index = 5;
        message
            .attributes
            .push(LinkAttribute::IfName(VXLAN_DEVICE.into()));
        let (_, tunnels) = Links::read(&[message]);
        assert_eq!(tunnels.vxlan.map(|(_, v)| v.device), Some(None));
    }

    #[test]
    fn tunl0_set_up_reads_back_up_with_its_mtu() {
        let RouteNetlinkMessage::SetLink(mut message) =
            update_ipip(3, &IpipDevice { mtu: 1480 }).message
        else {
            panic!()
        };
        message
            .attributes
            .push(LinkAttribute::IfName(IPIP_DEVICE.into()));
        let (_, tunnels) = Links::read(&[message]);
        assert_eq!(
            tunnels.ipip,
            Some((
                3,
                ObservedIpip {
                    mtu: 1480,
                    up: true
                }
            ))
        );
    }
}
