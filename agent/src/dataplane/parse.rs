//! Literal addresses for the unit tests, which read best as strings.

use std::net::IpAddr;

use ipnet::IpNet;

pub fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}
