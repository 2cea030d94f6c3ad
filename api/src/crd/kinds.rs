//! The schema of every type in the resources, field by field. A field added to a
//! struct and not here is caught by the example round-trip tests, which validate every
//! example against these schemas.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::{Value, json};

use super::Schema;
use crate::resources::*;
use crate::selector::Selector;
use crate::{enum_schema, object_schema, string_schema};

string_schema!(
    Cidr,
    "an IPv4 or IPv6 prefix, like 10.0.0.0/16 or fd00::/48"
);
string_schema!(GoDuration, "a duration, like 120s, 1m30s or 500ms");
string_schema!(
    PeerAddress,
    "an IP address with an optional port: 10.0.0.1, 10.0.0.1:1179, [fd00::1]:1179"
);
string_schema!(MacAddress, "a MAC address, like 66:2f:8b:01:02:03");
string_schema!(
    Community,
    "a BGP community: aa:nn, or aa:nn:mm for a large one"
);
string_schema!(
    Selector,
    "a label selector: all(), k == \"v\", k in {\"a\"}, has(k), &&, ||, !"
);

/// A plain number or asdot text (`1.10`).
impl Schema for AsNumber {
    fn schema() -> Value {
        json!({"x-kubernetes-int-or-string": true, "description": "an AS number: 64512, or asdot like 1.10"})
    }
}

enum_schema!(EncapsulationMode, ["Always", "CrossSubnet", "Never"]);
enum_schema!(AllowedUse, ["Workload", "Tunnel"]);
enum_schema!(AffinityState, ["pending", "confirmed", "pendingDeletion"]);
// NotEqual and NotIn are Calico's too, refused by validation (no speaker filter).
enum_schema!(MatchOperator, ["Equal", "In"]);
enum_schema!(PeerType, ["eBGP", "iBGP"]);
enum_schema!(FilterAction, ["Accept", "Reject"]);
enum_schema!(SourceAddress, ["UseNodeIP", "None"]);
enum_schema!(NextHopMode, ["Auto", "Self", "Keep"]);
enum_schema!(AddressFamily, ["IPv4", "IPv6"]);
enum_schema!(BindMode, ["None", "NodeIP"]);

object_schema!(IPPoolSpec {
    "cidr" (required): Cidr,
    "blockSize": u8,
    "ipipMode": EncapsulationMode,
    "vxlanMode": EncapsulationMode,
    "natOutgoing": bool,
    "disabled": bool,
    "disableBGPExport": bool,
    "nodeSelector": Selector,
    "allowedUses": Vec<AllowedUse>,
});

object_schema!(IPAMBlockSpec {
    "cidr" (required): Cidr,
    "affinity": Option<String>,
    "allocations": Vec<Option<usize>>,
    "unallocated": Vec<usize>,
    "attributes": Vec<AllocationAttribute>,
    "deleted": bool,
    "sequenceNumber": u64,
    "sequenceNumberForAllocation": BTreeMap<String, u64>,
});

object_schema!(AllocationAttribute {
    "handleID": Option<String>,
    "secondary": BTreeMap<String, String>,
});

object_schema!(BlockAffinitySpec {
    "node" (required): String,
    "cidr" (required): Cidr,
    "state": AffinityState,
});

object_schema!(IPAMHandleSpec {
    "handleID" (required): String,
    "block": BTreeMap<String, u32>,
    "deleted": bool,
});

object_schema!(IPAMConfigSpec {
    "strictAffinity": bool,
    "autoAllocateBlocks": bool,
    "maxBlocksPerHost": u32,
});

object_schema!(IPReservationSpec {
    "reservedCIDRs" (required): Vec<Cidr>,
});

object_schema!(NodeSpec {
    "bgp": Option<NodeBgpSpec>,
    "ipv4VXLANTunnelAddr": Option<Ipv4Addr>,
    "vxlanTunnelMACAddr": Option<MacAddress>,
    "ipv6VXLANTunnelAddr": Option<Ipv6Addr>,
    "vxlanTunnelMACAddrV6": Option<MacAddress>,
});

object_schema!(NodeBgpSpec {
    "ipv4Address": Option<Cidr>,
    "ipv6Address": Option<Cidr>,
    "asNumber": Option<AsNumber>,
    "routeReflectorClusterID": Option<Ipv4Addr>,
    "ipv4IPIPTunnelAddr": Option<Ipv4Addr>,
    "pinnedAddresses": Vec<AddressFamily>,
});

object_schema!(WorkloadEndpointSpec {
    "node" (required): String,
    "namespace" (required): String,
    "pod" (required): String,
    "containerID" (required): String,
    "endpoint": String,
    "interfaceName" (required): String,
    "mac": Option<MacAddress>,
    "ipNetworks": Vec<Cidr>,
});

object_schema!(BGPConfigurationSpec {
    "asNumber": Option<AsNumber>,
    "nodeToNodeMeshEnabled": Option<bool>,
    "listenPort": Option<u16>,
    "communities": Vec<NamedCommunity>,
    "prefixAdvertisements": Vec<PrefixAdvertisement>,
    "serviceClusterIPs": Vec<CidrEntry>,
    "serviceExternalIPs": Vec<CidrEntry>,
    "serviceLoadBalancerIPs": Vec<CidrEntry>,
    "nodeMeshPassword": Option<BgpPassword>,
    "nodeMeshMaxRestartTime": Option<GoDuration>,
    "bindMode": Option<BindMode>,
    "bfd": Option<BfdSpec>,
});

object_schema!(BfdSpec {
    "enabled": bool,
    "minRx": Option<GoDuration>,
    "minTx": Option<GoDuration>,
    "multiplier": Option<u8>,
    "gracefulRestartOnDown": bool,
    "strict": bool,
});

object_schema!(NamedCommunity { "name" (required): String, "value" (required): Community });
object_schema!(PrefixAdvertisement { "cidr" (required): Cidr, "communities" (required): Vec<String> });
object_schema!(CidrEntry { "cidr" (required): Cidr });
object_schema!(SecretKeyRef { "name" (required): String, "key" (required): String });
object_schema!(BgpPassword { "secretKeyRef": Option<SecretKeyRef>, "file": Option<String> });

object_schema!(BGPPeerSpec {
    "node": Option<String>,
    "nodeSelector": Option<Selector>,
    "peerIP": Option<PeerAddress>,
    "peerSelector": Option<Selector>,
    "asNumber": Option<AsNumber>,
    "password": Option<BgpPassword>,
    "sourceAddress": SourceAddress,
    "keepaliveTime": Option<GoDuration>,
    "maxRestartTime": Option<GoDuration>,
    "nextHopMode": NextHopMode,
    "ttlSecurity": Option<u8>,
    "numAllowedLocalASNumbers": Option<u8>,
    "filters": Vec<String>,
    "maxPrefixes": Option<u32>,
    "advertiseLearnedRoutes": bool,
    "bfd": Option<BfdSpec>,
});

object_schema!(BGPFilterSpec {
    "exportV4": Vec<FilterRule>,
    "importV4": Vec<FilterRule>,
    "exportV6": Vec<FilterRule>,
    "importV6": Vec<FilterRule>,
});

object_schema!(FilterRule {
    "cidr": Option<Cidr>,
    "matchOperator": Option<MatchOperator>,
    "prefixLength": Option<PrefixLength>,
    "peerType": Option<PeerType>,
    "communities": Option<CommunityMatch>,
    "action" (required): FilterAction,
    "operations": Vec<FilterOperation>,
});

object_schema!(PrefixLength { "min": Option<u8>, "max": Option<u8> });
object_schema!(CommunityMatch { "values" (required): Vec<Community> });

/// Externally tagged, as serde writes it: `{addCommunity: {value}}` or
/// `{prependASPath: {prefix}}`.
impl Schema for FilterOperation {
    fn schema() -> Value {
        let add = super::schema::object(&[("value", Community::schema(), true)]);
        let prepend = super::schema::object(&[("prefix", Vec::<AsNumber>::schema(), true)]);
        let mut schema = super::schema::object(&[
            ("addCommunity", add, false),
            ("prependASPath", prepend, false),
        ]);
        schema["minProperties"] = 1.into();
        schema["maxProperties"] = 1.into();
        schema
    }
}
