//! Properties: every message the encoder writes decodes to the same value, in both
//! AS modes and with and without ADD-PATH; no input makes the decoder panic.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};

use bgp::codec::{
    AddPath, AddPathMode, Afi, Aggregator, AsPath, Attributes, Capability, Community,
    ExtendedCommunity, ExtendedNextHop, Family, GracefulRestart, LargeCommunity, Message, MpReach,
    MpUnreach, NextHop, Nlri, Notification, Open, Origin, ParameterLayout, PartialFlags,
    RawAttribute, RouteRefresh, RouteRefreshKind, Segment, SegmentKind, SessionContext, Update,
    decode_message,
};
use bytes::BytesMut;
use common::to_hex;
use ipnet::{Ipv4Net, Ipv6Net};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

/// Sessions as the encoding side sees them: any AS mode, message size and next hop
/// capability, ADD-PATH per family and direction. Internal: external sessions drop
/// attributes on purpose (rfc7606.rs covers that).
fn context() -> impl Strategy<Value = SessionContext> {
    (any::<(bool, bool, bool)>(), any::<[bool; 4]>()).prop_map(
        |((four_octet_as, extended_message, extended_next_hop), [a, b, c, d])| SessionContext {
            four_octet_as,
            extended_message,
            extended_next_hop,
            add_path: AddPath {
                receive_ipv4: a,
                receive_ipv6: b,
                send_ipv4: c,
                send_ipv6: d,
            },
            external: false,
        },
    )
}

fn nlri(afi: Afi, ctx: SessionContext) -> impl Strategy<Value = Nlri> {
    let ids = ctx.sends_path_ids(afi);
    let prefix = match afi {
        Afi::Ipv4 => (any::<u32>(), 0..=32u8)
            .prop_map(|(a, l)| Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc().into())
            .boxed(),
        Afi::Ipv6 => (any::<u128>(), 0..=128u8)
            .prop_map(|(a, l)| Ipv6Net::new(Ipv6Addr::from(a), l).unwrap().trunc().into())
            .boxed(),
    };
    (prefix, any::<u32>()).prop_map(move |(prefix, id)| Nlri {
        prefix,
        path_id: ids.then_some(id),
    })
}

/// AS numbers that survive the session: any on 4-octet sessions; on 2-octet ones
/// confederation members must fit 2 octets (AS4_PATH does not carry them).
fn as_path(four_octet: bool) -> impl Strategy<Value = AsPath> {
    let asn = || prop_oneof![1..65535u32, any::<u32>()];
    let confed_asn = move || {
        if four_octet {
            any::<u32>().boxed()
        } else {
            (1..65535u32).boxed()
        }
    };
    let confed = vec(
        (
            prop_oneof![
                Just(SegmentKind::ConfedSequence),
                Just(SegmentKind::ConfedSet)
            ],
            vec(confed_asn(), 1..4),
        ),
        0..2,
    );
    let rest = vec(
        (
            prop_oneof![Just(SegmentKind::Sequence), Just(SegmentKind::Set)],
            vec(asn(), 1..6),
        ),
        0..3,
    );
    (confed, rest).prop_map(|(confed, rest)| AsPath {
        segments: confed
            .into_iter()
            .chain(rest)
            .map(|(kind, asns)| Segment { kind, asns })
            .collect(),
    })
}

fn attributes(four_octet: bool) -> impl Strategy<Value = Attributes> {
    let unknown = proptest::collection::btree_map(100..=120u8, vec(any::<u8>(), 0..8), 0..3)
        .prop_map(|m| {
            m.into_iter()
                .map(|(code, value)| RawAttribute {
                    flags: 0xe0,
                    code,
                    value,
                })
                .collect::<Vec<_>>()
        });
    (
        (
            option::of(prop_oneof![
                Just(Origin::Igp),
                Just(Origin::Egp),
                Just(Origin::Incomplete)
            ]),
            option::of(as_path(four_octet)),
            option::of(any::<u32>()),
            option::of(any::<u32>()),
            any::<bool>(),
            option::of(any::<(u32, u32)>()),
        ),
        (
            vec(any::<u32>().prop_map(Community), 0..4),
            option::of(any::<u32>()),
            vec(any::<u32>(), 0..3),
            vec(any::<[u8; 8]>().prop_map(ExtendedCommunity), 0..3),
            vec(any::<(u32, u32, u32)>(), 0..3),
            unknown,
        ),
        vec(prop_oneof![Just(7u8), Just(8), Just(16), Just(32)], 0..4),
    )
        .prop_map(
            |((origin, as_path, med, local_pref, atomic_aggregate, aggregator), rest, partial)| {
                let (communities, originator, cluster, extended_communities, large, unknown) = rest;
                let mut attributes = Attributes {
                    origin,
                    as_path,
                    med,
                    local_pref,
                    atomic_aggregate,
                    aggregator: aggregator.map(|(asn, a)| Aggregator {
                        asn,
                        address: Ipv4Addr::from(a),
                    }),
                    communities,
                    originator_id: originator.map(Ipv4Addr::from),
                    cluster_list: cluster.into_iter().map(Ipv4Addr::from).collect(),
                    extended_communities,
                    large_communities: large
                        .into_iter()
                        .map(|(global, local1, local2)| LargeCommunity {
                            global,
                            local1,
                            local2,
                        })
                        .collect(),
                    unknown,
                    partial: PartialFlags::default(),
                };
                // The Partial bit of an attribute that is there.
                for code in partial {
                    let present = match code {
                        7 => attributes.aggregator.is_some(),
                        8 => !attributes.communities.is_empty(),
                        16 => !attributes.extended_communities.is_empty(),
                        _ => !attributes.large_communities.is_empty(),
                    };
                    if present {
                        attributes.partial.insert(code);
                    }
                }
                attributes
            },
        )
}

/// A next hop for routes of `afi`: IPv4 routes take an IPv6 one only when the
/// session allows it (RFC 8950).
fn next_hop(afi: Afi, ctx: SessionContext) -> BoxedStrategy<NextHop> {
    let v6 = (any::<u128>(), option::of(any::<u128>())).prop_map(|(g, ll)| NextHop::V6 {
        global: Ipv6Addr::from(g),
        link_local: ll.map(Ipv6Addr::from),
    });
    let v4 = any::<u32>().prop_map(|a| NextHop::V4(Ipv4Addr::from(a)));
    match afi {
        Afi::Ipv6 => v6.boxed(),
        Afi::Ipv4 if ctx.extended_next_hop => prop_oneof![v4, v6].boxed(),
        Afi::Ipv4 => v4.boxed(),
    }
}

fn update(ctx: SessionContext) -> impl Strategy<Value = Update> {
    let afi = prop_oneof![Just(Afi::Ipv4), Just(Afi::Ipv6)];
    (
        vec(nlri(Afi::Ipv4, ctx), 0..8),
        attributes(ctx.four_octet_as),
        option::of(any::<u32>()),
        vec(nlri(Afi::Ipv4, ctx), 0..8),
        option::of(afi.clone().prop_flat_map(move |afi| {
            (next_hop(afi, ctx), vec(nlri(afi, ctx), 0..8)).prop_map(move |(next_hop, nlri)| {
                MpReach {
                    afi,
                    next_hop,
                    nlri,
                }
            })
        })),
        option::of(afi.prop_flat_map(move |afi| {
            vec(nlri(afi, ctx), 0..8).prop_map(move |nlri| MpUnreach { afi, nlri })
        })),
    )
        .prop_map(
            |(withdrawn, mut attributes, next_hop, nlri, mp_reach, mp_unreach)| {
                let mut next_hop = next_hop.map(Ipv4Addr::from);
                // Routes need the well-known attributes, or RFC 7606 withdraws them.
                let reachable =
                    !nlri.is_empty() || mp_reach.as_ref().is_some_and(|r| !r.nlri.is_empty());
                if reachable {
                    attributes.origin.get_or_insert(Origin::Igp);
                    attributes.as_path.get_or_insert_with(AsPath::default);
                }
                if !nlri.is_empty() {
                    next_hop.get_or_insert(Ipv4Addr::new(192, 0, 2, 1));
                }
                Update {
                    withdrawn,
                    attributes,
                    next_hop,
                    nlri,
                    mp_reach,
                    mp_unreach,
                    malformed: Vec::new(),
                }
            },
        )
}

fn family() -> impl Strategy<Value = Family> {
    (any::<u16>(), any::<u8>()).prop_map(|(afi, safi)| Family { afi, safi })
}

fn capability() -> impl Strategy<Value = Capability> {
    let mode = prop_oneof![
        Just(AddPathMode::Receive),
        Just(AddPathMode::Send),
        Just(AddPathMode::Both)
    ];
    prop_oneof![
        family().prop_map(Capability::Multiprotocol),
        Just(Capability::RouteRefresh),
        Just(Capability::EnhancedRouteRefresh),
        Just(Capability::ExtendedMessage),
        any::<u32>().prop_map(Capability::FourOctetAs),
        vec((family(), mode), 0..4).prop_map(Capability::AddPath),
        vec((family(), any::<u16>()), 0..3).prop_map(|v| Capability::ExtendedNextHop(
            v.into_iter()
                .map(|(nlri, next_hop_afi)| ExtendedNextHop { nlri, next_hop_afi })
                .collect()
        )),
        (
            any::<bool>(),
            any::<bool>(),
            0..4096u16,
            vec((family(), any::<bool>()), 0..3)
        )
            .prop_map(|(restarting, notification, restart_time, families)| {
                Capability::GracefulRestart(GracefulRestart {
                    restarting,
                    notification,
                    restart_time,
                    families,
                })
            }),
        ("[a-z0-9.-]{0,20}", "[a-z0-9.-]{0,20}")
            .prop_map(|(hostname, domain)| Capability::Hostname { hostname, domain }),
        (200..=255u8, vec(any::<u8>(), 0..10))
            .prop_map(|(code, value)| Capability::Unknown { code, value }),
    ]
}

fn open() -> impl Strategy<Value = Open> {
    (
        any::<u16>(),
        prop_oneof![Just(0u16), 3..=u16::MAX],
        1..=u32::MAX,
        vec(capability(), 0..12),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(my_as, hold_time, id, capabilities, per, extended_form)| Open {
                my_as,
                hold_time,
                bgp_id: Ipv4Addr::from(id),
                layout: if per && capabilities.len() > 1 {
                    ParameterLayout::ParameterPerCapability
                } else {
                    ParameterLayout::OneParameter
                },
                capabilities,
                extended_form,
            },
        )
}

fn message(ctx: SessionContext) -> impl Strategy<Value = Message> {
    prop_oneof![
        Just(Message::Keepalive),
        open().prop_map(Message::Open),
        (any::<u8>(), any::<u8>(), vec(any::<u8>(), 0..40)).prop_map(|(code, subcode, data)| {
            Message::Notification(Notification {
                code,
                subcode,
                data,
            })
        }),
        (family(), 0..=3u8).prop_map(|(family, kind)| Message::RouteRefresh(RouteRefresh {
            family,
            kind: match kind {
                0 => RouteRefreshKind::Request,
                1 => RouteRefreshKind::Begin,
                2 => RouteRefreshKind::End,
                _ => RouteRefreshKind::Other(9),
            },
        })),
        update(ctx).prop_map(Message::Update),
    ]
}

fn with_context(
    ctx: impl Strategy<Value = SessionContext>,
) -> impl Strategy<Value = (SessionContext, Message)> {
    ctx.prop_flat_map(|ctx| (Just(ctx), message(ctx)))
}

/// AS path segments as AS_PATH or AS4_PATH carry them, AS numbers of `asn_len`
/// octets (AS_TRANS for those that do not fit).
fn encode_path(path: &AsPath, asn_len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for segment in &path.segments {
        out.push(match segment.kind {
            SegmentKind::Set => 1,
            SegmentKind::Sequence => 2,
            SegmentKind::ConfedSequence => 3,
            SegmentKind::ConfedSet => 4,
        });
        out.push(segment.asns.len() as u8);
        for &asn in &segment.asns {
            match asn_len {
                4 => out.extend_from_slice(&asn.to_be_bytes()),
                _ => out.extend_from_slice(&u16::try_from(asn).unwrap_or(23456).to_be_bytes()),
            }
        }
    }
    out
}

/// Encodes `message` on `ctx` and decodes it at the other end of the session.
fn round_trip(ctx: &SessionContext, message: &Message) -> Result<(), TestCaseError> {
    let mut out = BytesMut::new();
    message.encode(ctx, &mut out).unwrap();
    let (decoded, len) = decode_message(&out, &ctx.peer_view())
        .unwrap_or_else(|e| panic!("{e}: {}", to_hex(&out)))
        .unwrap();
    prop_assert_eq!(len, out.len());
    prop_assert_eq!(&decoded, message, "bytes {}", to_hex(&out));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn messages_survive_a_2_octet_as_session(
        (ctx, message) in with_context(context().prop_filter("2-octet", |c| !c.four_octet_as))
    ) {
        round_trip(&ctx, &message)?;
    }

    #[test]
    fn messages_survive_a_4_octet_as_session(
        (ctx, message) in with_context(context().prop_filter("4-octet", |c| c.four_octet_as))
    ) {
        round_trip(&ctx, &message)?;
    }

    #[test]
    fn messages_survive_add_path_in_every_direction_and_family(
        (ctx, message) in with_context(context().prop_map(|c| SessionContext {
            add_path: AddPath::BOTH,
            ..c
        }))
    ) {
        round_trip(&ctx, &message)?;
    }

    #[test]
    fn a_path_an_old_speaker_prepended_to_is_rebuilt_from_as4_path(
        old_as in 1..65535u32,
        path in as_path(false).prop_filter("starts with a sequence", |p| {
            p.segments.first().is_some_and(|s| s.kind == SegmentKind::Sequence)
        }),
    ) {
        // What a NEW speaker sent to an OLD one, after the OLD one (old_as)
        // prepended itself to AS_PATH only.
        let mut as_path = encode_path(&path, 2);
        as_path.splice(0..0, encode_path(&AsPath::sequence([old_as]), 2));
        let as4 = AsPath {
            segments: path.segments.iter().filter(|s| !s.kind.is_confederation()).cloned().collect(),
        };
        let mut attributes = vec![0x40, 1, 1, 0, 0x50, 2];
        attributes.extend_from_slice(&(as_path.len() as u16).to_be_bytes());
        attributes.extend_from_slice(&as_path);
        attributes.extend_from_slice(&[0x40, 3, 4, 192, 0, 2, 1]);
        let as4_bytes = encode_path(&as4, 4);
        let needs_as4 = path.segments.iter().any(|s| s.asns.iter().any(|&a| a > 65535));
        if needs_as4 {
            attributes.extend_from_slice(&[0xd0, 17]);
            attributes.extend_from_slice(&(as4_bytes.len() as u16).to_be_bytes());
            attributes.extend_from_slice(&as4_bytes);
        }
        let mut body = vec![0, 0];
        body.extend_from_slice(&(attributes.len() as u16).to_be_bytes());
        body.extend_from_slice(&attributes);
        body.extend_from_slice(&[24, 10, 0, 0]);
        let Message::Update(update) = common::decode(&common::message(2, &body), &SessionContext::default()) else {
            panic!("not an update");
        };
        // The real path: old_as, then the NEW speakers' path as one sequence.
        let mut expected = AsPath::sequence([old_as]);
        let mut rest = path.segments.clone();
        if !needs_as4 {
            // Without AS4_PATH, AS_PATH is taken as it is.
            expected.segments.extend(rest);
        } else {
            expected.segments[0].asns.append(&mut rest[0].asns);
            expected.segments.extend(rest.into_iter().skip(1));
        }
        prop_assert_eq!(update.attributes.as_path, Some(expected));
    }

    #[test]
    fn arbitrary_bodies_behind_a_valid_header_never_panic(
        ctx in context(),
        message_type in 1..=5u8,
        body in vec(any::<u8>(), 0..300),
    ) {
        let mut bytes = vec![0xff; 16];
        bytes.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
        bytes.push(message_type);
        bytes.extend_from_slice(&body);
        let _ = decode_message(&bytes, &ctx);
    }

    #[test]
    fn corrupted_encodings_never_panic(
        (ctx, message) in with_context(context()),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut out = BytesMut::new();
        message.encode(&ctx, &mut out).unwrap();
        let mut bytes = out.to_vec();
        for (at, value) in flips {
            // Keep the marker so the corruption reaches the message decoders.
            let at = 16 + at.index(bytes.len() - 16);
            bytes[at] = value;
        }
        let end = cut.index(bytes.len() + 1);
        let _ = decode_message(&bytes[..end], &ctx);
        let _ = decode_message(&bytes, &ctx);
    }

    #[test]
    fn arbitrary_bytes_never_panic(ctx in context(), bytes in vec(any::<u8>(), 0..200)) {
        let _ = decode_message(&bytes, &ctx);
    }
}
