//! `tabby-agent`'s command line: every flag has a `TABBY_*` environment variable
//! (a DaemonSet sets those), checked into the daemon's [`Options`] with errors that
//! name the flag, its variable and the value. calico-node's variables serve as
//! fallbacks ([`calico`]).

pub mod calico;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use api::resources::{AsNumber, GoDuration};
use clap::{ArgAction, Parser};

use crate::daemon::Options;
use crate::node::autodetect::{AddressChoice, Method};
use crate::peering::RouterId;

/// The MTUs Linux accepts on a veth or tunnel (RFC 791's minimum for IPv4).
const MTU_RANGE: std::ops::RangeInclusive<u32> = 68..=65535;

/// Where tabby-agent writes this node's name and the pods' MTU for tabby-cni (Calico
/// keeps them in /var/lib/calico).
pub const NODENAME_FILE: &str = "/var/run/tabby/nodename";
pub const MTU_FILE: &str = "/var/run/tabby/mtu";
/// Where tabby-agent keeps its last datastore view: beside them, so it lasts as
/// long as the kernel routes it explains (a reboot clears both).
pub const LAST_VIEW_FILE: &str = "/var/run/tabby/last-view.json";

/// Where the metrics endpoint listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsAddress {
    Off,
    /// On this node's own address.
    Port(u16),
    At(SocketAddr),
}

/// Not `host:port`, `:port` or `off`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not host:port, :port or off")]
pub struct BadMetricsAddress(String);

impl FromStr for MetricsAddress {
    type Err = BadMetricsAddress;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "off" {
            return Ok(Self::Off);
        }
        if let Some(port) = text.strip_prefix(':') {
            return port
                .parse()
                .map(Self::Port)
                .map_err(|_| BadMetricsAddress(text.into()));
        }
        text.parse()
            .map(Self::At)
            .map_err(|_| BadMetricsAddress(text.into()))
    }
}

/// A node label, `key=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label(pub String, pub String);

impl FromStr for Label {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok(Self(key.into(), value.into())),
            _ => Err(format!("{text:?} is not key=value")),
        }
    }
}

/// tabby's node agent: pod routes, tunnels, NAT outgoing and BGP on this node.
#[derive(Debug, Parser)]
#[command(name = "tabby-agent", version)]
pub struct Flags {
    /// This node's name, as in its Node resource [default: the hostname]
    #[arg(long, env = "TABBY_NODE_NAME")]
    pub node_name: Option<String>,
    #[command(flatten)]
    pub datastore: api::datastore::args::DatastoreArgs,
    /// IPv4 BGP address: autodetect, none, or an address (with optional /length);
    /// an address pinned in the Node resource wins
    #[arg(long, env = "TABBY_IP", default_value = "autodetect")]
    pub ip: AddressChoice,
    /// IPv6 BGP address: autodetect, none, or an address (with optional /length);
    /// an address pinned in the Node resource wins
    #[arg(long, env = "TABBY_IP6", default_value = "none")]
    pub ip6: AddressChoice,
    /// How --ip autodetect finds the address: first-found, interface=REGEX,
    /// skip-interface=REGEX, can-reach=ADDRESS|HOST, cidr=CIDR, kubernetes-internal-ip
    #[arg(
        long,
        env = "TABBY_IP_AUTODETECTION_METHOD",
        default_value = "first-found"
    )]
    pub ip_autodetection_method: Method,
    /// How --ip6 autodetect finds the address
    #[arg(
        long,
        env = "TABBY_IP6_AUTODETECTION_METHOD",
        default_value = "first-found"
    )]
    pub ip6_autodetection_method: Method,
    /// This node's AS number when its Node resource has none (an AS set there,
    /// e.g. with calicoctl-rs patch node, is kept) [default: the cluster's]
    #[arg(long = "as", env = "TABBY_AS")]
    pub as_number: Option<AsNumber>,
    /// BGP router id: an IPv4 address, or `hash` to derive one from the node's
    /// name (Calico's CALICO_ROUTER_ID); needed without an IPv4 address
    /// [default: the node's IPv4 address]
    #[arg(long, env = "TABBY_ROUTER_ID")]
    pub router_id: Option<RouterId>,
    /// Labels for this node's Node resource, key=value, comma-separated; each is
    /// added when the Node lacks its key (an operator's value is kept)
    #[arg(long = "node-labels", env = "TABBY_NODE_LABELS", value_delimiter = ',')]
    pub labels: Vec<Label>,
    /// MTU of tunnels and pods [default: the underlay's minus the encapsulation]
    #[arg(long, env = "TABBY_MTU")]
    pub mtu: Option<u32>,
    /// Use a learned route to a pool address only when its next hop is the node
    /// that owns the address per IPAM
    #[arg(long, env = "TABBY_IMPORT_OWNERSHIP_CHECK", default_value_t = true, action = ArgAction::Set)]
    pub import_ownership_check: bool,
    /// The directory BGP password files (BGPPeer and BGPConfiguration
    /// `password.file`) must be in
    #[arg(long, env = "TABBY_BGP_PASSWORD_DIR", default_value = crate::peering::passwords::DEFAULT_DIR)]
    pub bgp_password_dir: PathBuf,
    /// Full resync of routes, tunnels and NAT
    #[arg(long, env = "TABBY_RESYNC_INTERVAL", default_value = "30s")]
    pub resync_interval: GoDuration,
    /// After a restart, the longest BGP routes in the kernel are kept unchanged while
    /// peers resend theirs
    #[arg(long, env = "TABBY_BGP_SYNC_TIMEOUT", default_value = "30s")]
    pub bgp_sync_timeout: GoDuration,
    #[command(flatten)]
    pub log: telemetry::LogFlags,
    /// Where to serve Prometheus metrics and health checks: host:port, :port (this
    /// node's --ip, else loopback), or off
    #[arg(long, env = "TABBY_METRICS_ADDRESS", default_value = ":9190")]
    pub metrics_address: MetricsAddress,
    /// The status API's Unix socket
    #[arg(
        long,
        env = "TABBY_SOCKET",
        default_value = "/var/run/tabby/agent.sock"
    )]
    pub socket: PathBuf,
    /// Where the pods' MTU is written for tabby-cni
    #[arg(long, env = "TABBY_MTU_FILE", default_value = MTU_FILE)]
    pub mtu_file: PathBuf,
    /// Where this node's name is written for tabby-cni
    #[arg(long, env = "TABBY_NODENAME_FILE", default_value = NODENAME_FILE)]
    pub nodename_file: PathBuf,
    /// Where the last datastore view is kept, to route from when the datastore is
    /// unreachable at start
    #[arg(long, env = "TABBY_LAST_VIEW_FILE", default_value = LAST_VIEW_FILE)]
    pub last_view_file: PathBuf,
    /// On the etcd datastore, the kubeconfig of the Kubernetes API to read Services
    /// and EndpointSlices from [default: Calico's KUBECONFIG, when set]
    #[arg(long, env = "TABBY_SERVICES_KUBECONFIG", value_name = "FILE")]
    pub services_kubeconfig: Option<PathBuf>,
}

/// Flags that do not parse, or a Calico variable that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum FlagsError {
    #[error(transparent)]
    Flags(#[from] clap::Error),
    #[error(transparent)]
    Calico(#[from] calico::CalicoEnvError),
}

/// A flag whose value cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--{flag} ({variable}) {value}: {problem}")]
pub struct ConfigError {
    pub flag: &'static str,
    pub variable: &'static str,
    pub value: String,
    pub problem: String,
}

impl Flags {
    /// The flags from `args` and the environment `vars`, with calico-node's
    /// variables as fallbacks; what those did is in the returned notes.
    pub fn with_calico_env(
        args: Vec<std::ffi::OsString>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Self, Vec<calico::Note>), FlagsError> {
        use clap::CommandFactory;
        use clap::parser::ValueSource;
        let command = Self::command();
        let matches = command.clone().try_get_matches_from(&args)?;
        let given = |flag: &str| {
            command
                .get_arguments()
                .find(|a| a.get_long() == Some(flag))
                .and_then(|a| matches.value_source(a.get_id().as_str()))
                .is_some_and(|source| source != ValueSource::DefaultValue)
        };
        let calico = calico::read(vars, given)?;
        let mut args = args;
        args.extend(calico.args.into_iter().map(Into::into));
        Ok((Self::try_parse_from(args)?, calico.notes))
    }

    /// Where the metrics endpoint listens, if anywhere: as given, or with only a
    /// port on this node's explicit `--ip` (else loopback). Every interface
    /// (0.0.0.0) only when asked for by name: the endpoint tells the node's routes
    /// and peers to whoever reaches it.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        match self.metrics_address {
            MetricsAddress::Off => None,
            MetricsAddress::At(address) => Some(address),
            MetricsAddress::Port(port) => {
                let host = match &self.ip {
                    AddressChoice::Explicit(address) if address.addr().is_ipv4() => address.addr(),
                    _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
                };
                Some(SocketAddr::new(host, port))
            }
        }
    }

    /// The daemon's options; `hostname` names the node when no name is given.
    pub fn options(
        &self,
        hostname: impl FnOnce() -> Option<String>,
    ) -> Result<Options, ConfigError> {
        let node_name = match self.node_name.clone().or_else(hostname) {
            Some(name) if is_node_name(&name) => name,
            Some(name) => {
                return Err(ConfigError {
                    flag: "node-name",
                    variable: "TABBY_NODE_NAME",
                    value: format!("{name:?}"),
                    problem: "is not a valid node name (lower-case letters, digits, '-' and '.')"
                        .into(),
                });
            }
            None => {
                return Err(ConfigError {
                    flag: "node-name",
                    variable: "TABBY_NODE_NAME",
                    value: "(unset)".into(),
                    problem: "the hostname cannot be read either: set the node's name".into(),
                });
            }
        };
        let ipv4 = address(&self.ip, &self.ip_autodetection_method, true)?;
        let ipv6 = address(&self.ip6, &self.ip6_autodetection_method, false)?;
        if let Some(mtu) = self.mtu.filter(|m| !MTU_RANGE.contains(m)) {
            return Err(ConfigError {
                flag: "mtu",
                variable: "TABBY_MTU",
                value: mtu.to_string(),
                problem: format!("is outside {}..={}", MTU_RANGE.start(), MTU_RANGE.end()),
            });
        }
        if self.resync_interval.0.is_zero() {
            return Err(ConfigError {
                flag: "resync-interval",
                variable: "TABBY_RESYNC_INTERVAL",
                value: self.resync_interval.to_string(),
                problem: "must be longer than zero".into(),
            });
        }
        let mut options = Options::new(node_name);
        options.ipv4 = ipv4;
        options.ipv6 = ipv6;
        options.as_number = self.as_number;
        options.router_id = self.router_id.unwrap_or_default();
        options.labels = self
            .labels
            .iter()
            .map(|Label(k, v)| (k.clone(), v.clone()))
            .collect();
        options.mtu = self.mtu;
        options.check_ownership = self.import_ownership_check;
        options.bgp_password_dir = self.bgp_password_dir.clone();
        options.resync = self.resync_interval.0;
        options.bgp_sync_timeout = self.bgp_sync_timeout.0;
        options.mtu_file = Some(self.mtu_file.clone());
        options.nodename_file = Some(self.nodename_file.clone());
        options.last_view_file = Some(self.last_view_file.clone());
        Ok(options)
    }
}

impl Flags {
    /// Where Services are read when the datastore is not the Kubernetes API
    /// (etcd): `--services-kubeconfig`, else the first file of `KUBECONFIG`, as
    /// calico-node reads Services with it; `None` on the Kubernetes datastore (its
    /// own API) and when neither is given.
    pub fn services_api(
        &self,
        datastore: &api::datastore::DatastoreConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<api::datastore::config::KubernetesConfig> {
        use api::datastore::DatastoreConfig;
        if matches!(datastore, DatastoreConfig::Kubernetes(_)) {
            return None;
        }
        let from_env = || {
            let list = env("KUBECONFIG").filter(|l| !l.is_empty())?;
            std::env::split_paths(&list).next()
        };
        let path = self.services_kubeconfig.clone().or_else(from_env)?;
        Some(api::datastore::config::KubernetesConfig {
            kubeconfig: api::datastore::config::Kubeconfigs::Named(path),
            context: None,
            api_endpoint: None,
        })
    }
}

/// `--ip`/`--ip6` with its autodetection method, checked for its family.
fn address(
    choice: &AddressChoice,
    method: &Method,
    ipv4: bool,
) -> Result<AddressChoice, ConfigError> {
    let (flag, variable) = if ipv4 {
        ("ip", "TABBY_IP")
    } else {
        ("ip6", "TABBY_IP6")
    };
    match choice {
        AddressChoice::Autodetect(_) => Ok(AddressChoice::Autodetect(method.clone())),
        AddressChoice::Explicit(address) if address.addr().is_ipv4() != ipv4 => Err(ConfigError {
            flag,
            variable,
            value: address.to_string(),
            problem: format!(
                "is not an {} address (use --{})",
                if ipv4 { "IPv4" } else { "IPv6" },
                if ipv4 { "ip6" } else { "ip" }
            ),
        }),
        other => Ok(other.clone()),
    }
}

/// Node names are DNS subdomains, as Kubernetes names nodes.
fn is_node_name(name: &str) -> bool {
    let edge = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !name.is_empty()
        && name.len() <= 253
        && name.starts_with(edge)
        && name.ends_with(edge)
        && name.chars().all(|c| edge(c) || c == '-' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Flags, clap::Error> {
        Flags::try_parse_from(std::iter::once("tabby-agent").chain(args.iter().copied()))
    }

    fn options(args: &[&str]) -> Result<Options, ConfigError> {
        parse(args).unwrap().options(|| Some("node-1".into()))
    }

    #[test]
    fn defaults_autodetect_ipv4_and_name_the_node_after_the_host() {
        let options = options(&[]).unwrap();
        assert_eq!(options.node_name, "node-1");
        assert!(matches!(
            options.ipv4,
            AddressChoice::Autodetect(Method::FirstFound)
        ));
        assert!(matches!(options.ipv6, AddressChoice::None));
        assert!(options.check_ownership);
        assert_eq!(options.resync.as_secs(), 30);
    }

    #[test]
    fn flags_set_every_option() {
        let options = options(&[
            "--node-name=n7",
            "--ip-autodetection-method=interface=eth.*",
            "--ip6=fd00::7/64",
            "--as=65010",
            "--router-id=hash",
            "--node-labels=rack=r1,zone=z",
            "--mtu=1400",
            "--import-ownership-check=false",
            "--resync-interval=10s",
        ])
        .unwrap();
        assert_eq!(options.node_name, "n7");
        assert!(matches!(
            options.ipv4,
            AddressChoice::Autodetect(Method::Interface(_))
        ));
        assert!(
            matches!(options.ipv6, AddressChoice::Explicit(a) if a.to_string() == "fd00::7/64")
        );
        assert_eq!(options.as_number, Some(AsNumber(65010)));
        assert_eq!(options.router_id, RouterId::Hash);
        assert_eq!(options.labels["zone"], "z");
        assert_eq!(options.mtu, Some(1400));
        assert!(!options.check_ownership);
        assert_eq!(options.resync.as_secs(), 10);
    }

    #[test]
    fn mistakes_name_the_flag_its_variable_and_the_value() {
        assert_eq!(
            options(&["--mtu=40"]).unwrap_err().to_string(),
            "--mtu (TABBY_MTU) 40: is outside 68..=65535"
        );
        assert_eq!(
            options(&["--ip=fd00::1"]).unwrap_err().to_string(),
            "--ip (TABBY_IP) fd00::1/128: is not an IPv4 address (use --ip6)"
        );
        assert!(
            options(&["--node-name=Bad_Name"])
                .unwrap_err()
                .to_string()
                .starts_with("--node-name (TABBY_NODE_NAME) \"Bad_Name\"")
        );
        let error = parse(&["--ip-autodetection-method=sideways"]).unwrap_err();
        assert!(
            error.to_string().contains("first-found, interface=REGEX"),
            "{error}"
        );
        let error = parse(&["--router-id=0.0.0.0"]).unwrap_err();
        assert!(error.to_string().contains("neither \"hash\""), "{error}");
        let error = parse(&["--as=seventy"]).unwrap_err();
        assert!(error.to_string().contains("not an AS number"), "{error}");
    }

    /// Before: no default (the DaemonSet set 0.0.0.0:9190), so the endpoint listened
    /// on every interface of the node.
    #[test]
    fn hardening_the_agent_serves_metrics_on_its_node_address_or_loopback_by_default() {
        let on = |args: &[&str]| parse(args).unwrap().metrics_address();
        assert_eq!(
            on(&["--ip=10.0.0.5/24"]),
            Some("10.0.0.5:9190".parse().unwrap())
        );
        assert_eq!(on(&[]), Some("127.0.0.1:9190".parse().unwrap()));
        assert_eq!(
            on(&["--metrics-address=:9999"]),
            Some("127.0.0.1:9999".parse().unwrap())
        );
        assert_eq!(
            on(&["--metrics-address=0.0.0.0:9190"]),
            Some("0.0.0.0:9190".parse().unwrap()),
            "every interface only when named"
        );
        assert_eq!(on(&["--metrics-address=off"]), None);
        let error = parse(&["--metrics-address=everywhere"]).unwrap_err();
        assert!(
            error.to_string().contains("not host:port, :port or off"),
            "{error}"
        );
    }

    #[test]
    fn the_old_log_level_flag_still_sets_the_log_filter() {
        let flags = parse(&["--log-level=debug"]).unwrap();
        assert_eq!(flags.log.filter.as_deref(), Some("debug"));
    }

    #[test]
    fn install_calico_nodes_variables_fill_in_flags_not_given_and_a_flag_wins() {
        let args = ["tabby-agent", "--ip=192.0.2.10/24"]
            .map(Into::into)
            .to_vec();
        let vars = [
            ("NODENAME", "worker-1"),
            ("IP", "198.51.100.7"),
            ("AS", "64513"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let (flags, notes) = Flags::with_calico_env(args, vars).unwrap();
        let options = flags.options(|| None).unwrap();
        assert_eq!(options.node_name, "worker-1");
        assert_eq!(options.as_number, Some(AsNumber(64513)));
        assert!(
            matches!(options.ipv4, AddressChoice::Explicit(a) if a.to_string() == "192.0.2.10/24"),
            "{:?}",
            options.ipv4
        );
        assert!(notes.contains(&calico::Note::Overridden {
            variable: "IP",
            flag: "ip"
        }));
    }

    #[test]
    fn without_a_name_or_hostname_the_error_says_what_to_set() {
        let error = parse(&[]).unwrap().options(|| None).unwrap_err();
        assert!(error.to_string().contains("set the node's name"), "{error}");
    }
}
