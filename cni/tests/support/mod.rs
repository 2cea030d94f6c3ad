//! tabby-ipam run as a container runtime runs it, the CNI spec's reply formats, and
//! the pools the tests allocate from.

#![allow(dead_code)] // each test binary uses part of this module

use std::path::Path;
use std::process::Child;

use api::datastore::{Backend, Datastore};
use api::resources::{Cidr, IPPool, IPPoolSpec};
use harness::cni::CniCall;
use ipnet::IpNet;
use serde_json::Value;

/// Creates pool `name` of `cidr` in blocks of `/block`.
pub async fn pool(store: &dyn Backend, name: &str, cidr: &str, block: u8) -> IPPool {
    let mut spec = IPPoolSpec::new(cidr.parse::<Cidr>().unwrap());
    spec.block_size = Some(block);
    store.create(&IPPool::new(name, spec)).await.unwrap()
}

/// What a plugin call printed and how it exited.
#[derive(Debug)]
pub struct Reply {
    pub success: bool,
    pub stdout: String,
    pub json: Value,
}

/// Starts the plugin with `CNI_COMMAND=command` for container `container`, `cni_args`
/// as `CNI_ARGS` and `conf` on stdin, nothing else in its environment.
pub fn start(command: &str, container: &str, cni_args: &str, conf: &Value) -> Child {
    let netns = format!("/var/run/netns/cni-{container}");
    let call = CniCall {
        command,
        container,
        netns: &netns,
        args: cni_args,
    };
    harness::cni::start(Path::new(env!("CARGO_BIN_EXE_tabby-ipam")), call, conf)
        .expect("tabby-ipam starts")
}

/// Runs the plugin for container `container` of pod `default/pod-<container>`.
pub fn call(command: &str, container: &str, conf: &Value) -> Reply {
    let cni_args =
        format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-{container}");
    let output = start(command, container, &cni_args, conf)
        .wait_with_output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let json = match stdout.trim() {
        "" => Value::Null,
        text => serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text:?}")),
    };
    Reply {
        success: output.status.success(),
        stdout,
        json,
    }
}

/// The spec's ADD result for an IPAM plugin: `cniVersion`, `ips` of `address`
/// (and, before 1.0.0, `version`), nothing else here.
pub fn addresses_of_result(reply: &Reply, version: &str) -> Vec<IpNet> {
    assert!(reply.success, "{reply:?}");
    let object = reply.json.as_object().expect("a JSON object");
    let keys: Vec<&String> = object.keys().collect();
    assert_eq!(keys, ["cniVersion", "ips"], "{reply:?}");
    assert_eq!(reply.json["cniVersion"], version);
    reply.json["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ip| {
            let fields: Vec<&String> = ip.as_object().unwrap().keys().collect();
            if version.starts_with("0.") {
                assert_eq!(fields, ["address", "version"], "{ip}");
            } else {
                assert_eq!(fields, ["address"], "{ip}");
            }
            ip["address"].as_str().unwrap().parse().unwrap()
        })
        .collect()
}

/// The spec's error reply: its code and message.
pub fn error_of(reply: &Reply) -> (u64, String) {
    assert!(!reply.success, "{reply:?}");
    let object = reply.json.as_object().expect("an error object");
    assert!(object.contains_key("cniVersion"), "{reply:?}");
    (
        reply.json["code"].as_u64().unwrap(),
        reply.json["msg"].as_str().unwrap().to_owned(),
    )
}
