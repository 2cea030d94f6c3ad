//! Graceful restart (RFC 4724) in both roles. tabby restarting, with BIRD, FRR and
//! GoBGP as helpers: tabby's speaker runs as its own process and is killed with
//! SIGKILL, then started again with the restart bit (or not at all). tabby as
//! helper: BIRD is SIGKILLed and comes back with `bird -R`.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use bgp::rib::Change;
use bgp::session::GracefulRestartConfig;
use bgp::speaker::{self, Notice, PeerConfig, Policy, Request, SpeakerConfig, SpeakerHandle};
use harness::peers::{BgpConfig, BgpPeer, Bird, Frr, GoBgp, Neighbor};
use harness::process::Process;
use harness::{Lab, Node, require_root};
use ipnet::IpNet;

const PEER_AS: u32 = 65001;
const TABBY_AS: u32 = 65002;
const TIMEOUT: Duration = Duration::from_secs(30);

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn lab(test: &str) -> Lab {
    Lab::new(test)
        .subnet("a", "10.0.1.0/24")
        .node("peer", "a")
        .node("tabby", "a")
        .build()
        .unwrap()
}

fn bird_config(peer: &Node, tabby: &Node, route: Option<IpNet>) -> BgpConfig {
    let config = BgpConfig::new(PEER_AS, peer.ipv4().unwrap())
        .neighbor(Neighbor::new(tabby.address(), TABBY_AS).graceful_restart(120));
    match route {
        Some(route) => config.route(route),
        None => config,
    }
}

/// A tabby speaker peering with `peer`, offering graceful restart.
fn tabby_speaker(tabby: &Node, peer: IpAddr, restart_time: u16, restarting: bool) -> SpeakerHandle {
    let handle = speaker::start(SpeakerConfig {
        graceful_restart: Some(GracefulRestartConfig {
            restart_time,
            restarting,
            forwarding_preserved: true,
        }),
        ..SpeakerConfig::new(TABBY_AS, tabby.ipv4().unwrap())
    })
    .unwrap();
    let config = PeerConfig {
        import: Some(Policy::Accept),
        export: Some(Policy::Accept),
        ..PeerConfig::new(peer, Some(PEER_AS))
    };
    handle.requests.send(Request::AddPeer(config)).unwrap();
    handle
}

fn has(daemon: &(impl BgpPeer + ?Sized), prefix: IpNet) -> bool {
    daemon.route(prefix).ok().flatten().is_some()
}

/// tabby's speaker as its own process in the `tabby` node, so it can be killed.
fn tabby_process(tabby: &Node, peer: &Node, restart_time: u16, restarting: bool) -> Process {
    let router_id = tabby.ipv4().unwrap().to_string();
    let peer_arg = format!("{}:{PEER_AS}", peer.address());
    let restart = restart_time.to_string();
    let mut args = vec![
        "--as",
        "65002",
        "--router-id",
        &router_id,
        "--peer",
        &peer_arg,
        "--originate",
        BLOCK,
        "--restart-time",
        &restart,
    ];
    if restarting {
        args.push("--restarting");
    }
    let speaker = harness::e2e::binary("tabby-test-speaker").unwrap();
    tabby
        .spawn("tabby", &speaker.to_string_lossy(), &args)
        .unwrap()
}

const BLOCK: &str = "10.244.5.0/26";

/// The daemon keeps tabby's route through `kill -9` and tabby's return, never
/// withdrawing it.
fn keeps_routes_across_a_kill(daemon: &dyn BgpPeer, tabby: &Node, peer: &Node) {
    let block = net(BLOCK);
    let mut first = tabby_process(tabby, peer, 120, false);
    daemon.wait_route(block, TIMEOUT).unwrap();
    first.kill();
    daemon.wait_down(tabby.address(), TIMEOUT).unwrap();
    assert!(
        has(daemon, block),
        "the daemon dropped the route when tabby died"
    );
    let _second = tabby_process(tabby, peer, 120, true);
    let deadline = Instant::now() + TIMEOUT;
    while !daemon.established(tabby.address()).unwrap_or(false) {
        assert!(
            has(daemon, block),
            "the daemon withdrew the route during the restart"
        );
        assert!(Instant::now() < deadline, "the session never came back");
        std::thread::sleep(Duration::from_millis(50));
    }
    // After End-of-RIB the route is fresh, and still there.
    for _ in 0..20 {
        assert!(has(daemon, block), "the route vanished after the restart");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The daemon drops tabby's route once tabby's restart time passes without it.
fn drops_routes_when_tabby_stays_dead(daemon: &dyn BgpPeer, tabby: &Node, peer: &Node) {
    let block = net(BLOCK);
    let mut only = tabby_process(tabby, peer, 3, false);
    daemon.wait_route(block, TIMEOUT).unwrap();
    only.kill();
    daemon.wait_down(tabby.address(), TIMEOUT).unwrap();
    assert!(has(daemon, block), "the daemon dropped the route at once");
    daemon.wait_no_route(block, TIMEOUT).unwrap();
}

fn daemon_config(peer: &Node, tabby: &Node, restart_time: u16) -> BgpConfig {
    BgpConfig::new(PEER_AS, peer.ipv4().unwrap())
        .neighbor(Neighbor::new(tabby.address(), TABBY_AS).graceful_restart(restart_time))
}

/// `<daemon>_keeps_...` and `<daemon>_drops_...` for each daemon.
macro_rules! restarting_tabby {
    ($($keeps:ident, $drops:ident: $daemon:ident;)*) => {$(
        #[test]
        #[ignore = "needs root"]
        fn $keeps() {
            require_root();
            let lab = lab(stringify!($keeps));
            let (peer, tabby) = (lab.node("peer"), lab.node("tabby"));
            let daemon = $daemon::start(peer, &daemon_config(peer, tabby, 120)).unwrap();
            keeps_routes_across_a_kill(&daemon, tabby, peer);
        }

        #[test]
        #[ignore = "needs root"]
        fn $drops() {
            require_root();
            let lab = lab(stringify!($drops));
            let (peer, tabby) = (lab.node("peer"), lab.node("tabby"));
            let daemon = $daemon::start(peer, &daemon_config(peer, tabby, 120)).unwrap();
            drops_routes_when_tabby_stays_dead(&daemon, tabby, peer);
        }
    )*};
}

restarting_tabby! {
    interop_graceful_restart_bird_keeps_tabbys_routes_across_a_kill_9,
    interop_graceful_restart_bird_drops_tabbys_routes_when_tabby_stays_dead: Bird;
    interop_graceful_restart_frr_keeps_tabbys_routes_across_a_kill_9,
    interop_graceful_restart_frr_drops_tabbys_routes_when_tabby_stays_dead: Frr;
    interop_graceful_restart_gobgp_keeps_tabbys_routes_across_a_kill_9,
    interop_graceful_restart_gobgp_drops_tabbys_routes_when_tabby_stays_dead: GoBgp;
}

#[test]
#[ignore = "needs root"]
fn interop_graceful_restart_tabby_keeps_a_restarting_birds_routes_until_end_of_rib() {
    require_root();
    let lab =
        lab("interop_graceful_restart_tabby_keeps_a_restarting_birds_routes_until_end_of_rib");
    let (peer, tabby) = (lab.node("peer"), lab.node("tabby"));
    let (kept, dropped) = (net("10.100.1.0/24"), net("10.100.2.0/24"));
    let mut bird = Bird::start(peer, &bird_config(peer, tabby, Some(kept)).route(dropped)).unwrap();
    let peer_address = peer.address();
    tabby
        .run(|| {
            harness::runtime().block_on(async {
                let mut handle = tabby_speaker(tabby, peer_address, 120, false);
                let mut learned = Vec::new();
                while learned.len() < 2 {
                    if let Some(Notice::Best(Change::Best { prefix, .. })) =
                        handle.notices.recv().await
                    {
                        learned.push(prefix);
                    }
                }
                bird.kill();
                // BIRD returns without `dropped`; it announces the restart bit.
                bird = Bird::start_restarting(peer, &bird_config(peer, tabby, Some(kept))).unwrap();
                let mut fresh = false;
                tokio::time::timeout(TIMEOUT, async {
                    while let Some(notice) = handle.notices.recv().await {
                        match notice {
                            Notice::Best(Change::Withdrawn { prefix }) if prefix == dropped => {
                                // Swept at End-of-RIB, only after `kept` came back fresh.
                                assert!(fresh, "stale routes swept before BIRD re-announced");
                                return;
                            }
                            Notice::Best(Change::Withdrawn { prefix }) => {
                                panic!("{prefix} withdrawn during BIRD's restart")
                            }
                            Notice::Best(Change::Best { prefix, paths }) if prefix == kept => {
                                fresh = !paths[0].stale;
                            }
                            _ => {}
                        }
                    }
                })
                .await
                .expect("the stale route was never swept");
            })
        })
        .unwrap();
}
