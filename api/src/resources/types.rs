//! Value types shared by several kinds. Each parses from the string an operator writes
//! and fails with `"<text>" is not <what>`, which YAML errors prefix with the field path.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ValidationError;

/// Serde as a string through `Display` / `FromStr`, with an error naming the text.
macro_rules! string_serde {
    ($type:ty, $what:literal) => {
        impl FromStr for $type {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, String> {
                Self::parse(text).ok_or_else(|| format!("{text:?} is not {}", $what))
            }
        }

        impl Serialize for $type {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                parsed_str(deserializer, $what)
            }
        }
    };
}

/// Deserialises a string through `FromStr`. Failing inside the visitor (rather than
/// after reading a `String`) lets yaml_serde name the field's full path.
pub(crate) fn parsed_str<'de, D, T>(deserializer: D, what: &'static str) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr<Err: fmt::Display>,
{
    struct Parsed<T>(&'static str, std::marker::PhantomData<T>);

    impl<T: FromStr<Err: fmt::Display>> serde::de::Visitor<'_> for Parsed<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<T, E> {
            text.parse().map_err(E::custom)
        }
    }

    deserializer.deserialize_str(Parsed(what, std::marker::PhantomData))
}

/// An IPv4 or IPv6 prefix, `10.0.0.0/16`. Host bits may be set (a node's address with
/// its subnet); kinds that need a network check [`Cidr::require_masked`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr(pub IpNet);

impl Cidr {
    fn parse(text: &str) -> Option<Self> {
        text.parse().ok().map(Self)
    }

    pub fn is_ipv4(&self) -> bool {
        matches!(self.0, IpNet::V4(_))
    }

    /// Fails, suggesting the network, when host bits are set.
    pub fn require_masked(&self, path: &str) -> Result<(), ValidationError> {
        let masked = self.0.trunc();
        if masked != self.0 {
            return Err(ValidationError::new(
                path,
                self.to_string(),
                format!("has host bits set; did you mean \"{masked}\"?"),
            ));
        }
        Ok(())
    }

    /// Fails unless the prefix is of the IP family `ipv4` says.
    pub fn require_family(&self, path: &str, ipv4: bool) -> Result<(), ValidationError> {
        if self.is_ipv4() != ipv4 {
            let family = if ipv4 { "an IPv4" } else { "an IPv6" };
            return Err(ValidationError::new(
                path,
                self.to_string(),
                format!("is not {family} prefix"),
            ));
        }
        Ok(())
    }

    /// The most-specific prefix length of this family (32 or 128).
    pub fn max_prefix_len(&self) -> u8 {
        self.0.max_prefix_len()
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

string_serde!(Cidr, "a CIDR");

/// An autonomous system number; written as a plain number or in asdot (`1.10`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AsNumber(pub u32);

impl AsNumber {
    /// 64512, the first private ASN: Calico's and tabby's default.
    pub const DEFAULT: AsNumber = AsNumber(64512);

    fn parse(text: &str) -> Option<Self> {
        match text.split_once('.') {
            Some((high, low)) => {
                let (high, low): (u16, u16) = (high.parse().ok()?, low.parse().ok()?);
                Some(Self((u32::from(high) << 16) | u32::from(low)))
            }
            None => text.parse().ok().map(Self),
        }
    }
}

impl fmt::Display for AsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for AsNumber {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::parse(text).ok_or_else(|| format!("{text:?} is not an AS number"))
    }
}

impl Serialize for AsNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(self.0)
    }
}

impl<'de> Deserialize<'de> for AsNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Number(u64),
            Text(String),
        }
        match Written::deserialize(deserializer)? {
            Written::Number(n) => u32::try_from(n)
                .map(Self)
                .map_err(|_| serde::de::Error::custom(format!("{n} is not an AS number"))),
            Written::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A Go-style duration as Kubernetes writes them: `120s`, `1m30s`, `500ms`, `2h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoDuration(pub Duration);

impl GoDuration {
    fn parse(text: &str) -> Option<Self> {
        let mut rest = text;
        let mut total = Duration::ZERO;
        if rest.is_empty() {
            return None;
        }
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            let amount: u64 = rest[..digits].parse().ok()?;
            rest = &rest[digits..];
            let unit = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let part = match &rest[..unit] {
                "h" => Duration::from_secs(amount.checked_mul(3600)?),
                "m" => Duration::from_secs(amount.checked_mul(60)?),
                "s" => Duration::from_secs(amount),
                "ms" => Duration::from_millis(amount),
                _ => return None,
            };
            total = total.checked_add(part)?;
            rest = &rest[unit..];
        }
        Some(Self(total))
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.subsec_millis() == 0 {
            write!(f, "{}s", self.0.as_secs())
        } else {
            write!(f, "{}ms", self.0.as_millis())
        }
    }
}

string_serde!(GoDuration, "a duration (like 120s, 1m30s or 500ms)");

/// A BGP peer's address with an optional port: `10.0.0.1`, `10.0.0.1:1179`,
/// `fd00::1`, `[fd00::1]:1179`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerAddress {
    pub ip: IpAddr,
    pub port: Option<u16>,
}

impl PeerAddress {
    fn parse(text: &str) -> Option<Self> {
        if let Ok(ip) = text.parse() {
            return Some(Self { ip, port: None });
        }
        let socket: std::net::SocketAddr = text.parse().ok()?;
        Some(Self {
            ip: socket.ip(),
            port: Some(socket.port()),
        })
    }
}

impl fmt::Display for PeerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.ip, self.port) {
            (ip, None) => write!(f, "{ip}"),
            (IpAddr::V4(ip), Some(port)) => write!(f, "{ip}:{port}"),
            (IpAddr::V6(ip), Some(port)) => write!(f, "[{ip}]:{port}"),
        }
    }
}

string_serde!(PeerAddress, "an IP address with an optional port");

/// An Ethernet address, `66:2f:8b:01:02:03`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddress(pub [u8; 6]);

impl MacAddress {
    fn parse(text: &str) -> Option<Self> {
        let mut bytes = [0; 6];
        let mut parts = text.split(':');
        for byte in &mut bytes {
            let part = parts.next()?;
            if part.len() != 2 {
                return None;
            }
            *byte = u8::from_str_radix(part, 16).ok()?;
        }
        parts.next().is_none().then_some(Self(bytes))
    }
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

string_serde!(MacAddress, "a MAC address");

/// A BGP community: standard `65000:100` or large `65000:1:2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Community {
    Standard(u16, u16),
    Large(u32, u32, u32),
}

impl Community {
    fn parse(text: &str) -> Option<Self> {
        let parts: Vec<&str> = text.split(':').collect();
        match parts[..] {
            [a, b] => Some(Self::Standard(a.parse().ok()?, b.parse().ok()?)),
            [a, b, c] => Some(Self::Large(
                a.parse().ok()?,
                b.parse().ok()?,
                c.parse().ok()?,
            )),
            _ => None,
        }
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Standard(a, b) => write!(f, "{a}:{b}"),
            Self::Large(a, b, c) => write!(f, "{a}:{b}:{c}"),
        }
    }
}

string_serde!(
    Community,
    "a BGP community (aa:nn, or aa:nn:mm for a large one)"
);

/// A key in a Kubernetes Secret, as Calico references BGP passwords.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeyRef {
    pub name: String,
    pub key: String,
}

/// A BGP (TCP MD5) password: from a Secret (Kubernetes) or from a file on the node.
/// It holds no key, only where the key is; but a key written here by mistake
/// (`password: s3cret`) must not reach a log, so a value of the wrong shape is
/// refused without being repeated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpPassword {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeyRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

impl<'de> Deserialize<'de> for BgpPassword {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        struct Written {
            #[serde(default)]
            secret_key_ref: Option<SecretKeyRef>,
            #[serde(default)]
            file: Option<String>,
        }
        let value = serde_json::Value::deserialize(deserializer)?;
        let written: Written = serde_json::from_value(value).map_err(|_| {
            serde::de::Error::custom(
                "must be {secretKeyRef: {name, key}} or {file: /absolute/path}; what is \
                 written is not repeated, as it may be a password",
            )
        })?;
        Ok(Self {
            secret_key_ref: written.secret_key_ref,
            file: written.file,
        })
    }
}

impl BgpPassword {
    pub(super) fn validate(&self, path: &str) -> Result<(), ValidationError> {
        match (&self.secret_key_ref, &self.file) {
            (Some(_), None) => Ok(()),
            (None, Some(file)) if file.starts_with('/') => Ok(()),
            // Not repeated: it may be a password written in the wrong place.
            (None, Some(_)) => Err(ValidationError::rendered(
                format!("{path}.file"),
                "(not shown)",
                "is not an absolute path",
            )),
            (Some(_), Some(file)) => Err(ValidationError::new(
                format!("{path}.file"),
                file,
                "cannot be combined with secretKeyRef",
            )),
            (None, None) => Err(ValidationError::missing(
                format!("{path}.secretKeyRef"),
                "is required unless file is set",
            )),
        }
    }
}

/// `- cidr: 10.96.0.0/12` entries of the service address lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CidrEntry {
    pub cidr: Cidr,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_as_operators_write_them() {
        assert_eq!("1.10".parse::<AsNumber>(), Ok(AsNumber(65546)));
        assert_eq!("64512".parse::<AsNumber>(), Ok(AsNumber(64512)));
        assert_eq!(
            "1m30s".parse::<GoDuration>().unwrap().0,
            Duration::from_secs(90)
        );
        assert_eq!("500ms".parse::<GoDuration>().unwrap().to_string(), "500ms");
        assert!("5 minutes".parse::<GoDuration>().is_err());
        let peer: PeerAddress = "[fd00::1]:1179".parse().unwrap();
        assert_eq!(
            (peer.port, peer.to_string()),
            (Some(1179), "[fd00::1]:1179".into())
        );
        assert_eq!(
            "66:2F:8b:01:02:03"
                .parse::<MacAddress>()
                .unwrap()
                .to_string(),
            "66:2f:8b:01:02:03"
        );
        assert!("66:2f:8b:01:02".parse::<MacAddress>().is_err());
        assert_eq!(
            "65000:1:2".parse::<Community>(),
            Ok(Community::Large(65000, 1, 2))
        );
        assert_eq!(
            "70000:1".parse::<Community>(),
            Err("\"70000:1\" is not a BGP community (aa:nn, or aa:nn:mm for a large one)".into())
        );
        assert_eq!(
            "10.0.0.0/33".parse::<Cidr>(),
            Err("\"10.0.0.0/33\" is not a CIDR".into())
        );
    }

    #[test]
    fn host_bits_are_reported_with_the_network() {
        let cidr: Cidr = "10.0.0.1/24".parse().unwrap();
        assert_eq!(
            cidr.require_masked("spec.cidr").unwrap_err().to_string(),
            "spec.cidr: \"10.0.0.1/24\" has host bits set; did you mean \"10.0.0.0/24\"?"
        );
    }
}
