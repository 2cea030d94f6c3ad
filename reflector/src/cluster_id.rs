//! The route-reflection cluster id (RFC 4456 §7): four octets, written either as a
//! dotted quad (`224.0.0.1`, Calico's `routeReflectorClusterID` style) or as a
//! 32-bit decimal number (BIRD's and FRR's style).

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// A cluster id; displayed as a dotted quad, the form CLUSTER_LIST dumps use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClusterId(pub u32);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("cluster id {0:?} is neither a dotted quad (224.0.0.1) nor a 32-bit number")]
pub struct ClusterIdError(String);

impl ClusterIdError {
    /// The text that did not parse.
    pub fn text(&self) -> &str {
        &self.0
    }
}

impl FromStr for ClusterId {
    type Err = ClusterIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(addr) = s.parse::<Ipv4Addr>() {
            return Ok(ClusterId(addr.into()));
        }
        s.parse::<u32>()
            .map(ClusterId)
            .map_err(|_| ClusterIdError(s.to_owned()))
    }
}

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Ipv4Addr::from(self.0).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_quad_and_number_forms_name_the_same_id() {
        let quad: ClusterId = "224.0.0.1".parse().unwrap();
        let number: ClusterId = "3758096385".parse().unwrap();
        assert_eq!(quad, number);
        assert_eq!(number.to_string(), "224.0.0.1");
    }

    #[test]
    fn a_value_that_fits_neither_form_is_named_in_the_error() {
        let err = "224.0.0.256".parse::<ClusterId>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "cluster id \"224.0.0.256\" is neither a dotted quad (224.0.0.1) nor a 32-bit number"
        );
        assert!("4294967296".parse::<ClusterId>().is_err());
    }
}
