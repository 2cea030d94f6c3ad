//! What a container runtime hands tabby-cni and tabby-ipam: the environment
//! (`CNI_COMMAND`, `CNI_ARGS`, `CNI_NETNS`, …) and the network configuration on
//! stdin. The input is split at its first NUL byte: `KEY=VALUE` lines before it,
//! stdin after. Nothing may panic; every refusal is a `CniError`, which the plugins
//! print as the spec's error JSON.
#![no_main]

use std::collections::HashMap;

use cni::ipam_plugin::config::IpamNetConf;
use cni::spec::config::NetConf;
use cni::spec::env::Env;
use cni::spec::version;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (environment, stdin) = match data.iter().position(|b| *b == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (&[][..], data),
    };
    let environment = String::from_utf8_lossy(environment);
    let vars: HashMap<&str, &str> = environment
        .lines()
        .filter_map(|line| line.split_once('='))
        .collect();
    let var = |name: &str| vars.get(name).map(|v| (*v).to_owned());

    if let Ok(env) = Env::read(var) {
        let _ = env.host_veth();
    }
    if let Some(requested) = version::version_of(stdin) {
        if version::check(&requested).is_ok() {
            let _ = version::reply(&requested);
        }
    }
    if let Ok(conf) = NetConf::parse(stdin) {
        let _ = conf.datastore_config();
        let _ = conf.mtu();
        let _ = conf.node(&var);
        let _ = conf.prev_result();
    }
    let _ = IpamNetConf::parse(stdin);
});
