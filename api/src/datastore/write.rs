//! [`Backend::write_all`]'s writes: each conditional as its single-object call is,
//! encoded and validated as the typed calls do, and how a backend without
//! multi-object transactions makes them ([`write_each`]).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::stored::encode;
use super::{Backend, Error, Kind, Record, Result};
use crate::resources::{Resource, Revision};

/// One write of a [`Backend::write_all`], conditional as its single-object call is.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Fails with `AlreadyExists` when the name is taken.
    Create {
        kind: Kind,
        name: String,
        value: Value,
    },
    /// Writes only if the stored revision is `expected`.
    Update {
        kind: Kind,
        name: String,
        value: Value,
        expected: Revision,
    },
}

impl Write {
    /// `resource` created, encoded and validated as [`Datastore::create`] does. Only
    /// for kinds whose create needs no reads ([`Resource::DISJOINT`] ones do).
    pub fn create<R: Resource>(resource: &R) -> Result<Self> {
        single_round::<R>(resource.name())?;
        Ok(Self::Create {
            kind: Kind::of::<R>(),
            name: resource.name().to_owned(),
            value: encode(resource)?,
        })
    }

    /// `resource` replaced at the revision it was read at, as [`Datastore::update`]
    /// does. Only for kinds without immutable fields, whose check needs a read.
    pub fn update<R: Resource>(resource: &R) -> Result<Self> {
        single_round::<R>(resource.name())?;
        let expected = resource.revision().ok_or_else(|| Error::MissingRevision {
            kind: R::KIND,
            name: resource.name().to_owned(),
        })?;
        Ok(Self::Update {
            kind: Kind::of::<R>(),
            name: resource.name().to_owned(),
            value: encode(resource)?,
            expected,
        })
    }

    pub fn kind(&self) -> Kind {
        match self {
            Self::Create { kind, .. } | Self::Update { kind, .. } => *kind,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Self::Create { name, .. } | Self::Update { name, .. } => name,
        }
    }

    /// The single-object call: how a backend without transactions writes it.
    async fn write_alone<B: Backend + ?Sized>(self, store: &B) -> Result<Record> {
        match self {
            Self::Create { kind, name, value } => store.create_record(kind, &name, value).await,
            Self::Update {
                kind,
                name,
                value,
                expected,
            } => store.update_record(kind, &name, value, expected).await,
        }
    }

    /// An error naming an object written twice: a transaction writes each once.
    pub(super) fn duplicate(writes: &[Write]) -> Option<Error> {
        let mut seen = BTreeSet::new();
        writes
            .iter()
            .find(|w| !seen.insert((w.kind(), w.name())))
            .map(|w| {
                Error::Config(format!(
                    "{} {:?} is written twice in one transaction",
                    w.kind().name,
                    w.name()
                ))
            })
    }

    /// Marks the writes of a failed transaction: `failed` (index, error) carries its
    /// own error, the others [`Error::NotWritten`].
    pub(super) fn undone(writes: &[Write], failed: Vec<(usize, Error)>) -> Vec<Result<Record>> {
        let mut failed: BTreeMap<usize, Error> = failed.into_iter().collect();
        writes
            .iter()
            .enumerate()
            .map(|(i, write)| {
                Err(failed.remove(&i).unwrap_or_else(|| Error::NotWritten {
                    kind: write.kind().name,
                    name: write.name().to_owned(),
                }))
            })
            .collect()
    }
}

/// Refuses kinds a [`Write`] cannot carry: their writes need reads around them.
fn single_round<R: Resource>(name: &str) -> Result<()> {
    if R::DISJOINT || !R::IMMUTABLE.is_empty() {
        return Err(Error::Config(format!(
            "{} {name:?}: a transaction cannot carry this kind (its writes check other objects)",
            R::KIND
        )));
    }
    Ok(())
}

/// The writes one at a time, all sent at once: [`Backend::write_all`] where the
/// backend has no multi-object transaction.
pub async fn write_each<B: Backend + ?Sized>(store: &B, writes: Vec<Write>) -> Vec<Result<Record>> {
    futures::future::join_all(writes.into_iter().map(|w| w.write_alone(store))).await
}
