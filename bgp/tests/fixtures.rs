//! Messages captured from BIRD 2, FRR and GoBGP (see fixtures/README.md): each
//! decodes without error under the context negotiated by the captured OPENs, and
//! re-encodes to the same bytes, or for UPDATEs to the same attributes in another
//! layout.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;

use bgp::codec::{
    Afi, Capability, Community, LargeCommunity, Message, NextHop, Nlri, Open, RouteRefreshKind,
    SegmentKind, SessionContext, Update, UpdatePacker,
};
use bytes::BytesMut;
use common::{assert_bytes, decode, encode, hex, to_hex};

/// One captured message: who sent it, its bytes, and the context its receiver had.
struct Captured {
    sender: String,
    bytes: Vec<u8>,
    ctx: SessionContext,
}

const FILES: [&str; 6] = [
    "bird-frr-2octet.hex",
    "bird-frr-ipv6.hex",
    "gobgp-frr.hex",
    "bird-frr-confederation.hex",
    "bird-frr-role.hex",
    "bird-frr-open-errors.hex",
];

fn load(name: &str) -> Vec<Captured> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut opens: HashMap<String, Open> = HashMap::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if line == "# connection" {
            opens.clear();
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (sender, bytes) = line.split_once(' ').expect("sender and hex");
        let bytes = hex(bytes);
        // OPEN decoding does not depend on the context; the others need it.
        if bytes[18] == 1
            && let Message::Open(open) = decode(&bytes, &SessionContext::default())
        {
            opens.insert(sender.to_owned(), open);
        }
        let mut ctx = match (
            opens.get(sender),
            opens.iter().find(|(name, _)| *name != sender),
        ) {
            (Some(remote), Some((_, local))) => SessionContext::negotiate(local, remote),
            _ => SessionContext::default(),
        };
        // Both ends of that session are members of one confederation: internal.
        ctx.external &= name != "bird-frr-confederation.hex";
        out.push(Captured {
            sender: sender.to_owned(),
            bytes,
            ctx,
        });
    }
    out
}

fn updates(file: &str, sender: &str) -> Vec<Update> {
    load(file)
        .into_iter()
        .filter(|c| c.sender == sender)
        .filter_map(|c| match decode(&c.bytes, &c.ctx) {
            Message::Update(update) => Some(update),
            _ => None,
        })
        .collect()
}

/// (flags without extended length and unused bits, type code, value)
type RawAttribute = (u8, u8, Vec<u8>);

/// An UPDATE split into what two encodings of it must agree on.
#[derive(Debug, PartialEq)]
struct Layout {
    withdrawn: String,
    attributes: Vec<RawAttribute>,
    nlri: String,
}

fn raw_attributes(mut list: &[u8]) -> Vec<RawAttribute> {
    let mut out = Vec::new();
    while let [flags, code, rest @ ..] = list {
        let (len, rest) = match flags & 0x10 {
            0 => (usize::from(rest[0]), &rest[1..]),
            _ => (
                usize::from(u16::from_be_bytes([rest[0], rest[1]])),
                &rest[2..],
            ),
        };
        out.push((flags & 0xe0, *code, rest[..len].to_vec()));
        list = &rest[len..];
    }
    out
}

fn layout(message: &[u8]) -> Layout {
    let body = &message[19..];
    let withdrawn_len = usize::from(u16::from_be_bytes([body[0], body[1]]));
    let (withdrawn, rest) = body[2..].split_at(withdrawn_len);
    let attributes_len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
    let (attributes, nlri) = rest[2..].split_at(attributes_len);
    Layout {
        withdrawn: to_hex(withdrawn),
        attributes: raw_attributes(attributes),
        nlri: to_hex(nlri),
    }
}

/// Type codes the codec decodes.
const KNOWN: [u8; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15, 16, 17, 18, 32];

/// What the codec's encoder makes of a received attribute list: the MP attributes
/// first, the rest by type code; unknown optional non-transitive attributes
/// dropped, unknown transitive ones marked Partial; Partial kept only on the
/// optional transitive attributes that carry it through (AGGREGATOR, COMMUNITIES,
/// EXTENDED_COMMUNITIES, LARGE_COMMUNITY).
fn as_encoded(mut layout: Layout) -> Layout {
    layout
        .attributes
        .retain(|(flags, code, _)| KNOWN.contains(code) || flags & 0x40 != 0);
    for (flags, code, _) in &mut layout.attributes {
        if !KNOWN.contains(code) {
            *flags |= 0x20;
        } else if ![7, 8, 16, 32].contains(code) {
            *flags &= !0x20;
        }
    }
    layout.attributes.sort_by_key(|(_, code, _)| match code {
        15 => (0, 0),
        14 => (1, 0),
        code => (2, *code),
    });
    layout
}

#[test]
fn every_captured_message_re_encodes_to_its_bytes_or_for_updates_its_attributes() {
    let (mut exact, mut reordered) = (0, 0);
    for file in FILES {
        for (i, c) in load(file).iter().enumerate() {
            let what = format!("{file} message {i} from {}", c.sender);
            let message = decode(&c.bytes, &c.ctx);
            if let Message::Update(update) = &message {
                assert!(
                    update.malformed.is_empty(),
                    "{what}: {:?}",
                    update.malformed
                );
            }
            let again = encode(&message, &c.ctx.peer_view());
            assert_eq!(decode(&again, &c.ctx), message, "{what}");
            if again == c.bytes {
                exact += 1;
                continue;
            }
            let Message::Update(_) = message else {
                assert_bytes(&again, &c.bytes, &what);
                unreachable!()
            };
            assert_eq!(as_encoded(layout(&c.bytes)), layout(&again), "{what}");
            reordered += 1;
        }
    }
    assert!(
        exact > 0 && reordered > 0,
        "{exact} exact, {reordered} reordered"
    );
}

/// What the captures exercise, by name.
fn coverage(c: &Captured, seen: &mut BTreeSet<String>) {
    let mut add = |present: bool, name: &str| {
        if present {
            seen.insert(name.to_owned());
        }
    };
    add(c.bytes.len() > 4096, "message over 4096 bytes");
    match decode(&c.bytes, &c.ctx) {
        Message::Open(open) => {
            add(open.extended_form, "RFC 9072 extended OPEN");
            for capability in &open.capabilities {
                let name = format!("{capability:?}");
                let name = name.split(['(', ' ']).next().unwrap();
                add(true, &format!("capability {name}"));
            }
        }
        Message::Update(u) => {
            let a = &u.attributes;
            add(a.origin.is_some(), "ORIGIN");
            add(a.as_path.is_some(), "AS_PATH");
            add(u.next_hop.is_some(), "NEXT_HOP");
            add(a.med.is_some(), "MULTI_EXIT_DISC");
            add(a.local_pref.is_some(), "LOCAL_PREF");
            add(a.atomic_aggregate, "ATOMIC_AGGREGATE");
            add(a.aggregator.is_some(), "AGGREGATOR");
            add(!a.communities.is_empty(), "COMMUNITIES");
            add(a.originator_id.is_some(), "ORIGINATOR_ID");
            add(!a.cluster_list.is_empty(), "CLUSTER_LIST");
            add(!a.extended_communities.is_empty(), "EXTENDED_COMMUNITIES");
            add(!a.large_communities.is_empty(), "LARGE_COMMUNITY");
            add(
                !a.unknown.is_empty(),
                "unknown optional transitive attribute",
            );
            for s in a.as_path.iter().flat_map(|p| &p.segments) {
                add(true, &format!("segment {:?}", s.kind));
            }
            let reach = u.mp_reach.as_ref();
            add(u.nlri.iter().any(|n| n.path_id.is_some()), "ADD-PATH IPv4");
            add(
                reach.is_some_and(|r| {
                    r.afi == Afi::Ipv6 && r.nlri.iter().any(|n| n.path_id.is_some())
                }),
                "ADD-PATH IPv6",
            );
            add(
                reach.is_some_and(|r| {
                    r.afi == Afi::Ipv4 && matches!(r.next_hop, NextHop::V6 { .. })
                }),
                "IPv4 with an IPv6 next hop",
            );
            add(
                reach.is_some_and(|r| {
                    matches!(
                        r.next_hop,
                        NextHop::V6 {
                            link_local: Some(_),
                            ..
                        }
                    )
                }),
                "link-local next hop",
            );
            add(
                reach.is_some_and(|r| r.afi == Afi::Ipv6),
                "MP_REACH_NLRI IPv6",
            );
            add(
                u.mp_unreach.as_ref().is_some_and(|r| !r.nlri.is_empty()),
                "MP_UNREACH_NLRI",
            );
            add(!u.withdrawn.is_empty(), "withdrawn routes");
            if let Some(afi) = u.end_of_rib_family() {
                add(true, &format!("End-of-RIB {afi:?}"));
            }
            let raw = layout(&c.bytes).attributes;
            add(raw.iter().any(|a| a.1 == 17), "AS4_PATH");
            add(raw.iter().any(|a| a.1 == 18), "AS4_AGGREGATOR");
            add(
                raw.iter()
                    .any(|(flags, code, _)| !KNOWN.contains(code) && flags & 0xc0 == 0x80),
                "unknown optional non-transitive attribute",
            );
            add(
                raw.iter()
                    .any(|(flags, code, _)| KNOWN.contains(code) && flags & 0x20 != 0),
                "Partial on a known attribute",
            );
        }
        Message::Notification(n) => {
            add(true, &format!("NOTIFICATION {}/{}", n.code, n.subcode));
            add(
                n.shutdown_communication().is_some(),
                "shutdown communication",
            );
        }
        Message::RouteRefresh(r) => add(true, &format!("ROUTE-REFRESH {:?}", r.kind)),
        Message::Keepalive => add(true, "KEEPALIVE"),
    }
}

#[test]
fn the_captures_cover_every_message_attribute_and_capability_the_codec_knows() {
    let mut seen = BTreeSet::new();
    for file in FILES {
        for c in load(file) {
            coverage(&c, &mut seen);
        }
    }
    let expected = [
        "ADD-PATH IPv4",
        "ADD-PATH IPv6",
        "AGGREGATOR",
        "AS4_AGGREGATOR",
        "AS4_PATH",
        "AS_PATH",
        "ATOMIC_AGGREGATE",
        "CLUSTER_LIST",
        "COMMUNITIES",
        "End-of-RIB Ipv4",
        "End-of-RIB Ipv6",
        "EXTENDED_COMMUNITIES",
        "IPv4 with an IPv6 next hop",
        "KEEPALIVE",
        "LARGE_COMMUNITY",
        "LOCAL_PREF",
        "MP_REACH_NLRI IPv6",
        "MP_UNREACH_NLRI",
        "MULTI_EXIT_DISC",
        "NEXT_HOP",
        "NOTIFICATION 2/0",
        "NOTIFICATION 2/2",
        "NOTIFICATION 6/2",
        "NOTIFICATION 6/4",
        "ORIGIN",
        "ORIGINATOR_ID",
        "Partial on a known attribute",
        "RFC 9072 extended OPEN",
        "ROUTE-REFRESH Begin",
        "ROUTE-REFRESH End",
        "ROUTE-REFRESH Request",
        "capability AddPath",
        "capability EnhancedRouteRefresh",
        "capability ExtendedMessage",
        "capability ExtendedNextHop",
        "capability FourOctetAs",
        "capability GracefulRestart",
        "capability Hostname",
        "capability Multiprotocol",
        "capability RouteRefresh",
        "capability Unknown",
        "link-local next hop",
        "message over 4096 bytes",
        "segment ConfedSequence",
        "segment Sequence",
        "segment Set",
        "shutdown communication",
        "unknown optional non-transitive attribute",
        "unknown optional transitive attribute",
        "withdrawn routes",
    ];
    let missing: Vec<_> = expected.iter().filter(|e| !seen.contains(**e)).collect();
    assert!(missing.is_empty(), "missing {missing:?}; seen {seen:?}");
}

#[test]
fn frr_to_a_2_octet_bird_sends_as_trans_with_as4_path_and_as4_aggregator() {
    let updates = updates("bird-frr-2octet.hex", "frr");
    let aggregate = updates
        .iter()
        .find(|u| u.attributes.atomic_aggregate)
        .expect("FRR's aggregate");
    let aggregator = aggregate.attributes.aggregator.expect("AGGREGATOR");
    // The wire carried AS_TRANS; AS4_AGGREGATOR restores the real AS.
    assert_eq!(aggregator.asn, 4_200_000_000);
    assert_eq!(aggregator.address, Ipv4Addr::new(10, 99, 1, 2));
    let path = aggregate.attributes.as_path.as_ref().unwrap();
    assert_eq!(
        path.segments[0].asns,
        vec![4_200_000_000, 4_200_000_001, 65010]
    );
}

#[test]
fn bird_with_as4_off_sends_its_4_octet_prepend_through_as4_path() {
    let updates = updates("bird-frr-2octet.hex", "bird");
    let update = updates.iter().find(|u| !u.nlri.is_empty()).unwrap();
    let path = update.attributes.as_path.as_ref().unwrap();
    assert_eq!(path.segments[0].asns, vec![65001, 65011, 4_200_000_099]);
    assert_eq!(update.attributes.med, Some(50));
    assert_eq!(
        update.attributes.communities,
        vec![Community::new(65000, 100)]
    );
}

#[test]
fn frr_reflects_gobgp_routes_to_bird_with_originator_and_cluster_list_and_path_ids() {
    let updates = updates("bird-frr-ipv6.hex", "frr");
    let reflected = updates
        .iter()
        .find(|u| u.attributes.originator_id == Some(Ipv4Addr::new(10, 99, 2, 1)))
        .expect("a route from GoBGP");
    assert_eq!(
        reflected.attributes.cluster_list,
        vec![Ipv4Addr::new(10, 99, 1, 2)]
    );
    let reach = reflected.mp_reach.as_ref().expect("MP_REACH_NLRI");
    assert!(matches!(reach.next_hop, NextHop::V6 { .. }));
    assert!(reach.nlri.iter().all(|n: &Nlri| n.path_id.is_some()));
}

/// The first IPv6 MP_REACH_NLRI `sender` sent in `file`.
fn first_ipv6_reach(file: &str, sender: &str) -> bgp::codec::MpReach {
    updates(file, sender)
        .into_iter()
        .filter_map(|u| u.mp_reach)
        .find(|r| r.afi == Afi::Ipv6)
        .expect("IPv6 routes")
}

#[test]
fn bird_sends_ipv6_routes_with_path_ids_to_its_route_reflector() {
    let reach = first_ipv6_reach("bird-frr-ipv6.hex", "bird");
    assert!(matches!(
        reach.next_hop,
        NextHop::V6 {
            link_local: None,
            ..
        }
    ));
    assert!(reach.nlri.iter().all(|n| n.path_id.is_some()));
}

#[test]
fn bird_adds_its_link_local_address_to_the_next_hop_for_an_external_neighbour() {
    let reach = first_ipv6_reach("bird-frr-role.hex", "bird");
    let NextHop::V6 { global, link_local } = reach.next_hop else {
        panic!("{:?}", reach.next_hop)
    };
    assert_eq!(
        global,
        "fd00:99:3::1".parse::<std::net::Ipv6Addr>().unwrap()
    );
    assert!(link_local.is_some_and(|l| l.segments()[0] == 0xfe80));
}

#[test]
fn bird_sends_600_routes_in_one_update_of_more_than_4096_bytes() {
    let captured = load("bird-frr-ipv6.hex");
    let big = captured
        .iter()
        .find(|c| c.sender == "bird" && c.bytes.len() > 4096)
        .expect("an extended message");
    assert!(big.ctx.extended_message);
    let Message::Update(update) = decode(&big.bytes, &big.ctx) else {
        panic!("not an update")
    };
    let nlri = update.mp_reach.unwrap().nlri;
    let bulk = nlri.iter().filter(|n| n.prefix.prefix_len() == 32).count();
    assert_eq!(bulk, 600);
}

#[test]
fn tabby_packs_the_routes_frr_split_at_4096_bytes_into_no_more_updates() {
    // FRR reflects BIRD's 600 /32s to GoBGP, which has no extended messages.
    let captured: Vec<_> = load("gobgp-frr.hex")
        .into_iter()
        .filter(|c| c.sender == "frr" && c.bytes[18] == 2)
        .collect();
    let bulk: Vec<(Captured, Update)> = captured
        .into_iter()
        .filter_map(|c| match decode(&c.bytes, &c.ctx) {
            Message::Update(u) if u.nlri.iter().any(|n| n.prefix.prefix_len() == 32) => {
                Some((c, u))
            }
            _ => None,
        })
        .collect();
    let (first, update) = &bulk[0];
    assert!(!first.ctx.extended_message);
    // One announcement's worth: the messages that share the first's attributes.
    let same: Vec<&Update> = bulk
        .iter()
        .map(|(_, u)| u)
        .take_while(|u| u.attributes == update.attributes)
        .collect();
    let routes: Vec<Nlri> = same.iter().flat_map(|u| u.nlri.clone()).collect();
    assert!(
        same.len() >= 2 && routes.len() >= 600,
        "{} messages",
        same.len()
    );
    assert!(bulk.iter().all(|(c, _)| c.bytes.len() <= 4096));
    let mut out = BytesMut::new();
    let next_hop = NextHop::V4(update.next_hop.unwrap());
    let count = UpdatePacker::new(first.ctx)
        .announce(&update.attributes, next_hop, &routes, &mut out)
        .unwrap();
    assert!(count <= same.len(), "tabby {count}, FRR {}", same.len());
}

#[test]
fn gobgp_sends_large_communities_an_as_set_and_aigp_which_is_dropped() {
    let updates = updates("gobgp-frr.hex", "gobgp");
    let large = updates
        .iter()
        .find(|u| !u.attributes.large_communities.is_empty())
        .expect("large communities");
    assert_eq!(
        large.attributes.large_communities,
        vec![LargeCommunity {
            global: 4_200_000_000,
            local1: 5,
            local2: 6
        }]
    );
    assert!(updates.iter().any(|u| {
        u.attributes.as_path.as_ref().is_some_and(|p| {
            p.segments
                .iter()
                .any(|s| s.kind == SegmentKind::Set && s.asns.contains(&4_200_000_003))
        })
    }));
    // AIGP (26) is optional non-transitive and unknown to the codec.
    let aigp = load("gobgp-frr.hex")
        .into_iter()
        .find(|c| {
            c.sender == "gobgp"
                && c.bytes[18] == 2
                && layout(&c.bytes).attributes.iter().any(|a| a.1 == 26)
        })
        .expect("GoBGP's AIGP");
    let Message::Update(update) = decode(&aigp.bytes, &aigp.ctx) else {
        panic!("not an update")
    };
    assert!(update.attributes.unknown.is_empty() && update.malformed.is_empty());
}

#[test]
fn a_confederation_member_sends_confed_sequences_and_an_as_set_aggregate() {
    let updates = updates("bird-frr-confederation.hex", "frr");
    let aggregate = updates
        .iter()
        .find(|u| {
            u.nlri
                .iter()
                .any(|n| n.prefix.to_string() == "10.203.0.0/16")
        })
        .expect("FRR 2's aggregate");
    let a = &aggregate.attributes;
    assert_eq!(a.aggregator.unwrap().asn, 4_200_000_100);
    let segments = &a.as_path.as_ref().unwrap().segments;
    assert_eq!(segments[0].kind, SegmentKind::ConfedSequence);
    assert_eq!(segments[0].asns, vec![65102, 65101]);
    assert_eq!(segments.last().unwrap().kind, SegmentKind::Set);
    // Between members LOCAL_PREF is carried.
    assert!(a.local_pref.is_some());
}

#[test]
fn bird_as_a_provider_adds_otc_which_the_codec_carries_as_partial() {
    let updates = updates("bird-frr-role.hex", "bird");
    let announced = updates.iter().find(|u| u.mp_reach.is_some()).unwrap();
    let otc = &announced.attributes.unknown[0];
    // RFC 9234 OTC, optional transitive, with BIRD's AS 65200.
    assert_eq!((otc.flags, otc.code), (0xe0, 35));
    assert_eq!(otc.value, 65200u32.to_be_bytes());
    let bird_open = load("bird-frr-role.hex")
        .into_iter()
        .find_map(|c| match decode(&c.bytes, &c.ctx) {
            Message::Open(open) if c.sender == "bird" => Some(open),
            _ => None,
        })
        .unwrap();
    // The role capability (9): provider is 0.
    assert!(bird_open.capabilities.contains(&Capability::Unknown {
        code: 9,
        value: vec![0]
    }));
}

#[test]
fn frr_sends_its_open_in_the_rfc_9072_form_and_both_refuse_a_wrong_peer_as() {
    let captured = load("bird-frr-open-errors.hex");
    let messages: Vec<(String, Message)> = captured
        .iter()
        .map(|c| (c.sender.clone(), decode(&c.bytes, &c.ctx)))
        .collect();
    assert!(messages.iter().any(|(sender, m)| {
        sender == "frr" && matches!(m, Message::Open(open) if open.extended_form)
    }));
    let notifications: BTreeSet<(String, u8, u8, Vec<u8>)> = messages
        .into_iter()
        .filter_map(|(sender, m)| match m {
            Message::Notification(n) => Some((sender, n.code, n.subcode, n.data)),
            _ => None,
        })
        .collect();
    // FRR names the AS it was offered (65300); FRR 8.4 refuses BIRD's short-form
    // OPEN on the session where it sent the extended one (2/0).
    assert!(notifications.contains(&("frr".into(), 2, 2, 65300u16.to_be_bytes().to_vec())));
    assert!(
        notifications
            .iter()
            .any(|n| (n.0.as_str(), n.1, n.2) == ("frr", 2, 0))
    );
}

#[test]
fn frr_announces_its_hostname_and_every_daemon_sends_a_shutdown_communication() {
    let frr_open = load("gobgp-frr.hex")
        .into_iter()
        .find_map(|c| match decode(&c.bytes, &c.ctx) {
            Message::Open(open) if c.sender == "frr" => Some(open),
            _ => None,
        })
        .unwrap();
    assert!(frr_open.capabilities.iter().any(|c| matches!(
        c,
        Capability::Hostname { hostname, .. } if hostname == "tabby-frr"
    )));
    let texts: Vec<(u8, String)> = FILES
        .iter()
        .flat_map(|f| load(f))
        .filter_map(|c| match decode(&c.bytes, &c.ctx) {
            Message::Notification(n) => n
                .shutdown_communication()
                .map(|t| (n.subcode, t.to_owned())),
            _ => None,
        })
        .collect();
    for expected in [
        (2, "tabby fixture: BIRD shutdown"),
        (2, "tabby fixture: FRR shutdown"),
        (4, "tabby fixture: GoBGP reset"),
    ] {
        assert!(
            texts.contains(&(expected.0, expected.1.to_owned())),
            "{texts:?}"
        );
    }
}

#[test]
fn enhanced_route_refresh_is_bracketed_by_begin_and_end_per_family() {
    let refreshes: Vec<(u16, RouteRefreshKind)> = load("bird-frr-ipv6.hex")
        .into_iter()
        .filter_map(|c| match decode(&c.bytes, &c.ctx) {
            Message::RouteRefresh(r) => Some((r.family.afi, r.kind)),
            _ => None,
        })
        .collect();
    for afi in [1, 2] {
        let kinds: Vec<_> = refreshes
            .iter()
            .filter(|(a, _)| *a == afi)
            .map(|(_, k)| *k)
            .collect();
        assert_eq!(
            kinds,
            vec![
                RouteRefreshKind::Request,
                RouteRefreshKind::Begin,
                RouteRefreshKind::End
            ],
            "AFI {afi}"
        );
    }
}
