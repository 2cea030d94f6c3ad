//! The speaker as a route reflector, in process, over loopback: one client feeds
//! /32s in dense 4096-byte UPDATEs, the speaker reflects them to `M` monitor
//! clients, and the clock stops when every monitor has every prefix. Also the
//! RIB's memory per route (resident set growth while loading it, printed).
//!
//! `cargo bench -p bgp --bench speaker`; docs/benchmarks.md has the figures.
//! The clients are minimal BGP speakers written with tabby's codec, so what is
//! timed is the speaker plus a cheap NLRI count per monitor.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgp::codec::{
    AsPath, Attributes, Capability, Message, NextHop, Nlri, Open, Origin, SessionContext,
    UpdatePacker, decode_message,
};
use bgp::rib::{Rib, Source};
use bgp::speaker::{self, PeerConfig, SpeakerConfig};
use bytes::{Buf, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ipnet::{IpNet, Ipv4Net};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const AS: u32 = 64512;

fn context() -> SessionContext {
    SessionContext {
        four_octet_as: true,
        ..SessionContext::default()
    }
}

fn prefixes(count: u32) -> Vec<Nlri> {
    (0..count)
        .map(|i| {
            Nlri::new(
                Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + i), 32)
                    .unwrap()
                    .into(),
            )
        })
        .collect()
}

/// `count` /32s from the feeder, with `distinct` attribute sets (MED varies).
fn feed(count: u32, distinct: u32) -> BytesMut {
    let mut packer = UpdatePacker::new(context());
    let mut out = BytesMut::new();
    let all = prefixes(count);
    let per_set = (count / distinct).max(1) as usize;
    for (i, chunk) in all.chunks(per_set).enumerate() {
        let attributes = Attributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::default()),
            local_pref: Some(100),
            med: Some(i as u32),
            ..Attributes::default()
        };
        let next_hop = NextHop::V4(Ipv4Addr::new(192, 0, 2, 1));
        packer
            .announce(&attributes, next_hop, chunk, &mut out)
            .unwrap();
    }
    out
}

/// A client's session up to Established, on a connection the speaker opened.
async fn handshake(listener: &TcpListener, id: Ipv4Addr) -> (TcpStream, BytesMut) {
    let (mut stream, _) = listener.accept().await.unwrap();
    let open = Open::new(AS, 90, id, vec![Capability::FourOctetAs(AS)]);
    let mut out = BytesMut::new();
    Message::Open(open)
        .encode(&SessionContext::default(), &mut out)
        .unwrap();
    Message::Keepalive
        .encode(&SessionContext::default(), &mut out)
        .unwrap();
    stream.write_all(&out).await.unwrap();
    let mut buf = BytesMut::new();
    // Their OPEN and KEEPALIVE.
    let mut seen = 0;
    while seen < 2 {
        stream.read_buf(&mut buf).await.unwrap();
        while let Some((_, len)) = decode_message(&buf, &SessionContext::default()).unwrap() {
            buf.advance(len);
            seen += 1;
            if seen == 2 {
                break;
            }
        }
    }
    (stream, buf)
}

/// Reads until `count` announcements arrived. Counts IPv4 NLRI without decoding
/// the attributes, so the monitors cost little next to the speaker.
async fn collect(mut stream: TcpStream, mut buf: BytesMut, count: usize) -> TcpStream {
    let mut got = 0;
    while got < count {
        while buf.len() >= 19 {
            let len = usize::from(u16::from_be_bytes([buf[16], buf[17]]));
            if buf.len() < len {
                break;
            }
            if buf[18] == 2 {
                got += nlri_count(&buf[19..len]);
            }
            buf.advance(len);
        }
        if got >= count {
            break;
        }
        if stream.read_buf(&mut buf).await.unwrap() == 0 {
            panic!("the speaker closed the session after {got} prefixes");
        }
    }
    stream
}

/// The IPv4 prefixes in an UPDATE body's NLRI field.
fn nlri_count(body: &[u8]) -> usize {
    let withdrawn = usize::from(u16::from_be_bytes([body[0], body[1]]));
    let at = 2 + withdrawn;
    let attributes = usize::from(u16::from_be_bytes([body[at], body[at + 1]]));
    let mut nlri = &body[at + 2 + attributes..];
    let mut count = 0;
    while let Some(&bits) = nlri.first() {
        nlri = &nlri[1 + usize::from(bits).div_ceil(8)..];
        count += 1;
    }
    count
}

/// One reflection: a fresh speaker, a feeder and `monitors` clients; the time
/// from the feeder's first byte to the last monitor's last prefix.
async fn reflect(feed: Arc<BytesMut>, count: usize, monitors: u8) -> Duration {
    let router_id = Ipv4Addr::new(10, 255, 0, 1);
    let handle = speaker::start(SpeakerConfig {
        cluster_id: Some(router_id),
        ..SpeakerConfig::new(AS, router_id)
    })
    .unwrap();
    let mut listeners = Vec::new();
    for n in 0..=monitors {
        let address = IpAddr::V4(Ipv4Addr::new(127, 0, 1 + n / 200, 2 + n % 200));
        let listener = TcpListener::bind(SocketAddr::new(address, 0))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let peer = PeerConfig {
            port,
            rr_client: true,
            ttl: bgp::transport::TtlPolicy::Hops(64),
            ..PeerConfig::new(address, Some(AS))
        };
        handle
            .requests
            .send(speaker::Request::AddPeer(peer))
            .unwrap();
        listeners.push(listener);
    }
    let mut sessions = Vec::new();
    for (n, listener) in listeners.iter().enumerate() {
        sessions.push(handshake(listener, Ipv4Addr::new(10, 255, 1, n as u8 + 2)).await);
    }
    let (mut feeder, _) = sessions.remove(0);
    let readers: Vec<_> = sessions
        .into_iter()
        .map(|(stream, buf)| tokio::spawn(collect(stream, buf, count)))
        .collect();
    let start = Instant::now();
    let write = tokio::spawn(async move {
        feeder.write_all(&feed).await.unwrap();
        feeder
    });
    let mut monitors = Vec::new();
    for reader in readers {
        monitors.push(reader.await.unwrap());
    }
    let elapsed = start.elapsed();
    // Stop the speaker before the connections close, so that it does not spend
    // the next sample taking down this one's sessions.
    handle
        .requests
        .send(speaker::Request::Shutdown("done".into()))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop((monitors, write.await.unwrap()));
    elapsed
}

fn reflection(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("reflect");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for (name, count, distinct, monitors) in [
        ("100k_dense_to_10", 100_000, 1, 10),
        ("1m_dense_to_1", 1_000_000, 1, 1),
        ("20k_distinct_to_10", 20_000, 20_000, 10),
        ("10k_dense_to_199", 10_000, 1, 199),
    ] {
        let bytes = Arc::new(feed(count, distinct));
        group.throughput(Throughput::Elements(u64::from(count)));
        let (mut cpu, mut runs) = (Duration::ZERO, 0u64);
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                let before = cpu_time();
                let wall = (0..iterations)
                    .map(|_| {
                        runtime.block_on(reflect(Arc::clone(&bytes), count as usize, monitors))
                    })
                    .sum();
                cpu += cpu_time() - before;
                runs += iterations;
                wall
            })
        });
        // Less sensitive than wall time to other work on the machine.
        let per_run = cpu / u32::try_from(runs.max(1)).unwrap_or(u32::MAX);
        println!("{name}: {per_run:?} of CPU (all threads) per run, over {runs} runs");
    }
    group.finish();
}

/// User and system time of this process so far (all threads; 10 ms ticks).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// Resident memory of this process in bytes.
fn resident() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// A RIB holding `count` /32s from one peer with one shared attribute set.
fn load(count: u32) -> Rib {
    let mut rib = Rib::new(Source::local(Ipv4Addr::new(10, 255, 0, 1), AS));
    let peer = rib.add_source(Arc::new(Source {
        peer: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
        router_id: Ipv4Addr::new(192, 0, 2, 1),
        remote_as: AS,
        internal: true,
        rr_client: true,
    }));
    let attributes = Arc::new(Attributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::default()),
        local_pref: Some(100),
        ..Attributes::default()
    });
    let next_hop = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    for i in 0..count {
        let prefix = IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + i), 32).unwrap());
        rib.announce(prefix, peer, &attributes, next_hop, None, true);
        // The speaker follows the journal after every batch of UPDATEs.
        if i % 4096 == 0 {
            rib.drain();
        }
    }
    rib.drain();
    rib
}

fn rib_memory(c: &mut Criterion) {
    const COUNT: u32 = 1_000_000;
    let before = resident();
    let rib = load(COUNT);
    let grown = resident() - before;
    println!(
        "rib memory: {COUNT} /32 routes, resident set grew {} MB, {} bytes per route",
        grown / 1_000_000,
        grown / COUNT as usize
    );
    drop(rib);
    let mut group = c.benchmark_group("rib");
    group.sample_size(10);
    group.throughput(Throughput::Elements(u64::from(COUNT)));
    group.bench_function("load_1m", |b| b.iter(|| load(COUNT)));
    group.finish();
}

criterion_group!(benches, rib_memory, reflection);
criterion_main!(benches);
