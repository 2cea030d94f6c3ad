//! tabby-reflector's configuration file (YAML, `--config`): its shape, how it is
//! read, and its validation. Every error names the field path and the value:
//! `peers[1].holdTime: 2 must be 0 or at least 3`.
//!
//! ```yaml
//! asNumber: 64512
//! routerId: 10.0.0.1
//! clusterId: 224.0.0.1          # or 3758096385; the router id when left out
//! listen: { address: "::", port: 179 }
//! gracefulRestart: { restartTime: 120 }
//! bfd: { enabled: true, minRx: 300ms, minTx: 300ms, multiplier: 3 }
//! peers:
//!   - { address: 10.0.0.2, asNumber: 64512, passwordFile: /etc/tabby/md5 }
//!   - { address: 10.0.0.4, asNumber: 64512, bfd: { enabled: false } }
//!   - { address: 10.0.0.3, asNumber: 64512, routeReflectorClient: false }
//! listenRanges:
//!   - { prefix: 10.0.0.0/16, asNumber: 64512, maxSessions: 500 }
//! api: { socket: /run/tabby/reflector.sock, address: 127.0.0.1:50051 }
//! metrics: { address: 0.0.0.0:9094 }
//! ```

mod load;
mod schema;
mod validate;

pub use load::{ConfigError, load, parse};
pub use schema::*;
pub(crate) use validate::read_password;

#[cfg(test)]
mod tests;
