//! A tabby-reflector process in a lab node, its config file, signals, and its gRPC
//! API and metrics as a test reaches them.

#![allow(dead_code)] // each test binary uses part of it

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use harness::process::Process;
use harness::{Lab, Node};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use proto::bgp_status::Peer;
use tempfile::TempDir;

pub const AS: u32 = 64512;
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Where the reflector serves /metrics inside its namespace.
pub const METRICS_PORT: u16 = 9094;

/// A running tabby-reflector; killed on drop.
#[derive(Debug)]
pub struct Reflector {
    pub process: Process,
    pub config: PathBuf,
    pub socket: PathBuf,
    netns: String,
    /// Flags after `--config FILE`.
    args: Vec<String>,
    /// Environment variables beside `TABBY_LOG`.
    env: Vec<(String, String)>,
    _dir: TempDir,
}

impl Reflector {
    /// Writes `body` (the config without its `api` and `metrics` sections, which
    /// this adds) and starts the reflector in `node`.
    pub fn start(node: &Node, body: &str) -> Self {
        Self::start_with(node, body, &[])
    }

    /// As [`Reflector::start`], with more flags (`--datastore-type etcdv3 ...`).
    pub fn start_with(node: &Node, body: &str, args: &[String]) -> Self {
        Self::start_env(node, body, args, &[])
    }

    /// As [`Reflector::start_with`], with environment variables too.
    pub fn start_env(node: &Node, body: &str, args: &[String], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("tabby-rr-")
            .tempdir()
            .unwrap();
        let config = dir.path().join("reflector.yaml");
        let socket = dir.path().join("api.sock");
        write_config(&config, &socket, body);
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Self {
            process: spawn(node, &config, args, &env),
            config,
            socket,
            netns: node.netns().name().to_owned(),
            args: args.to_vec(),
            env,
            _dir: dir,
        }
    }

    /// Starts the reflector again after it exited or was killed.
    pub fn restart(&mut self, node: &Node) {
        self.process.kill();
        self.process = spawn(node, &self.config, &self.args, &self.env);
    }

    /// Rewrites the config file (the API and metrics sections are kept).
    pub fn write(&self, body: &str) {
        write_config(&self.config, &self.socket, body);
    }

    /// Writes raw text, API section and all (for invalid files).
    pub fn write_raw(&self, text: &str) {
        std::fs::write(&self.config, text).unwrap();
    }

    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.process.pid() as i32), signal).unwrap();
    }

    /// Every peer as ListPeers returns it over the Unix socket.
    pub fn peers(&self) -> anyhow::Result<Vec<Peer>> {
        harness::e2e::list_peers(&self.socket)
    }

    /// The peer at `address`, once ListPeers shows it Established.
    pub fn wait_established(&self, address: IpAddr) -> Peer {
        harness::wait_until(
            TIMEOUT,
            &format!("{address} established at the reflector"),
            || {
                let peers = self.peers()?;
                Ok(peers
                    .into_iter()
                    .find(|p| p.address == address.to_string() && p.state == 7)
                    .ok_or("not established"))
            },
        )
        .unwrap()
    }

    /// `GET path` on the metrics endpoint, from inside the reflector's namespace.
    pub fn http_get(&self, path: &str) -> String {
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        harness::in_netns(&self.netns, || {
            let address = SocketAddr::from(([127, 0, 0, 1], METRICS_PORT));
            let mut stream = TcpStream::connect_timeout(&address, TIMEOUT)?;
            stream.write_all(request.as_bytes())?;
            let mut response = String::new();
            stream.read_to_string(&mut response)?;
            Ok::<_, std::io::Error>(response)
        })
        .unwrap()
        .unwrap()
    }
}

fn spawn(node: &Node, config: &Path, args: &[String], env: &[(String, String)]) -> Process {
    let mut command = node.command(env!("CARGO_BIN_EXE_tabby-reflector"));
    command
        .arg("--config")
        .arg(config)
        .args(args)
        .env("TABBY_LOG", "debug")
        .envs(env.iter().map(|(k, v)| (k, v)));
    Process::spawn(command, node.logs(), "tabby-reflector").unwrap()
}

fn write_config(config: &Path, socket: &Path, body: &str) {
    let text = format!(
        "{body}api: {{socket: {}}}\nmetrics: {{address: '127.0.0.1:{METRICS_PORT}'}}\n",
        socket.display()
    );
    std::fs::write(config, text).unwrap();
}

/// The reflector `rr` and two clients, `bird` and `frr`, on one subnet.
pub fn lab(test: &str) -> Lab {
    Lab::new(test)
        .subnet("a", "10.0.1.0/24")
        .node("rr", "a")
        .node("bird", "a")
        .node("frr", "a")
        .build()
        .unwrap()
}

/// A peer entry of the config file.
pub fn peer(address: IpAddr) -> String {
    format!("- {{address: {address}, asNumber: {AS}}}\n")
}
