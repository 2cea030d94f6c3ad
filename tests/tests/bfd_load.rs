//! A BFD session with the default timers (300 ms × 3) next to busy loops on every
//! core: flaps are counted on both sides, nothing is timed.

use std::time::{Duration, Instant};

use bfd::State;
use bfd::driver::Hop;
use harness::peers::{BfdPeer, BfdSession, Bfdd, BgpConfig};
use harness::tabby_bfd::{TabbyBfd, peer};
use harness::{Lab, require_root};

/// How long every core spins.
const LOAD: Duration = Duration::from_secs(10);

/// Spins on every core until `LOAD` has passed.
fn busy_cores() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let deadline = Instant::now() + LOAD;
    std::thread::scope(|scope| {
        for _ in 0..cores {
            scope.spawn(|| {
                let mut spins = 0u64;
                while Instant::now() < deadline {
                    spins = std::hint::black_box(spins.wrapping_add(1));
                }
            });
        }
    });
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default()
}

#[test]
#[ignore = "needs root"]
fn bfd_default_timers_do_not_flap_with_every_core_busy() {
    require_root();
    let lab = Lab::new("bfd_default_timers_do_not_flap_with_every_core_busy")
        .subnet("a", "10.0.1.0/24")
        .node("tabby", "a")
        .node("frr", "a")
        .build()
        .unwrap();
    let (node, frr_node) = (lab.node("tabby"), lab.node("frr"));
    let (local, remote) = (node.address(), frr_node.address());
    let config = BgpConfig::new(65001, frr_node.ipv4().unwrap())
        .bfd_session(BfdSession::single_hop(local, remote));
    let frr = Bfdd::start(frr_node, &config).unwrap();
    let mut tabby = TabbyBfd::start(node, vec![peer(local, remote, Hop::Single)]);
    tabby
        .wait_state(remote, State::Up, Duration::from_secs(20))
        .unwrap();
    frr.wait_bfd_state(local, State::Up, Duration::from_secs(20))
        .unwrap();
    let frr_downs = frr.session_downs(local).unwrap();
    tabby.events();
    eprintln!("load before: {}", load_average());
    busy_cores();
    eprintln!("load after {LOAD:?} of busy cores: {}", load_average());
    let events = tabby.events();
    let status = tabby.session(remote).status();
    assert_eq!((status.state, status.flaps), (State::Up, 0), "{events:?}");
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(
        frr.session_downs(local).unwrap(),
        frr_downs,
        "bfdd saw the session flap"
    );
    assert_eq!(frr.bfd_state(local).unwrap(), Some(State::Up));
}
