//! Unique, short names, so parallel tests never collide on namespaces or logs.

use anyhow::{Result, bail};

/// A short random id (6 hex digits) naming everything one test creates.
pub fn unique_id() -> String {
    format!("{:06x}", rand::random::<u32>() & 0xff_ffff)
}

/// The prefix of every namespace a harness run creates: `tb-<id>-`.
pub fn netns_prefix(id: &str) -> String {
    format!("tb-{id}-")
}

/// Namespace name `tb-<id>-<role>`.
pub fn netns_name(id: &str, role: &str) -> String {
    format!("{}{role}", netns_prefix(id))
}

/// Checks a name that becomes part of interface names (with a 3-character prefix they
/// must fit Linux's 15) and namespace names: lowercase letters, digits and `-`.
pub fn check_short_name(kind: &str, name: &str) -> Result<()> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if name.is_empty() || name.len() > 12 || !valid_chars {
        bail!("{kind} name {name:?} must be 1-12 characters of a-z, 0-9 and '-'");
    }
    Ok(())
}

/// Makes a test name safe for a directory name.
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_six_hex_digits() {
        let id = unique_id();
        assert_eq!(id.len(), 6);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn short_names_reject_what_interfaces_cannot_carry() {
        assert!(check_short_name("node", "n1").is_ok());
        assert!(check_short_name("node", "").is_err());
        assert!(check_short_name("node", "thirteen-char").is_err());
        assert!(check_short_name("node", "N1").is_err());
        assert!(check_short_name("node", "n/1").is_err());
    }

    #[test]
    fn test_paths_become_directory_names() {
        assert_eq!(sanitize("mod::test_a"), "mod__test_a");
    }
}
