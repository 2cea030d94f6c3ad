//! The example configuration in docs/reflector.md is one the reflector accepts,
//! and it means what the doc's tables say: the doc cannot rot unnoticed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bgp::codec::Attributes;
use bgp::rib::filter::Decision;
use bgp::speaker::{PeerConfig, PeerGracefulRestart};
use reflector::config::parse;
use reflector::desired::Desired;
use reflector::discovery::Discovered;

const DOC: &str = include_str!("../../docs/reflector.md");
/// The password file the example names; the test points it at a file of its own.
const PASSWORD_FILE: &str = "/etc/tabby/bgp-password";

/// The doc's only ```yaml block.
fn example() -> &'static str {
    let mut blocks = DOC.split("```yaml\n").skip(1);
    let block = blocks
        .next()
        .expect("docs/reflector.md has a ```yaml block");
    assert!(
        blocks.next().is_none(),
        "one example, so it is the complete one"
    );
    block.split("```").next().expect("the block is closed")
}

fn peer<'a>(desired: &'a Desired, address: &str) -> &'a PeerConfig {
    let address: IpAddr = address.parse().unwrap();
    &desired.peers[&address].config
}

#[test]
fn the_documented_example_is_accepted_and_reads_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("bgp-password");
    std::fs::write(&password, "hunter2\n").unwrap();
    let text = example();
    assert!(text.contains(PASSWORD_FILE));
    let text = text.replace(PASSWORD_FILE, password.to_str().unwrap());
    let config = parse(&text, false).unwrap_or_else(|e| panic!("the doc's example: {e}"));
    let desired = Desired::new(&config, &Discovered::default()).unwrap();

    let speaker = &desired.speaker;
    assert_eq!(speaker.local_as, 64512);
    assert_eq!(speaker.cluster_id, Some(Ipv4Addr::new(244, 0, 0, 1)));
    assert_eq!(speaker.listen, ["[::]:179".parse().unwrap()]);
    let offered = speaker.graceful_restart.expect("graceful restart offered");
    assert_eq!(offered.restart_time, 120);

    let node_a = peer(&desired, "10.0.0.2");
    assert!(
        node_a.rr_client,
        "a client unless routeReflectorClient: false"
    );
    assert_eq!(
        node_a.md5_key.as_deref(),
        Some(&b"hunter2"[..]),
        "newline dropped"
    );
    assert_eq!(
        (node_a.hold_time, node_a.keepalive),
        (90, Some(Duration::from_secs(30)))
    );
    assert_eq!(
        node_a.graceful_restart,
        PeerGracefulRestart::RestartTime(120),
        "the global restart time"
    );
    let pod_blocks = node_a.import_filter.as_ref().expect("importFilter");
    let decide = |prefix: &str| pod_blocks.decide(&prefix.parse().unwrap(), &Attributes::default());
    assert_eq!(decide("10.244.1.0/26"), Decision::Accept { term: Some(0) });
    assert_eq!(decide("10.244.0.0/16"), Decision::Reject, "shorter than ge");

    let rr2 = peer(&desired, "10.0.0.3");
    assert!(!rr2.rr_client && !rr2.passive);
    assert_eq!(rr2.md5_key.as_deref(), Some(&b"s3cret"[..]));
    assert_eq!(rr2.graceful_restart, PeerGracefulRestart::RestartTime(300));

    let passive = peer(&desired, "10.0.0.4");
    assert!(passive.passive && passive.rr_client);
    assert_eq!(passive.graceful_restart, PeerGracefulRestart::Off);
    assert!(passive.export_filter.is_some() && passive.import_filter.is_none());
    assert_eq!(desired.peers.len(), 3);
    let bfd = |address: &str| desired.peers[&address.parse::<IpAddr>().unwrap()].bfd;
    let fast = bfd::Timers::new(Duration::from_millis(50), Duration::from_millis(50), 3);
    assert_eq!(
        bfd("10.0.0.4").map(|b| (b.timers, b.graceful)),
        Some((fast.unwrap(), true))
    );
    let file = bfd("10.0.0.2").map(|b| (b.timers, b.graceful));
    assert_eq!(file, Some((bfd::Timers::default(), false)));

    let [range] = speaker.listen_ranges.as_slice() else {
        panic!("one listen range: {:?}", speaker.listen_ranges);
    };
    assert_eq!(range.prefix, "10.1.0.0/16".parse().unwrap());
    assert_eq!(range.max_sessions, 500);
    assert!(
        range.template.passive,
        "dynamic sessions are always passive"
    );
    assert!(range.template.import_filter.is_some());

    assert_eq!(
        config.api.socket.to_str(),
        Some("/run/tabby/reflector.sock")
    );
    let tcp: SocketAddr = "127.0.0.1:50051".parse().unwrap();
    assert_eq!(config.api.address, Some(tcp));
    let metrics = config.metrics.expect("metrics");
    assert_eq!(metrics.address, "0.0.0.0:9094".parse().unwrap());
    assert_eq!(
        config.shutdown_message,
        "tabby-reflector is being taken out of service"
    );
}
