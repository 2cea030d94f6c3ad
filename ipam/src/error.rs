//! The IPAM layer's one error type. Messages say what is wrong and what to change.

use std::net::IpAddr;

use api::datastore;

use crate::pools::Family;

#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error("datastore: {0}")]
    Datastore(#[from] datastore::Error),
    /// No pool may be used at all (disabled, other purpose, not selecting the node).
    #[error("no {family} pool can give node {node} addresses for {purpose}: {why}")]
    NoPool {
        family: Family,
        node: String,
        purpose: String,
        why: String,
    },
    /// Usable pools exist but hold no free address this node may take.
    #[error("{0}")]
    Exhausted(String),
    #[error("{ip} is in no IP pool: create a pool holding it or request another address")]
    NotInPool { ip: IpAddr },
    #[error(
        "{ip} is in pool {pool}, which is disabled: enable the pool or request another address"
    )]
    PoolDisabled { ip: IpAddr, pool: String },
    #[error("{ip} is reserved ({why}) and is never handed out")]
    Reserved { ip: IpAddr, why: String },
    #[error("{ip} is already allocated{}", holder.as_ref().map(|h| format!(" to handle {h}")).unwrap_or_default())]
    InUse { ip: IpAddr, holder: Option<String> },
    /// A release named an allocation that is no longer there as named.
    #[error("{ip} is not allocated{expected}: nothing released")]
    NotAllocated { ip: IpAddr, expected: String },
    /// Every retry of a compare-and-swap lost to another writer.
    #[error(
        "{what}: gave up after {attempts} conflicting writes (too many allocators at once); retry"
    )]
    Contention { what: String, attempts: usize },
    #[error("node {node}: {problem}")]
    Node { node: String, problem: String },
    #[error("handle {handle:?} is not a valid object name: {problem}")]
    BadHandle { handle: String, problem: String },
}

impl IpamError {
    /// True for failures that a later retry may not see (datastore down, conflicts).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Contention { .. } => true,
            Self::Datastore(error) => error.is_transient(),
            _ => false,
        }
    }
}

pub type Result<T, E = IpamError> = std::result::Result<T, E>;
