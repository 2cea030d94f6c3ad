//! Decode and encode throughput of the codec in prefixes per second, next to
//! bgpkit-parser and zettabgp decoding the same bytes. Inputs: (a) dense UPDATEs of
//! IPv4 /32s sharing attributes (about 800 per message), (b) one /24 per UPDATE with
//! distinct communities and AS paths, (c) IPv6 /64s in MP_REACH_NLRI.
//!
//! `cargo bench -p bgp --bench codec`; docs/benchmarks.md has the figures.

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};

use bgp::codec::{
    AsPath, Attributes, Community, Message, NextHop, Nlri, Origin, SessionContext, Update,
    UpdatePacker, decode_message,
};
use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use ipnet::{Ipv4Net, Ipv6Net};

/// Every peer today speaks 4-octet AS numbers; none of the inputs uses ADD-PATH.
fn ctx() -> SessionContext {
    SessionContext {
        four_octet_as: true,
        ..SessionContext::default()
    }
}

fn attributes(i: u32) -> Attributes {
    Attributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence([
            64512,
            65000 + i % 500,
            4_200_000_000 + i,
        ])),
        med: Some(i),
        communities: vec![Community::new(64512, (i % 65536) as u16), Community(i)],
        ..Attributes::default()
    }
}

/// Encodes one input's routes into a buffer.
type Encoder = Box<dyn Fn(&mut UpdatePacker, &mut BytesMut)>;

/// An input: its bytes (a stream of UPDATEs), prefix count, and how to encode it.
struct Input {
    name: &'static str,
    bytes: Vec<u8>,
    prefixes: u64,
    encode: Encoder,
}

fn dense() -> Input {
    let prefixes: Vec<Nlri> = (0..100_000u32)
        .map(|i| {
            Nlri::new(
                Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + i), 32)
                    .unwrap()
                    .into(),
            )
        })
        .collect();
    let attrs = attributes(1);
    let next_hop = NextHop::V4(Ipv4Addr::new(192, 0, 2, 1));
    let count = prefixes.len() as u64;
    let encode = move |packer: &mut UpdatePacker, out: &mut BytesMut| {
        packer.announce(&attrs, next_hop, &prefixes, out).unwrap();
    };
    finish("dense /32 UPDATEs", count, encode)
}

fn one_per_update() -> Input {
    let messages: Vec<Message> = (0..10_000u32)
        .map(|i| {
            let prefix = Ipv4Net::new(Ipv4Addr::from(0x0b00_0000 + (i << 8)), 24).unwrap();
            Message::Update(Update {
                attributes: attributes(i),
                next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
                nlri: vec![Nlri::new(prefix.into())],
                ..Update::default()
            })
        })
        .collect();
    let count = messages.len() as u64;
    let encode = move |packer: &mut UpdatePacker, out: &mut BytesMut| {
        for message in &messages {
            message.encode(packer.context(), out).unwrap();
        }
    };
    finish("one prefix per UPDATE", count, encode)
}

fn ipv6() -> Input {
    let prefixes: Vec<Nlri> = (0..50_000u128)
        .map(|i| {
            let addr = Ipv6Addr::from((0x2001_0db8u128 << 96) | (i << 64));
            Nlri::new(Ipv6Net::new(addr, 64).unwrap().into())
        })
        .collect();
    let attrs = attributes(2);
    let next_hop = NextHop::V6 {
        global: "2001:db8::1".parse().unwrap(),
        link_local: Some("fe80::1".parse().unwrap()),
    };
    let count = prefixes.len() as u64;
    let encode = move |packer: &mut UpdatePacker, out: &mut BytesMut| {
        packer.announce(&attrs, next_hop, &prefixes, out).unwrap();
    };
    finish("IPv6 MP_REACH", count, encode)
}

fn finish(
    name: &'static str,
    prefixes: u64,
    encode: impl Fn(&mut UpdatePacker, &mut BytesMut) + 'static,
) -> Input {
    let mut out = BytesMut::new();
    encode(&mut UpdatePacker::new(ctx()), &mut out);
    Input {
        name,
        bytes: out.to_vec(),
        prefixes,
        encode: Box::new(encode),
    }
}

/// Decodes the stream; returns the prefixes seen, so that nothing is optimised out
/// and every decoder is checked to have read every route.
fn tabby_decode(mut bytes: &[u8], ctx: &SessionContext) -> usize {
    let mut routes = 0;
    while let Some((Message::Update(update), len)) = decode_message(bytes, ctx).unwrap() {
        routes += update.nlri.len() + update.mp_reach.map_or(0, |r| r.nlri.len());
        bytes = &bytes[len..];
    }
    routes
}

fn bgpkit_decode(bytes: &Bytes) -> usize {
    use bgpkit_parser::models::{AsnLength, AttributeValue, BgpMessage};
    let mut data = bytes.clone();
    let mut routes = 0;
    while !data.is_empty() {
        let message =
            bgpkit_parser::parser::bgp::parse_bgp_message(&mut data, false, &AsnLength::Bits32)
                .unwrap();
        if let BgpMessage::Update(update) = message {
            routes += update.announced_prefixes.len();
            for attribute in update.attributes.iter() {
                if let AttributeValue::MpReachNlri(reach) = attribute {
                    routes += reach.prefixes.len();
                }
            }
        }
    }
    routes
}

fn zettabgp_decode(mut bytes: &[u8], params: &zettabgp::BgpSessionParams) -> usize {
    use zettabgp::BgpMessage;
    use zettabgp::message::attributes::BgpAttrItem;
    use zettabgp::message::update::BgpUpdateMessage;
    let mut routes = 0;
    while !bytes.is_empty() {
        let (_, len) = params.decode_message_head(bytes).unwrap();
        let mut update = BgpUpdateMessage::new();
        update.decode_from(params, &bytes[19..19 + len]).unwrap();
        routes += update.updates.len();
        for attribute in &update.attrs {
            if let BgpAttrItem::MPUpdates(reach) = attribute {
                routes += reach.addrs.len();
            }
        }
        bytes = &bytes[19 + len..];
    }
    routes
}

fn bench_input(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>, input: &Input) {
    let ctx = ctx();
    let expected = input.prefixes as usize;
    assert_eq!(tabby_decode(&input.bytes, &ctx), expected, "tabby");
    let shared = Bytes::from(input.bytes.clone());
    assert_eq!(bgpkit_decode(&shared), expected, "bgpkit-parser");
    let mut params = zettabgp::BgpSessionParams::new(
        64512,
        90,
        zettabgp::BgpTransportMode::IPv4,
        Ipv4Addr::new(192, 0, 2, 1),
        Vec::new(),
    );
    // No path identifiers on these sessions: do not make zettabgp guess.
    params.fuzzy_pathid = false;
    assert_eq!(zettabgp_decode(&input.bytes, &params), expected, "zettabgp");

    group.throughput(Throughput::Elements(input.prefixes));
    group.bench_function(format!("{}/tabby decode", input.name), |b| {
        b.iter(|| tabby_decode(black_box(&input.bytes), &ctx))
    });
    group.bench_function(format!("{}/bgpkit-parser decode", input.name), |b| {
        b.iter(|| bgpkit_decode(black_box(&shared)))
    });
    group.bench_function(format!("{}/zettabgp decode", input.name), |b| {
        b.iter(|| zettabgp_decode(black_box(&input.bytes), &params))
    });
    let mut packer = UpdatePacker::new(ctx);
    let mut out = BytesMut::with_capacity(input.bytes.len());
    group.bench_function(format!("{}/tabby encode", input.name), |b| {
        b.iter(|| {
            out.clear();
            (input.encode)(&mut packer, &mut out);
            black_box(out.len())
        })
    });
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    group.sample_size(20);
    for input in [dense(), one_per_update(), ipv6()] {
        bench_input(&mut group, &input);
    }
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
