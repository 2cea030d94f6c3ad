//! What a command runs with: its output streams, standard input, and the datastore,
//! connected on first use (commands like `convert` never connect).

use std::io::{Read, Write};
use std::sync::Arc;

use api::datastore::{Backend, DatastoreConfig, connect};

use crate::config::{self, DatastoreArgs};
use crate::error::CliError;

pub struct Session<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    pub stdin: &'a mut dyn Read,
    store: Store,
}

enum Store {
    Connected(Arc<dyn Backend>),
    /// Boxed: the settings are large beside a connected store.
    Configured(Box<DatastoreArgs>),
}

impl std::fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let connected = matches!(self.store, Store::Connected(_));
        f.debug_struct("Session")
            .field("connected", &connected)
            .finish_non_exhaustive()
    }
}

impl<'a> Session<'a> {
    /// A session that connects as `datastore` says when a command needs it.
    pub fn new(
        out: &'a mut dyn Write,
        err: &'a mut dyn Write,
        stdin: &'a mut dyn Read,
        datastore: DatastoreArgs,
    ) -> Self {
        Self {
            out,
            err,
            stdin,
            store: Store::Configured(Box::new(datastore)),
        }
    }

    /// A session on a datastore already at hand (tests use the memory backend).
    pub fn with_store(
        out: &'a mut dyn Write,
        err: &'a mut dyn Write,
        stdin: &'a mut dyn Read,
        store: Arc<dyn Backend>,
    ) -> Self {
        Self {
            out,
            err,
            stdin,
            store: Store::Connected(store),
        }
    }

    pub async fn store(&mut self) -> Result<Arc<dyn Backend>, CliError> {
        let args = match &self.store {
            Store::Connected(store) => return Ok(store.clone()),
            Store::Configured(args) => args,
        };
        let (target, warnings) = config::resolve(args, &|name| std::env::var(name).ok())?;
        for warning in warnings {
            self.warn(&format!("warning: {warning}"))?;
        }
        let store = connect(&target).await?;
        self.store = Store::Connected(store.clone());
        Ok(store)
    }

    /// The datastore type as calicoctl's `version` names it (`kdd`, `etcdv3`), from
    /// the configuration alone: nothing is connected.
    pub fn datastore_type(&mut self) -> Result<&'static str, CliError> {
        let args = match &self.store {
            Store::Connected(_) => return Ok("in-process"),
            Store::Configured(args) => args,
        };
        let (target, _) = config::resolve(args, &|name| std::env::var(name).ok())?;
        Ok(match target {
            DatastoreConfig::Kubernetes(_) => "kdd",
            DatastoreConfig::Etcd(_) => "etcdv3",
            DatastoreConfig::Memory(_) => "in-process",
        })
    }

    /// Writes to standard output.
    pub fn print(&mut self, text: &str) -> Result<(), CliError> {
        self.out
            .write_all(text.as_bytes())
            .map_err(CliError::io("writing to standard output"))
    }

    /// Writes one line to standard error.
    pub fn warn(&mut self, line: &str) -> Result<(), CliError> {
        writeln!(self.err, "{line}").map_err(CliError::io("writing to standard error"))
    }
}
