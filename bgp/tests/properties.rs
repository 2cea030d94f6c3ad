//! Properties: every message the encoder writes decodes to the same value, in both
//! AS modes and with and without ADD-PATH; no input makes the decoder panic.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};

use bgp::codec::{
    AddPath, AddPathMode, Afi, Aggregator, AsPath, Attributes, Capability, Community,
    ExtendedCommunity, ExtendedNextHop, Family, GracefulRestart, LargeCommunity, Message, MpReach,
    MpUnreach, NextHop, Nlri, Notification, Open, Origin, ParameterLayout, RawAttribute,
    RouteRefresh, RouteRefreshKind, Segment, SegmentKind, SessionContext, Update, decode_message,
};
use bytes::BytesMut;
use ipnet::{Ipv4Net, Ipv6Net};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

fn context() -> impl Strategy<Value = SessionContext> {
    (any::<bool>(), any::<bool>()).prop_map(|(four_octet_as, add_path)| SessionContext {
        four_octet_as,
        extended_message: false,
        extended_next_hop: true,
        add_path: if add_path {
            AddPath::BOTH
        } else {
            AddPath::default()
        },
    })
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
    // On 2-octet sessions a 2-octet aggregator means an OLD speaker aggregated, and
    // RFC 6793 then ignores AS4_PATH: generate only aggregators that need 4 octets.
    let aggregator_asn = if four_octet {
        any::<u32>().boxed()
    } else {
        (65536..=u32::MAX).boxed()
    };
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
            option::of((aggregator_asn, any::<u32>())),
        ),
        (
            vec(any::<u32>().prop_map(Community), 0..4),
            option::of(any::<u32>()),
            vec(any::<u32>(), 0..3),
            vec(any::<[u8; 8]>().prop_map(ExtendedCommunity), 0..3),
            vec(any::<(u32, u32, u32)>(), 0..3),
            unknown,
        ),
    )
        .prop_map(
            |((origin, as_path, med, local_pref, atomic_aggregate, aggregator), rest)| {
                let (communities, originator, cluster, extended_communities, large, unknown) = rest;
                Attributes {
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
                }
            },
        )
}

fn next_hop() -> impl Strategy<Value = NextHop> {
    (any::<u128>(), option::of(any::<u128>())).prop_map(|(g, ll)| NextHop::V6 {
        global: Ipv6Addr::from(g),
        link_local: ll.map(Ipv6Addr::from),
    })
}

fn update(ctx: SessionContext) -> impl Strategy<Value = Update> {
    let afi = prop_oneof![Just(Afi::Ipv4), Just(Afi::Ipv6)];
    (
        vec(nlri(Afi::Ipv4, ctx), 0..8),
        attributes(ctx.four_octet_as),
        option::of(any::<u32>()),
        vec(nlri(Afi::Ipv4, ctx), 0..8),
        option::of(
            (afi.clone(), next_hop()).prop_flat_map(move |(afi, next_hop)| {
                vec(nlri(afi, ctx), 0..8).prop_map(move |nlri| MpReach {
                    afi,
                    next_hop,
                    nlri,
                })
            }),
        ),
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
    )
        .prop_map(|(my_as, hold_time, id, capabilities, per)| Open {
            my_as,
            hold_time,
            bgp_id: Ipv4Addr::from(id),
            layout: if per && capabilities.len() > 1 {
                ParameterLayout::ParameterPerCapability
            } else {
                ParameterLayout::OneParameter
            },
            capabilities,
        })
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

fn with_context() -> impl Strategy<Value = (SessionContext, Message)> {
    context().prop_flat_map(|ctx| (Just(ctx), message(ctx)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decoding_what_was_encoded_gives_the_same_message((ctx, message) in with_context()) {
        let mut out = BytesMut::new();
        message.encode(&ctx, &mut out).unwrap();
        let (decoded, len) = decode_message(&out, &ctx).unwrap().unwrap();
        prop_assert_eq!(len, out.len());
        prop_assert_eq!(decoded, message);
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
        (ctx, message) in with_context(),
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
