//! Reading the file: YAML into [`Config`], then [`Config::validate`].

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use super::schema::Config;

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not YAML, or a field unknown, missing or of the wrong type; yaml_serde puts
    /// the field path and the line in the message.
    #[error("{0}")]
    Syntax(String),
    /// A filter that does not make sense; the path starts at `filters.NAME`.
    #[error(transparent)]
    Filter(#[from] bgp::rib::FilterError),
    #[error("{path}: {value} {problem}")]
    Invalid {
        path: String,
        value: String,
        problem: String,
    },
}

/// The `bfd` blocks are checked by the type the CRDs share.
impl From<api::resources::ValidationError> for ConfigError {
    fn from(error: api::resources::ValidationError) -> Self {
        Self::Invalid {
            path: error.path,
            value: error.value,
            problem: error.problem,
        }
    }
}

impl ConfigError {
    pub fn invalid(path: impl Into<String>, value: impl Debug, problem: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.into(),
            value: format!("{value:?}"),
            problem: problem.into(),
        }
    }
}

/// Reads and validates the file at `path`. `datastore`: AS and cluster id may come
/// from the datastore instead.
pub fn load(path: &Path, datastore: bool) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, datastore)
}

/// Parses and validates configuration text.
pub fn parse(text: &str, datastore: bool) -> Result<Config, ConfigError> {
    let config: Config =
        yaml_serde::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
    config.validate(datastore)?;
    Ok(config)
}
