//! The configuration file's fields. Unknown fields are errors (a typo must not be a
//! silently ignored setting).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use api::resources::BfdSpec;
use bgp::rib::Filter;
use ipnet::IpNet;
use serde::{Deserialize, Deserializer};

use crate::{ClusterId, ClusterIdError};

/// Where the gRPC API listens unless configured.
pub const DEFAULT_API_SOCKET: &str = "/run/tabby/reflector.sock";
pub const DEFAULT_PORT: u16 = 179;
pub const DEFAULT_SHUTDOWN_MESSAGE: &str = "tabby-reflector shutting down";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// Required unless the datastore supplies it (`--datastore-type`).
    #[serde(default)]
    pub as_number: Option<u32>,
    pub router_id: Ipv4Addr,
    /// The router id when unset (RFC 4456 7).
    #[serde(default)]
    pub cluster_id: Option<WrittenClusterId>,
    #[serde(default)]
    pub listen: Listen,
    /// Offered to every peer that does not set its own.
    #[serde(default)]
    pub graceful_restart: Option<GracefulRestart>,
    /// Route filters by name (the `bgp` crate's: terms of match, action and set),
    /// for peers' and listen ranges' `importFilter` and `exportFilter`.
    #[serde(default)]
    pub filters: BTreeMap<String, Filter>,
    /// BFD (RFC 5880) beside every peer's session unless the peer sets its own:
    /// static peers and the datastore's nodes (not listen ranges' dynamic peers).
    /// The same block as BGPConfiguration's and BGPPeer's (`docs/bfd.md`).
    #[serde(default)]
    pub bfd: Option<BfdSpec>,
    #[serde(default)]
    pub peers: Vec<Peer>,
    #[serde(default)]
    pub listen_ranges: Vec<ListenRange>,
    #[serde(default)]
    pub api: Api,
    #[serde(default)]
    pub metrics: Option<Metrics>,
    /// The RFC 9003 message sent with Cease/Administrative Shutdown on SIGTERM.
    #[serde(default = "default_shutdown_message")]
    pub shutdown_message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Listen {
    /// `::` accepts IPv4 and IPv6.
    #[serde(default = "any_address")]
    pub address: IpAddr,
    #[serde(default = "default_port")]
    pub port: u16,
}

impl Default for Listen {
    fn default() -> Self {
        Self {
            address: any_address(),
            port: DEFAULT_PORT,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GracefulRestart {
    /// Seconds peers keep our routes while we restart (at most 4095).
    pub restart_time: u16,
}

/// How a session is run: what static peers and listen ranges share. (Declared
/// through [`with_session!`] in both: serde's `flatten` cannot be combined with
/// `deny_unknown_fields`.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub route_reflector_client: bool,
    pub password: Option<Password>,
    pub password_file: Option<PathBuf>,
    pub passive: bool,
    pub hold_time: Option<u16>,
    pub keepalive_time: Option<u16>,
    pub graceful_restart: Option<PeerGracefulRestart>,
    pub import_filter: Option<String>,
    pub export_filter: Option<String>,
    pub max_prefixes: Option<u32>,
}

/// A TCP-MD5 password written in the file. It never shows: not in `Debug`
/// output, and not in the error for a value that is no string (`password: 1234`).
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Password(<redacted {} bytes>)", self.0.len())
    }
}

impl<'de> Deserialize<'de> for Password {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match yaml_serde::Value::deserialize(deserializer)? {
            yaml_serde::Value::String(text) => Ok(Self(text)),
            _ => Err(serde::de::Error::custom(
                "password: must be a string (quote it); what is written is not repeated",
            )),
        }
    }
}

/// Declares a struct with the [`Session`] fields after its own, and `session()`.
macro_rules! with_session {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$field_meta:meta])* pub $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        pub struct $name {
            $($(#[$field_meta])* pub $field: $ty,)*
            /// Reflect routes to it as a client (RFC 4456); off for other reflectors.
            #[serde(default = "yes")]
            pub route_reflector_client: bool,
            /// TCP MD5 (RFC 2385), given inline or read from a file.
            #[serde(default)]
            pub password: Option<Password>,
            #[serde(default)]
            pub password_file: Option<PathBuf>,
            /// Wait for the peer to connect.
            #[serde(default)]
            pub passive: bool,
            /// Seconds; 0 turns keepalives off.
            #[serde(default)]
            pub hold_time: Option<u16>,
            #[serde(default)]
            pub keepalive_time: Option<u16>,
            /// This peer's graceful restart in place of the global one; `false` for none.
            #[serde(default)]
            pub graceful_restart: Option<PeerGracefulRestart>,
            /// The name of a filter in `filters` for the routes it sends us: in
            /// place of accepting them all.
            #[serde(default)]
            pub import_filter: Option<String>,
            /// The name of a filter in `filters` for the routes reflected to it.
            #[serde(default)]
            pub export_filter: Option<String>,
            /// Reset the session when the peer sends more prefixes; 0 for no
            /// limit; `bgp::speaker::DEFAULT_MAX_PREFIXES` when unset.
            #[serde(default)]
            pub max_prefixes: Option<u32>,
        }

        impl $name {
            pub fn session(&self) -> Session {
                Session {
                    route_reflector_client: self.route_reflector_client,
                    password: self.password.clone(),
                    password_file: self.password_file.clone(),
                    passive: self.passive,
                    hold_time: self.hold_time,
                    keepalive_time: self.keepalive_time,
                    graceful_restart: self.graceful_restart,
                    import_filter: self.import_filter.clone(),
                    export_filter: self.export_filter.clone(),
                    max_prefixes: self.max_prefixes,
                }
            }
        }
    };
}

/// `gracefulRestart: false` or `gracefulRestart: {restartTime: 60}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum PeerGracefulRestart {
    Enabled(bool),
    With(GracefulRestart),
}

with_session! {
    #[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Peer {
        pub address: IpAddr,
        pub as_number: u32,
        /// For logs and the API; the address when unset.
        #[serde(default)]
        pub name: Option<String>,
        /// This peer's BFD in place of the file's `bfd`.
        #[serde(default)]
        pub bfd: Option<BfdSpec>,
    }
}

with_session! {
    /// Dynamic neighbours: any address in `prefix` may open a session.
    #[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct ListenRange {
        pub prefix: IpNet,
        /// Any AS when unset.
        #[serde(default)]
        pub as_number: Option<u32>,
        pub max_sessions: usize,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Api {
    #[serde(default = "default_socket")]
    pub socket: PathBuf,
    /// Also serve on TCP.
    #[serde(default)]
    pub address: Option<SocketAddr>,
}

impl Default for Api {
    fn default() -> Self {
        Self {
            socket: default_socket(),
            address: None,
        }
    }
}

/// `/metrics`, `/healthz`, `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metrics {
    pub address: SocketAddr,
}

/// A cluster id as written: a dotted quad or a number. Checked by `validate`, so
/// that a bad one is reported with its field path.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum WrittenClusterId {
    Number(u32),
    Text(String),
}

impl WrittenClusterId {
    pub fn parse(&self) -> Result<ClusterId, ClusterIdError> {
        match self {
            WrittenClusterId::Number(n) => Ok(ClusterId(*n)),
            WrittenClusterId::Text(text) => text.parse(),
        }
    }
}

fn default_shutdown_message() -> String {
    DEFAULT_SHUTDOWN_MESSAGE.to_owned()
}

fn any_address() -> IpAddr {
    IpAddr::from([0u16; 8])
}

fn default_port() -> u16 {
    DEFAULT_PORT
}

fn default_socket() -> PathBuf {
    DEFAULT_API_SOCKET.into()
}

fn yes() -> bool {
    true
}
