//! Version negotiation: which spec versions the plugins speak, the VERSION reply,
//! and which commands a config's `cniVersion` allows.

use super::env::Command;
use crate::error::CniError;

/// The spec versions whose configs and results both plugins speak. The results of
/// 0.3.0 and 0.3.1 are alike, as are those of 1.0.0 and 1.1.0 (which adds STATUS
/// and GC).
pub const SUPPORTED_VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// The version of replies made before a config (and so its `cniVersion`) is known.
pub const LATEST: &str = "1.0.0";

/// The supported `cniVersion` of a config, if it has one (errors are then written
/// in it).
pub fn version_of(stdin: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(stdin).ok()?;
    let version = value.get("cniVersion")?.as_str()?;
    SUPPORTED_VERSIONS
        .contains(&version)
        .then(|| version.to_owned())
}

/// The VERSION reply, in `version`.
pub fn reply(version: &str) -> String {
    serde_json::json!({
        "cniVersion": version,
        "supportedVersions": SUPPORTED_VERSIONS,
    })
    .to_string()
}

/// Refuses a version neither plugin speaks.
pub fn check(version: &str) -> Result<(), CniError> {
    match SUPPORTED_VERSIONS.contains(&version) {
        true => Ok(()),
        false => Err(CniError::IncompatibleVersion {
            found: version.to_owned(),
        }),
    }
}

/// CHECK came with 0.4.0: a 0.3.x config does not have it.
pub fn allows(command: Command, version: &str) -> Result<(), CniError> {
    if command == Command::Check && version.starts_with("0.3.") {
        return Err(CniError::UnsupportedCommand {
            command: command.name(),
            version: version.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_lists_the_supported_spec_versions_in_the_configs_version() {
        let reply: serde_json::Value = serde_json::from_str(&reply("0.4.0")).unwrap();
        assert_eq!(
            reply,
            serde_json::json!({
                "cniVersion": "0.4.0",
                "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
            })
        );
        assert_eq!(version_of(br#"{"cniVersion":"0.2.0"}"#), None);
        assert_eq!(check("0.2.0").unwrap_err().code(), 1);
        assert_eq!(allows(Command::Check, "0.3.1").unwrap_err().code(), 1);
        assert!(allows(Command::Check, "0.4.0").is_ok());
    }
}
