//! Read-modify-write with compare-and-swap: every write command computes the next
//! state from a fresh read and writes it at that read's revision; when someone else
//! wrote in between, it reads again and recomputes, a few times, then gives up.

use api::datastore::{Backend, Datastore, Error};

use crate::error::CliError;
use crate::kinds::CliResource;

/// How often a write is recomputed after losing a race before giving up.
const ATTEMPTS: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Configured,
    Unchanged,
}

impl Outcome {
    pub fn verb(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Configured => "configured",
            Outcome::Unchanged => "unchanged",
        }
    }
}

/// Writes what `next` makes of the stored resource `name` (`None` when there is
/// none: `next` creates it or fails). Nothing is written when the result equals what
/// is stored.
pub async fn write_with_retry<R: CliResource>(
    store: &dyn Backend,
    name: &str,
    mut next: impl FnMut(Option<&R>) -> Result<R, CliError>,
) -> Result<Outcome, CliError> {
    for _ in 0..ATTEMPTS {
        let current = match store.get::<R>(name).await {
            Ok(current) => Some(current),
            Err(Error::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let mut desired = next(current.as_ref())?;
        let written = match current {
            None => store.create(&desired).await.map(|_| Outcome::Created),
            Some(current) => {
                desired.metadata_mut().resource_version = current.revision();
                if desired == current {
                    return Ok(Outcome::Unchanged);
                }
                store.update(&desired).await.map(|_| Outcome::Configured)
            }
        };
        match written {
            Err(Error::Conflict { .. } | Error::AlreadyExists { .. }) => continue,
            written => return Ok(written?),
        }
    }
    Err(CliError::Refused(format!(
        "{} {name:?} kept changing while being written ({ATTEMPTS} attempts lost the race): \
         try again",
        R::KIND
    )))
}
