//! What serde cannot check: values in range, fields that exclude each other,
//! addresses that make sense, nothing configured twice.

use std::net::Ipv4Addr;

use super::load::ConfigError;
use super::schema::{Config, GracefulRestart, PeerGracefulRestart, Session};

/// RFC 6793: AS_TRANS stands in for 4-octet AS numbers and is no one's AS.
const AS_TRANS: u32 = 23456;
/// RFC 4724: the restart time has 12 bits.
const MAX_RESTART_TIME: u16 = 4095;
/// Linux's TCP_MD5SIG_MAXKEYLEN.
const MAX_PASSWORD_LEN: usize = 80;

type Result = std::result::Result<(), ConfigError>;

impl Config {
    /// Checks everything serde does not; errors carry the field path.
    pub fn validate(&self, datastore: bool) -> Result {
        match self.as_number {
            Some(asn) => as_number("asNumber", asn)?,
            None if !datastore => {
                return Err(ConfigError::invalid(
                    "asNumber",
                    "",
                    "is required (or use a datastore (--datastore-type) to take it from there)",
                ));
            }
            None => {}
        }
        router_id("routerId", self.router_id)?;
        if let Some(Err(error)) = self.cluster_id.as_ref().map(|c| c.parse()) {
            return Err(ConfigError::invalid(
                "clusterId",
                error.text(),
                "is neither a dotted quad (224.0.0.1) nor a 32-bit number",
            ));
        }
        if let Some(bfd) = &self.bfd {
            bfd.validate("bfd")?;
        }
        if self.listen.port == 0 {
            return Err(ConfigError::invalid("listen.port", 0, "is not a port"));
        }
        if let Some(gr) = &self.graceful_restart {
            restart_time("gracefulRestart.restartTime", gr)?;
        }
        for (name, filter) in &self.filters {
            filter.validate(&format!("filters.{name}"))?;
        }
        for (i, peer) in self.peers.iter().enumerate() {
            let path = format!("peers[{i}]");
            if peer.address.is_unspecified() || peer.address.is_multicast() {
                return Err(ConfigError::invalid(
                    format!("{path}.address"),
                    peer.address,
                    "is not a peer's address",
                ));
            }
            if let Some(j) = self.peers[..i]
                .iter()
                .position(|p| p.address == peer.address)
            {
                return Err(ConfigError::invalid(
                    format!("{path}.address"),
                    peer.address,
                    format!("is already peers[{j}]"),
                ));
            }
            as_number(&format!("{path}.asNumber"), peer.as_number)?;
            if let Some(bfd) = &peer.bfd {
                bfd.validate(&format!("{path}.bfd"))?;
            }
            self.session(&path, &peer.session())?;
        }
        for (i, range) in self.listen_ranges.iter().enumerate() {
            let path = format!("listenRanges[{i}]");
            if range.prefix != range.prefix.trunc() {
                return Err(ConfigError::invalid(
                    format!("{path}.prefix"),
                    range.prefix.to_string(),
                    format!(
                        "has host bits set (the network is {})",
                        range.prefix.trunc()
                    ),
                ));
            }
            let overlaps = self.listen_ranges[..i].iter().position(|r| {
                r.prefix.contains(&range.prefix.network())
                    || range.prefix.contains(&r.prefix.network())
            });
            if let Some(j) = overlaps {
                return Err(ConfigError::invalid(
                    format!("{path}.prefix"),
                    range.prefix.to_string(),
                    format!("overlaps listenRanges[{j}]"),
                ));
            }
            if let Some(asn) = range.as_number {
                as_number(&format!("{path}.asNumber"), asn)?;
            }
            if range.max_sessions == 0 {
                return Err(ConfigError::invalid(
                    format!("{path}.maxSessions"),
                    0,
                    "must be at least 1",
                ));
            }
            self.session(&path, &range.session())?;
        }
        if !self.api.socket.is_absolute() {
            return Err(ConfigError::invalid(
                "api.socket",
                &self.api.socket,
                "must be an absolute path",
            ));
        }
        if self.shutdown_message.len() > bgp::codec::MAX_SHUTDOWN_COMMUNICATION {
            return Err(ConfigError::invalid(
                "shutdownMessage",
                self.shutdown_message.len(),
                "bytes is longer than RFC 9003's 255",
            ));
        }
        Ok(())
    }

    /// What is allowed but probably not meant, for the log at every (re)load.
    pub fn warnings(&self) -> Vec<String> {
        let sessions = self
            .peers
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("peers[{i}]"), p.hold_time))
            .chain(
                self.listen_ranges
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (format!("listenRanges[{i}]"), r.hold_time)),
            );
        sessions
            .filter(|(_, hold)| *hold == Some(0))
            .map(|(path, _)| {
                format!(
                    "{path}.holdTime: 0 turns keepalives and the hold timer off: a peer \
                     that dies silently keeps its routes until its TCP connection fails"
                )
            })
            .collect()
    }

    /// A peer's or listen range's session, and the filters it names.
    fn session(&self, path: &str, given: &Session) -> Result {
        let named = [
            ("importFilter", &given.import_filter),
            ("exportFilter", &given.export_filter),
        ];
        for (field, name) in named {
            if let Some(name) = name.as_ref().filter(|n| !self.filters.contains_key(*n)) {
                return Err(ConfigError::invalid(
                    format!("{path}.{field}"),
                    name,
                    "is not the name of a filter in `filters`",
                ));
            }
        }
        session(path, given)
    }
}

fn as_number(path: &str, asn: u32) -> Result {
    if asn == 0 || asn == AS_TRANS {
        return Err(ConfigError::invalid(path, asn, "is not a usable AS number"));
    }
    Ok(())
}

fn router_id(path: &str, id: Ipv4Addr) -> Result {
    if id.is_unspecified() || id.is_broadcast() || id.is_multicast() {
        return Err(ConfigError::invalid(path, id, "is not a usable router id"));
    }
    Ok(())
}

fn restart_time(path: &str, gr: &GracefulRestart) -> Result {
    if gr.restart_time > MAX_RESTART_TIME {
        return Err(ConfigError::invalid(
            path,
            gr.restart_time,
            format!("is more than {MAX_RESTART_TIME} seconds"),
        ));
    }
    Ok(())
}

fn session(path: &str, session: &Session) -> Result {
    match (&session.password, &session.password_file) {
        (Some(_), Some(file)) => {
            return Err(ConfigError::invalid(
                format!("{path}.passwordFile"),
                file,
                "cannot be combined with password",
            ));
        }
        (Some(password), None) if password.0.is_empty() || password.0.len() > MAX_PASSWORD_LEN => {
            return Err(ConfigError::invalid(
                format!("{path}.password"),
                format!("{} bytes", password.0.len()),
                format!("must be 1 to {MAX_PASSWORD_LEN} bytes"),
            ));
        }
        _ => {}
    }
    if let Some(hold) = session.hold_time.filter(|&h| h == 1 || h == 2) {
        return Err(ConfigError::invalid(
            format!("{path}.holdTime"),
            hold,
            "must be 0 or at least 3 (RFC 4271 4.2)",
        ));
    }
    if let Some(keepalive) = session.keepalive_time {
        let hold = session
            .hold_time
            .unwrap_or(bgp::session::config::DEFAULT_HOLD_TIME);
        if keepalive == 0 || (hold > 0 && keepalive >= hold) {
            return Err(ConfigError::invalid(
                format!("{path}.keepaliveTime"),
                keepalive,
                format!("must be more than 0 and less than the hold time {hold}"),
            ));
        }
    }
    if let Some(PeerGracefulRestart::With(gr)) = &session.graceful_restart {
        restart_time(&format!("{path}.gracefulRestart.restartTime"), gr)?;
    }
    Ok(())
}

/// Reads a password file: its content without a trailing newline.
pub(crate) fn read_password(
    path: &str,
    file: &std::path::Path,
) -> std::result::Result<Vec<u8>, ConfigError> {
    let text = std::fs::read(file)
        .map_err(|e| ConfigError::invalid(path, file, format!("cannot be read: {e}")))?;
    let key = text.strip_suffix(b"\n").unwrap_or(&text).to_vec();
    if key.is_empty() || key.len() > MAX_PASSWORD_LEN {
        return Err(ConfigError::invalid(
            path,
            file,
            format!("must hold 1 to {MAX_PASSWORD_LEN} bytes"),
        ));
    }
    Ok(key)
}
