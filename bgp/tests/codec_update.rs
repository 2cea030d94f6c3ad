//! UPDATE values and bytes both ways: 2- and 4-octet AS sessions, AS4_PATH merge,
//! ADD-PATH, MP attributes, End-of-RIB, and the packer's splitting.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};

use bgp::codec::{
    AddPath, Afi, Aggregator, AsPath, Attributes, Community, EncodeError, ExtendedCommunity,
    LargeCommunity, Message, MpReach, MpUnreach, NextHop, Nlri, Origin, Segment, SegmentKind,
    SessionContext, Update, UpdatePacker, decode_message,
};
use bytes::BytesMut;
use common::{BASE_ATTRIBUTES_2, BASE_ATTRIBUTES_4, both_ways, decode, encode, update};

fn nlri(text: &str) -> Nlri {
    Nlri::new(text.parse().unwrap())
}

fn base() -> Attributes {
    Attributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence([65001])),
        ..Attributes::default()
    }
}

fn two_octet() -> SessionContext {
    SessionContext::default()
}

fn four_octet() -> SessionContext {
    SessionContext {
        four_octet_as: true,
        ..SessionContext::default()
    }
}

fn v4_update(attributes: Attributes, prefixes: &[&str]) -> Update {
    Update {
        attributes,
        next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
        nlri: prefixes.iter().map(|p| nlri(p)).collect(),
        ..Update::default()
    }
}

#[test]
fn an_ipv4_announcement_in_both_as_modes() {
    let value = Message::Update(v4_update(base(), &["10.0.0.0/24", "10.1.0.0/16"]));
    both_ways(
        &update("", BASE_ATTRIBUTES_2, "18 0a0000 10 0a01"),
        &value,
        &two_octet(),
    );
    both_ways(
        &update("", BASE_ATTRIBUTES_4, "18 0a0000 10 0a01"),
        &value,
        &four_octet(),
    );
}

#[test]
fn every_attribute_round_trips_as_bytes() {
    let attributes = Attributes {
        med: Some(5),
        local_pref: Some(200),
        atomic_aggregate: true,
        aggregator: Some(Aggregator {
            asn: 65001,
            address: Ipv4Addr::new(192, 0, 2, 9),
        }),
        communities: vec![Community::new(65000, 1), Community::NO_EXPORT],
        originator_id: Some(Ipv4Addr::new(192, 0, 2, 7)),
        cluster_list: vec![Ipv4Addr::new(192, 0, 2, 8)],
        extended_communities: vec![ExtendedCommunity::route_target(65000, 9)],
        large_communities: vec![LargeCommunity {
            global: 4_200_000_000,
            local1: 1,
            local2: 2,
        }],
        ..base()
    };
    let bytes = update(
        "",
        &format!(
            "{BASE_ATTRIBUTES_4} | 80 04 04 00000005 | 40 05 04 000000c8 | 40 06 00 \
             | c0 07 08 0000fde9 c0000209 | c0 08 08 fde80001 ffffff01 | 80 09 04 c0000207 \
             | 80 0a 04 c0000208 | c0 10 08 0002fde800000009 \
             | c0 20 0c fa56ea00 00000001 00000002"
        ),
        "18 0a0000",
    );
    both_ways(
        &bytes,
        &Message::Update(v4_update(attributes, &["10.0.0.0/24"])),
        &four_octet(),
    );
}

#[test]
fn a_4_octet_path_on_a_2_octet_session_uses_as_trans_and_as4_path() {
    let attributes = Attributes {
        as_path: Some(AsPath::sequence([65001, 4_200_000_000, 65002])),
        aggregator: Some(Aggregator {
            asn: 4_200_000_000,
            address: Ipv4Addr::new(192, 0, 2, 9),
        }),
        ..base()
    };
    let bytes = update(
        "",
        "40 01 01 00 | 40 02 08 02 03 fde9 5ba0 fdea | 40 03 04 c0000201 \
         | c0 07 06 5ba0 c0000209 | c0 11 0e 02 03 0000fde9 fa56ea00 0000fdea \
         | c0 12 08 fa56ea00 c0000209",
        "18 0a0000",
    );
    both_ways(
        &bytes,
        &Message::Update(v4_update(attributes, &["10.0.0.0/24"])),
        &two_octet(),
    );
}

#[test]
fn as4_path_shorter_than_as_path_keeps_the_leading_ases_and_confederations() {
    // An OLD speaker (65003) prepended after the NEW ones: AS_PATH has 4 ASes,
    // AS4_PATH the 2 it knew about.
    let bytes = update(
        "",
        "40 01 01 00 | 40 02 0e 03 01 fdf0 | 02 04 fdeb 5ba0 5ba0 fdea | 40 03 04 c0000201 \
         | c0 11 0a 02 02 fa56ea00 fa56ea01",
        "18 0a0000",
    );
    let Message::Update(update) = decode(&bytes, &two_octet()) else {
        panic!()
    };
    let path = update.attributes.as_path.unwrap();
    // The two parts join into one sequence.
    assert_eq!(
        path.segments,
        vec![
            Segment {
                kind: SegmentKind::ConfedSequence,
                asns: vec![65008]
            },
            Segment {
                kind: SegmentKind::Sequence,
                asns: vec![65003, 23456, 4_200_000_000, 4_200_000_001]
            },
        ]
    );
}

#[test]
fn as4_attributes_are_ignored_when_an_old_speaker_aggregated_after_them() {
    // AGGREGATOR names a 2-octet AS next to an AS4_AGGREGATOR: the OLD speaker
    // 65001 aggregated last, so AS4_PATH and AS4_AGGREGATOR are stale.
    let bytes = update(
        "",
        "40 01 01 00 | 40 02 04 02 01 5ba0 | 40 03 04 c0000201 | c0 07 06 fde9 c0000209 \
         | c0 11 06 02 01 fa56ea00 | c0 12 08 fa56ea00 c0000208",
        "18 0a0000",
    );
    let Message::Update(update) = decode(&bytes, &two_octet()) else {
        panic!()
    };
    assert_eq!(update.attributes.as_path, Some(AsPath::sequence([23456])));
    let aggregator = update.attributes.aggregator.unwrap();
    assert_eq!(aggregator.asn, 65001);
}

#[test]
fn a_2_octet_aggregator_alone_does_not_stop_the_as4_path_merge() {
    let bytes = update(
        "",
        "40 01 01 00 | 40 02 04 02 01 5ba0 | 40 03 04 c0000201 | c0 07 06 fde9 c0000209 \
         | c0 11 06 02 01 fa56ea00",
        "18 0a0000",
    );
    let Message::Update(update) = decode(&bytes, &two_octet()) else {
        panic!()
    };
    assert_eq!(
        update.attributes.as_path,
        Some(AsPath::sequence([4_200_000_000]))
    );
    assert_eq!(update.attributes.aggregator.unwrap().asn, 65001);
}

#[test]
fn ipv4_routes_with_path_ids_on_an_add_path_session() {
    let ctx = SessionContext {
        add_path: AddPath::BOTH,
        ..four_octet()
    };
    let mut value = v4_update(base(), &[]);
    value.nlri = vec![
        Nlri::with_path_id("10.0.0.0/24".parse().unwrap(), 1),
        Nlri::with_path_id("10.0.0.0/24".parse().unwrap(), 2),
    ];
    value.withdrawn = vec![Nlri::with_path_id("10.9.0.0/16".parse().unwrap(), 7)];
    let bytes = update(
        "00000007 10 0a09",
        BASE_ATTRIBUTES_4,
        "00000001 18 0a0000 00000002 18 0a0000",
    );
    both_ways(&bytes, &Message::Update(value), &ctx);
}

#[test]
fn ipv6_routes_in_mp_reach_with_a_link_local_next_hop_and_mp_unreach() {
    let value = Update {
        attributes: base(),
        mp_reach: Some(MpReach {
            afi: Afi::Ipv6,
            next_hop: NextHop::V6 {
                global: "2001:db8::1".parse().unwrap(),
                link_local: Some("fe80::1".parse().unwrap()),
            },
            nlri: vec![nlri("2001:db8:1::/48")],
        }),
        mp_unreach: Some(MpUnreach {
            afi: Afi::Ipv6,
            nlri: vec![nlri("2001:db8:2::/64")],
        }),
        ..Update::default()
    };
    let bytes = update(
        "",
        "80 0f 0c 0002 01 40 20010db800020000 | \
         80 0e 2c 0002 01 20 20010db8000000000000000000000001 fe800000000000000000000000000001 00 \
         30 20010db80001 | 40 01 01 00 | 40 02 06 02 01 0000fde9",
        "",
    );
    both_ways(&bytes, &Message::Update(value), &four_octet());
}

#[test]
fn ipv4_routes_with_an_ipv6_next_hop_need_extended_next_hop() {
    let bytes = update(
        "",
        "80 0e 19 0001 01 10 20010db8000000000000000000000001 00 18 0a0000 \
         | 40 01 01 00 | 40 02 06 02 01 0000fde9",
        "",
    );
    assert!(decode_message(&bytes, &four_octet()).is_err());
    let ctx = SessionContext {
        extended_next_hop: true,
        ..four_octet()
    };
    let Message::Update(update) = decode(&bytes, &ctx) else {
        panic!()
    };
    let reach = update.mp_reach.unwrap();
    assert_eq!(reach.afi, Afi::Ipv4);
    assert_eq!(reach.nlri, vec![nlri("10.0.0.0/24")]);
}

#[test]
fn host_bits_past_the_prefix_length_are_cleared() {
    let bytes = update("", BASE_ATTRIBUTES_4, "17 0a0001");
    let Message::Update(update) = decode(&bytes, &four_octet()) else {
        panic!()
    };
    assert_eq!(update.nlri, vec![nlri("10.0.0.0/23")]);
}

#[test]
fn end_of_rib_markers_for_ipv4_and_ipv6() {
    let ipv4 = Message::Update(Update::end_of_rib(Afi::Ipv4));
    both_ways(&update("", "", ""), &ipv4, &four_octet());
    let ipv6 = Message::Update(Update::end_of_rib(Afi::Ipv6));
    both_ways(&update("", "80 0f 03 0002 01", ""), &ipv6, &four_octet());
    for afi in [Afi::Ipv4, Afi::Ipv6] {
        assert_eq!(Update::end_of_rib(afi).end_of_rib_family(), Some(afi));
    }
    assert_eq!(v4_update(base(), &["10.0.0.0/8"]).end_of_rib_family(), None);
}

/// Decodes a stream of UPDATEs back into (update, wire length) pairs.
fn updates(mut bytes: &[u8], ctx: &SessionContext) -> Vec<(Update, usize)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (message, len) = decode_message(bytes, ctx).unwrap().unwrap();
        let Message::Update(update) = message else {
            panic!("not an update")
        };
        out.push((update, len));
        bytes = &bytes[len..];
    }
    out
}

fn slash32s(count: u16) -> Vec<Nlri> {
    (0..count)
        .map(|i| {
            Nlri::new(
                ipnet::Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + u32::from(i)), 32)
                    .unwrap()
                    .into(),
            )
        })
        .collect()
}

#[test]
fn the_packer_fills_each_update_to_4096_bytes_and_splits_the_rest() {
    let mut packer = UpdatePacker::new(four_octet());
    let prefixes = slash32s(2000);
    let mut out = BytesMut::new();
    let next_hop = NextHop::V4(Ipv4Addr::new(192, 0, 2, 1));
    let count = packer
        .announce(&base(), next_hop, &prefixes, &mut out)
        .unwrap();
    let decoded = updates(&out, &four_octet());
    assert_eq!(decoded.len(), count);
    // Header, two length fields and 20 bytes of attributes leave room for 810 /32s
    // of 5 bytes.
    assert_eq!(decoded[0].0.nlri.len(), 810);
    assert_eq!(decoded[0].1, 19 + 4 + 20 + 810 * 5);
    assert_eq!(count, 3);
    let all: Vec<Nlri> = decoded.iter().flat_map(|(u, _)| u.nlri.clone()).collect();
    assert_eq!(all, prefixes);
    assert!(decoded.iter().all(|(u, _)| u.attributes == base()));
}

#[test]
fn the_packer_fills_updates_to_exactly_the_maximum_when_the_prefixes_allow() {
    // 19 + 4 + attributes + 5 per /32: 5 communities make 4096 exact, 1 makes 65535.
    for (ctx, communities, per_message) in [
        (four_octet(), 5, 806),
        (SessionContext::modern(), 1, 13_097),
    ] {
        let attributes = Attributes {
            communities: (0..communities).map(|i| Community::new(65000, i)).collect(),
            ..base()
        };
        let mut out = BytesMut::new();
        let next_hop = NextHop::V4(Ipv4Addr::new(192, 0, 2, 1));
        let prefixes = slash32s(per_message + 1);
        UpdatePacker::new(ctx)
            .announce(&attributes, next_hop, &prefixes, &mut out)
            .unwrap();
        let decoded = updates(&out, &ctx);
        let max = ctx.max_len(2);
        assert_eq!(decoded[0].1, max);
        assert_eq!(decoded[0].0.nlri.len(), per_message as usize);
        assert_eq!(decoded[1].0.nlri, prefixes[per_message as usize..]);
        // One prefix more does not fit one message.
        let mut whole = v4_update(attributes, &[]);
        whole.nlri = prefixes;
        let error = Message::Update(whole)
            .encode(&ctx, &mut BytesMut::new())
            .unwrap_err();
        assert_eq!(
            error,
            EncodeError::MessageTooLong {
                length: max + 5,
                max
            }
        );
    }
}

#[test]
fn extended_messages_let_the_packer_use_65535_bytes() {
    let ctx = SessionContext::modern();
    let mut packer = UpdatePacker::new(ctx);
    let mut out = BytesMut::new();
    let next_hop = NextHop::V4(Ipv4Addr::new(192, 0, 2, 1));
    let count = packer
        .announce(&base(), next_hop, &slash32s(20_000), &mut out)
        .unwrap();
    assert_eq!(count, 2);
    let fixed = 19 + 4 + 20;
    assert_eq!(updates(&out, &ctx)[0].1, fixed + (65535 - fixed) / 5 * 5);
}

#[test]
fn the_packer_puts_ipv6_routes_in_mp_reach_and_splits_them() {
    let ctx = SessionContext {
        add_path: AddPath::BOTH,
        ..four_octet()
    };
    let mut packer = UpdatePacker::new(ctx);
    let prefixes: Vec<Nlri> = (0..1000u32)
        .map(|i| {
            let addr = Ipv6Addr::from((0x2001_0db8u128 << 96) | (u128::from(i) << 64));
            Nlri::with_path_id(ipnet::Ipv6Net::new(addr, 64).unwrap().into(), i)
        })
        .collect();
    let next_hop = NextHop::V6 {
        global: "2001:db8::1".parse().unwrap(),
        link_local: None,
    };
    let mut out = BytesMut::new();
    packer
        .announce(&base(), next_hop, &prefixes, &mut out)
        .unwrap();
    let decoded = updates(&out, &ctx);
    assert!(decoded.len() > 1 && decoded.iter().all(|(_, len)| *len <= 4096));
    let all: Vec<Nlri> = decoded
        .iter()
        .flat_map(|(u, _)| u.mp_reach.as_ref().unwrap().nlri.clone())
        .collect();
    assert_eq!(all, prefixes);
}

#[test]
fn the_packer_withdraws_both_families_and_refuses_mixed_announcements() {
    let ctx = four_octet();
    let mut packer = UpdatePacker::new(ctx);
    let mut out = BytesMut::new();
    let mixed = vec![nlri("10.0.0.0/8"), nlri("2001:db8::/32")];
    assert_eq!(packer.withdraw(&mixed, &mut out).unwrap(), 2);
    let decoded = updates(&out, &ctx);
    assert_eq!(decoded[0].0.withdrawn, vec![mixed[0]]);
    assert_eq!(
        decoded[1].0.mp_unreach.as_ref().unwrap().nlri,
        vec![mixed[1]]
    );
    let next_hop = NextHop::V4(Ipv4Addr::new(192, 0, 2, 1));
    assert!(
        packer
            .announce(&base(), next_hop, &mixed, &mut BytesMut::new())
            .is_err()
    );
}

#[test]
fn a_message_over_the_maximum_is_refused_and_leaves_the_buffer_unchanged() {
    let mut out = BytesMut::from(&b"kept"[..]);
    let big = v4_update(base(), &[]);
    let mut big = big;
    big.nlri = slash32s(1000);
    assert!(
        Message::Update(big)
            .encode(&four_octet(), &mut out)
            .is_err()
    );
    assert_eq!(&out[..], b"kept");
    assert_eq!(encode(&Message::Keepalive, &four_octet()).len(), 19);
}

#[test]
fn a_partial_bit_on_a_known_optional_transitive_attribute_is_kept() {
    // RFC 4271 5: once set by an AS that did not know the attribute, it stays set.
    let mut attributes = Attributes {
        communities: vec![Community::new(65000, 1)],
        large_communities: vec![LargeCommunity {
            global: 1,
            local1: 2,
            local2: 3,
        }],
        ..base()
    };
    attributes.partial.insert(8);
    let bytes = update(
        "",
        &format!("{BASE_ATTRIBUTES_4} | e0 08 04 fde80001 | c0 20 0c 00000001 00000002 00000003"),
        "18 0a0000",
    );
    both_ways(
        &bytes,
        &Message::Update(v4_update(attributes, &["10.0.0.0/24"])),
        &four_octet(),
    );
}

#[test]
fn an_update_left_empty_by_a_discarded_attribute_is_no_end_of_rib() {
    // MP_UNREACH_NLRI of IPv4 multicast, a family the codec does not carry.
    let Message::Update(update) = decode(&update("", "80 0f 03 0001 02", ""), &four_octet()) else {
        panic!("not an update")
    };
    assert_eq!(update.malformed.len(), 1);
    assert_eq!(update.end_of_rib_family(), None);
}
