//! tabby's speaker as a process of its own, for tests that kill it (graceful
//! restart after `kill -9`). Accepts and sends everything; runs until killed.
//!
//! ```text
//! tabby-test-speaker --as 65002 --router-id 10.0.1.11 --peer 10.0.1.10:65001 \
//!     --originate 10.244.5.0/26 [--restart-time 120] [--restarting] \
//!     [--local-pref 200] [--originator-id 10.0.1.12]
//! ```
//!
//! `--local-pref` and `--originator-id` go on every originated route: a rogue
//! node's announcements, for the tests of route ownership.

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;

use bgp::codec::Attributes;
use bgp::session::GracefulRestartConfig;
use bgp::speaker::{self, Notice, PeerConfig, Policy, Request, SpeakerConfig};
use ipnet::IpNet;

struct Args {
    asn: u32,
    router_id: Ipv4Addr,
    peers: Vec<(IpAddr, u32)>,
    originate: Vec<IpNet>,
    restart_time: Option<u16>,
    restarting: bool,
    attributes: Attributes,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        asn: 0,
        router_id: Ipv4Addr::UNSPECIFIED,
        peers: Vec::new(),
        originate: Vec::new(),
        restart_time: None,
        restarting: false,
        attributes: Attributes::default(),
    };
    let mut words = std::env::args().skip(1);
    while let Some(flag) = words.next() {
        let mut value = || words.next().ok_or(format!("{flag} needs a value"));
        let bad = |what: &str, v: &str| format!("{flag}: {v:?} is not {what}");
        match flag.as_str() {
            "--as" => {
                let v = value()?;
                args.asn = v.parse().map_err(|_| bad("an AS number", &v))?;
            }
            "--router-id" => {
                let v = value()?;
                args.router_id = v.parse().map_err(|_| bad("an IPv4 address", &v))?;
            }
            "--peer" => {
                let v = value()?;
                let (address, asn) = v.rsplit_once(':').ok_or(bad("ADDRESS:AS", &v))?;
                args.peers.push((
                    address.parse().map_err(|_| bad("ADDRESS:AS", &v))?,
                    asn.parse().map_err(|_| bad("ADDRESS:AS", &v))?,
                ));
            }
            "--originate" => {
                let v = value()?;
                args.originate
                    .push(v.parse().map_err(|_| bad("a prefix", &v))?);
            }
            "--restart-time" => {
                let v = value()?;
                args.restart_time = Some(v.parse().map_err(|_| bad("seconds", &v))?);
            }
            "--restarting" => args.restarting = true,
            "--local-pref" => {
                let v = value()?;
                args.attributes.local_pref = Some(v.parse().map_err(|_| bad("a number", &v))?);
            }
            "--originator-id" => {
                let v = value()?;
                args.attributes.originator_id =
                    Some(v.parse().map_err(|_| bad("an IPv4 address", &v))?);
            }
            other => return Err(format!("unknown flag {other:?}")),
        }
    }
    if args.asn == 0 || args.router_id.is_unspecified() {
        return Err("--as and --router-id are required".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("tabby-test-speaker: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = harness::runtime();
    runtime.block_on(async {
        let config = SpeakerConfig {
            graceful_restart: args.restart_time.map(|restart_time| GracefulRestartConfig {
                restart_time,
                restarting: args.restarting,
                forwarding_preserved: true,
            }),
            ..SpeakerConfig::new(args.asn, args.router_id)
        };
        let mut handle = match speaker::start(config) {
            Ok(handle) => handle,
            Err(error) => {
                eprintln!("tabby-test-speaker: {error}");
                return ExitCode::FAILURE;
            }
        };
        for (address, asn) in args.peers {
            let peer = PeerConfig {
                import: Some(Policy::Accept),
                export: Some(Policy::Accept),
                ..PeerConfig::new(address, Some(asn))
            };
            let _ = handle.requests.send(Request::AddPeer(peer));
        }
        for prefix in args.originate {
            let attributes = args.attributes.clone();
            let _ = handle
                .requests
                .send(Request::OriginateWith { prefix, attributes });
        }
        while let Some(notice) = handle.notices.recv().await {
            if let Notice::PeerUp { .. } | Notice::PeerDown { .. } = notice {
                println!("{notice:?}");
            }
        }
        ExitCode::SUCCESS
    })
}
