//! The workloads of the route-reflector benchmark. Prefix `i` is the /32
//! `100.64.0.0 + i`; a client announces a range of them and, when it monitors,
//! must end up holding every announced prefix but its own.

use std::fmt;
use std::net::Ipv4Addr;
use std::ops::Range;
use std::str::FromStr;

/// Where prefix 0 is: 100.64.0.0/10 holds the 1,000,000 of W2.
pub const BASE: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 0);

/// The /32 numbered `i`.
pub fn prefix(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(BASE) + i)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Workload {
    /// 100,000 /32 from one tester to 10 monitors, densely packed.
    W1,
    /// 1,000,000 /32 from one tester to 1 monitor, densely packed.
    W2,
    /// 20,000 /32 with distinct attributes (one per UPDATE) to 10 monitors.
    W3,
    /// 200 client sessions, each announcing 50 /32 (10,000 in all) and receiving
    /// the other 9,950: a cluster of nodes behind one reflector.
    W4,
    /// W1, then waves: withdraw 10 % and announce them again, timed per wave.
    W5,
}

/// One client session's part in a workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// The prefixes it announces (empty for pure monitors).
    pub announces: Range<u32>,
    /// Whether it must receive every other client's prefixes.
    pub monitors: bool,
}

/// Waves of W5.
pub const CHURN_WAVES: usize = 5;

impl Workload {
    pub const ALL: [Workload; 5] = [
        Workload::W1,
        Workload::W2,
        Workload::W3,
        Workload::W4,
        Workload::W5,
    ];

    /// Every client session, testers first.
    pub fn roles(self) -> Vec<Role> {
        let tester_and_monitors = |prefixes: u32, monitors: usize| {
            let mut roles = vec![Role {
                announces: 0..prefixes,
                monitors: false,
            }];
            roles.extend((0..monitors).map(|_| Role {
                announces: 0..0,
                monitors: true,
            }));
            roles
        };
        match self {
            Workload::W1 | Workload::W5 => tester_and_monitors(100_000, 10),
            Workload::W2 => tester_and_monitors(1_000_000, 1),
            Workload::W3 => tester_and_monitors(20_000, 10),
            Workload::W4 => (0..200)
                .map(|i| Role {
                    announces: i * 50..(i + 1) * 50,
                    monitors: true,
                })
                .collect(),
        }
    }

    /// One UPDATE per prefix, each with its own MED.
    pub fn distinct_attributes(self) -> bool {
        self == Workload::W3
    }

    /// The churn waves after the first convergence.
    pub fn waves(self) -> usize {
        if self == Workload::W5 { CHURN_WAVES } else { 0 }
    }

    /// How many prefixes are announced in all.
    pub fn prefixes(self) -> u32 {
        self.roles().iter().map(|r| r.announces.len() as u32).sum()
    }

    pub fn describe(self) -> &'static str {
        match self {
            Workload::W1 => "100,000 /32 -> 10 monitors",
            Workload::W2 => "1,000,000 /32 -> 1 monitor",
            Workload::W3 => "20,000 /32, distinct attributes -> 10 monitors",
            Workload::W4 => "200 clients x 50 /32 (10,000), each receives the rest",
            Workload::W5 => "W1, then withdraw + re-announce 10 % (per wave)",
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl FromStr for Workload {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Workload::ALL
            .into_iter()
            .find(|w| w.to_string().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown workload {s:?} (w1 to w5)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_announce_the_prefix_counts_the_issue_names() {
        let counts: Vec<u32> = Workload::ALL.iter().map(|w| w.prefixes()).collect();
        assert_eq!(counts, [100_000, 1_000_000, 20_000, 10_000, 100_000]);
        assert_eq!(Workload::W4.roles().len(), 200);
        assert_eq!(
            Workload::W1.roles().iter().filter(|r| r.monitors).count(),
            10
        );
        assert_eq!(prefix(1_000_000 - 1), Ipv4Addr::new(100, 79, 66, 63));
    }

    #[test]
    fn workload_names_parse_in_either_case() {
        assert_eq!("w3".parse::<Workload>(), Ok(Workload::W3));
        assert!("w9".parse::<Workload>().is_err());
    }
}
