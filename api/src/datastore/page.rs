//! Continue tokens: `<revision>/<last name>`, opaque to callers. The revision pins a
//! paginated list to one snapshot where the backend can read one.

use super::{Error, Result};
use crate::resources::Revision;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ContinueToken {
    pub revision: Revision,
    /// The last name returned; the next page starts after it.
    pub after: String,
}

impl ContinueToken {
    pub fn encode(&self) -> String {
        format!("{}/{}", self.revision, self.after)
    }

    pub fn decode(token: &str) -> Result<Self> {
        let bad = || Error::BadContinueToken(token.to_owned());
        let (revision, after) = token.split_once('/').ok_or_else(bad)?;
        Ok(Self {
            revision: Revision(revision.parse().map_err(|_| bad())?),
            after: after.to_owned(),
        })
    }
}
