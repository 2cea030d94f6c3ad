//! calico-node's environment as fallbacks for tabby-agent's flags, so a Calico
//! DaemonSet's `env:` block works unchanged: each variable tabby has a meaning for
//! sets its flag when neither the flag nor its `TABBY_*` variable is given (flags
//! win, then tabby's variables, then Calico's); every other calico-node variable
//! is named in a startup warning, never silently ignored. The datastore's
//! variables (`DATASTORE_TYPE`, `ETCD_*`, `K8S_API_ENDPOINT`, `KUBECONFIG`) are
//! read by `api::datastore::args`, shared by every binary; the default pool's
//! (`CALICO_IPV4POOL_*`, `NO_DEFAULT_POOLS`) by `node::default_pools`.

use std::str::FromStr;

use api::resources::AsNumber;

use crate::node::autodetect::{AddressChoice, Method};
use crate::peering::RouterId;

/// A Calico variable that stands in for a flag: its name, the flag's long name,
/// and how its value becomes the flag's (or what is wrong with it).
struct Fallback {
    variable: &'static str,
    flag: &'static str,
    value: fn(&str) -> Result<String, String>,
}

const FALLBACKS: &[Fallback] = &[
    // Calico's manifests set it from the Downward API (spec.nodeName), as
    // tabby's set TABBY_NODE_NAME.
    Fallback {
        variable: "NODENAME",
        flag: "node-name",
        value: as_is,
    },
    Fallback {
        variable: "IP",
        flag: "ip",
        value: parsed::<AddressChoice>,
    },
    Fallback {
        variable: "IP6",
        flag: "ip6",
        value: parsed::<AddressChoice>,
    },
    Fallback {
        variable: "IP_AUTODETECTION_METHOD",
        flag: "ip-autodetection-method",
        value: parsed::<Method>,
    },
    Fallback {
        variable: "IP6_AUTODETECTION_METHOD",
        flag: "ip6-autodetection-method",
        value: parsed::<Method>,
    },
    Fallback {
        variable: "AS",
        flag: "as",
        value: parsed::<AsNumber>,
    },
    Fallback {
        variable: "CALICO_ROUTER_ID",
        flag: "router-id",
        value: parsed::<RouterId>,
    },
    // Calico sets both from one `veth_mtu`: tabby's one MTU is that of tunnels
    // and pods. With both set, the smaller wins (see `read`).
    Fallback {
        variable: "FELIX_IPINIPMTU",
        flag: "mtu",
        value: parsed::<u32>,
    },
    Fallback {
        variable: "FELIX_VXLANMTU",
        flag: "mtu",
        value: parsed::<u32>,
    },
    Fallback {
        variable: "FELIX_LOGSEVERITYSCREEN",
        flag: "log",
        value: log_level,
    },
];

/// Read by the datastore's flags (`api::datastore::args`), not here.
const DATASTORE: &[&str] = &[
    "DATASTORE_TYPE",
    "ETCD_ENDPOINTS",
    "ETCD_CA_CERT_FILE",
    "ETCD_CERT_FILE",
    "ETCD_KEY_FILE",
    "ETCD_USERNAME",
    "ETCD_PASSWORD",
    "K8S_API_ENDPOINT",
    "KUBECONFIG",
];

/// Calico variables without a meaning in tabby, and why that loses nothing.
const MEANINGLESS: &[(&str, &str)] = &[
    (
        "CLUSTER_TYPE",
        "Calico reports it in its usage statistics; tabby reports none",
    ),
    (
        "CALICO_DISABLE_FILE_LOGGING",
        "tabby-agent logs to stderr only",
    ),
    (
        "WAIT_FOR_DATASTORE",
        "tabby-agent always waits for and retries its datastore",
    ),
];

/// calico-node's variables that carry no prefix of their own; any `CALICO_*` and
/// `FELIX_*` variable is Calico's too.
const CALICO_NODE: &[&str] = &[
    "NO_DEFAULT_POOLS",
    "USE_POD_CIDR",
    "DISABLE_NODE_IP_CHECK",
    "BGP_LOGSEVERITYSCREEN",
    "KUBERNETES_SERVICE_HOST_OVERRIDE",
];

/// What calico-node's environment means for tabby-agent.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CalicoEnv {
    /// `--flag=value` arguments to add after the command line's.
    pub args: Vec<String>,
    /// One line per Calico variable, for the log once logging is set up.
    pub notes: Vec<Note>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// Used for `--flag`.
    Used {
        variable: &'static str,
        flag: &'static str,
    },
    /// Not used: `--flag` (or its `TABBY_*` variable) is given and wins.
    Overridden {
        variable: &'static str,
        flag: &'static str,
    },
    /// Meaningless in tabby, for the reason given (logged as information).
    Meaningless {
        variable: &'static str,
        why: &'static str,
    },
    /// Not honoured by tabby (logged as a warning).
    Unsupported(String),
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Used { variable, flag } => write!(f, "{variable} (calico-node's) sets --{flag}"),
            Self::Overridden { variable, flag } => {
                write!(
                    f,
                    "{variable} (calico-node's) is ignored: --{flag} is given"
                )
            }
            Self::Meaningless { variable, why } => write!(f, "{variable} is ignored: {why}"),
            Self::Unsupported(variable) => write!(
                f,
                "{variable} is calico-node's and tabby-agent does not honour it: ignored \
                 (docs/migrate-from-calico.md lists what is)"
            ),
        }
    }
}

/// A Calico variable whose value cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable} (calico-node's, for --{flag}) {value:?}: {problem}")]
pub struct CalicoEnvError {
    pub variable: &'static str,
    pub flag: &'static str,
    pub value: String,
    pub problem: String,
}

/// What `vars` (the process's environment) says. `given(flag)` is true when the
/// command line or the flag's `TABBY_*` variable sets `--flag`.
pub fn read(
    vars: impl IntoIterator<Item = (String, String)>,
    given: impl Fn(&str) -> bool,
) -> Result<CalicoEnv, CalicoEnvError> {
    let vars: std::collections::BTreeMap<String, String> = vars.into_iter().collect();
    let mut env = CalicoEnv::default();
    let mut values: Vec<(&'static str, String)> = Vec::new();
    for fallback in FALLBACKS {
        let Some(text) = vars.get(fallback.variable).filter(|v| !v.is_empty()) else {
            continue;
        };
        let value = (fallback.value)(text).map_err(|problem| CalicoEnvError {
            variable: fallback.variable,
            flag: fallback.flag,
            value: text.clone(),
            problem,
        })?;
        let (variable, flag) = (fallback.variable, fallback.flag);
        if given(flag) {
            env.notes.push(Note::Overridden { variable, flag });
            continue;
        }
        env.notes.push(Note::Used { variable, flag });
        match values.iter_mut().find(|(f, _)| *f == flag) {
            // Only the MTU has two variables: the smaller fits both tunnels.
            Some((_, earlier)) if flag == "mtu" => {
                let smaller = earlier.parse::<u32>().ok().min(value.parse().ok());
                *earlier = smaller.map_or(value, |m| m.to_string());
            }
            Some(_) => {}
            None => values.push((flag, value)),
        }
    }
    env.args = values
        .into_iter()
        .map(|(flag, value)| format!("--{flag}={value}"))
        .collect();
    for name in vars.keys() {
        let handled = FALLBACKS.iter().any(|f| f.variable == name)
            || DATASTORE.contains(&&**name)
            || crate::node::default_pools::reads(name);
        if handled {
            continue;
        }
        if let Some((variable, why)) = MEANINGLESS.iter().find(|(v, _)| v == name) {
            env.notes.push(Note::Meaningless { variable, why });
        } else if name.starts_with("CALICO_")
            || name.starts_with("FELIX_")
            || CALICO_NODE.contains(&&**name)
        {
            env.notes.push(Note::Unsupported(name.clone()));
        }
    }
    Ok(env)
}

fn as_is(text: &str) -> Result<String, String> {
    Ok(text.to_owned())
}

/// `text` if it parses as the flag's type (whose errors say what is accepted).
fn parsed<T: FromStr>(text: &str) -> Result<String, String>
where
    T::Err: std::fmt::Display,
{
    text.parse::<T>()
        .map(|_| text.to_owned())
        .map_err(|e| e.to_string())
}

/// Felix's severities as a log filter.
fn log_level(text: &str) -> Result<String, String> {
    Ok(match text.to_ascii_lowercase().as_str() {
        "debug" => "debug",
        "info" => "info",
        "warning" | "warn" => "warn",
        "error" | "fatal" | "panic" => "error",
        "none" => "off",
        _ => return Err("is not Debug, Info, Warning, Error, Fatal, Panic or None".into()),
    }
    .to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn install_a_calico_daemonsets_environment_sets_the_flags_it_means() {
        let env = read(
            vars(&[
                ("NODENAME", "worker-1"),
                ("IP", "autodetect"),
                ("IP6", "none"),
                ("IP_AUTODETECTION_METHOD", "interface=eth.*,ens.*"),
                ("AS", "64513"),
                ("CALICO_ROUTER_ID", "hash"),
                ("FELIX_IPINIPMTU", "1440"),
                ("FELIX_VXLANMTU", "1410"),
                ("FELIX_LOGSEVERITYSCREEN", "Warning"),
                ("DATASTORE_TYPE", "kubernetes"),
                ("PATH", "/usr/bin"),
            ]),
            |_| false,
        )
        .unwrap();
        assert_eq!(
            env.args,
            [
                "--node-name=worker-1",
                "--ip=autodetect",
                "--ip6=none",
                "--ip-autodetection-method=interface=eth.*,ens.*",
                "--as=64513",
                "--router-id=hash",
                "--mtu=1410",
                "--log=warn",
            ]
        );
        // Datastore variables are the datastore flags' business; PATH is no Calico's.
        assert!(
            env.notes.iter().all(|n| matches!(n, Note::Used { .. })),
            "{:?}",
            env.notes
        );
    }

    #[test]
    fn install_a_flag_or_its_tabby_variable_wins_over_calicos() {
        let env = read(vars(&[("IP", "10.0.0.5"), ("AS", "64513")]), |flag| {
            flag == "ip"
        })
        .unwrap();
        assert_eq!(env.args, ["--as=64513"]);
        assert!(env.notes.contains(&Note::Overridden {
            variable: "IP",
            flag: "ip"
        }));
        assert_eq!(
            env.notes[0].to_string(),
            "IP (calico-node's) is ignored: --ip is given"
        );
    }

    #[test]
    fn install_every_calico_variable_tabby_does_not_honour_is_named_once() {
        let env = read(
            vars(&[
                ("CLUSTER_TYPE", "k8s,bgp"),
                ("FELIX_IPV6SUPPORT", "false"),
                ("CALICO_STARTUP_LOGLEVEL", "info"),
                ("BGP_LOGSEVERITYSCREEN", "info"),
                ("NO_DEFAULT_POOLS", "true"),
                ("HOME", "/root"),
            ]),
            |_| false,
        )
        .unwrap();
        assert!(env.args.is_empty());
        let shown: Vec<String> = env.notes.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 4, "{shown:?}");
        for variable in [
            "FELIX_IPV6SUPPORT",
            "CALICO_STARTUP_LOGLEVEL",
            "BGP_LOGSEVERITYSCREEN",
        ] {
            let lines: Vec<&String> = shown
                .iter()
                .filter(|l| l.starts_with(&format!("{variable} ")))
                .collect();
            assert_eq!(lines.len(), 1, "{shown:?}");
            assert!(lines[0].contains("does not honour it"), "{}", lines[0]);
        }
        assert!(
            env.notes.contains(&Note::Meaningless {
                variable: "CLUSTER_TYPE",
                why: "Calico reports it in its usage statistics; tabby reports none"
            }),
            "{shown:?}"
        );
    }

    #[test]
    fn install_a_bad_calico_value_names_the_variable_its_flag_and_what_is_accepted() {
        let cases = [
            (
                "IP",
                "eth0",
                "not \"autodetect\", \"none\" or an IP address",
            ),
            (
                "IP_AUTODETECTION_METHOD",
                "nearest",
                "not an autodetection method",
            ),
            ("AS", "seven", "AS"),
            ("FELIX_IPINIPMTU", "big", "invalid digit"),
            ("FELIX_LOGSEVERITYSCREEN", "loud", "not Debug, Info"),
        ];
        for (variable, value, expected) in cases {
            let error = read(vars(&[(variable, value)]), |_| false).unwrap_err();
            let shown = error.to_string();
            assert!(
                shown.starts_with(&format!("{variable} (calico-node's, for --")),
                "{shown}"
            );
            assert!(shown.contains(value), "{shown}");
            assert!(shown.contains(expected), "{shown}");
        }
    }
}
