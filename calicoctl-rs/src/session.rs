//! What a command runs with: its output streams, standard input, and the datastore,
//! connected on first use (commands like `convert` never connect).

use std::io::{Read, Write};
use std::sync::Arc;

use std::time::Duration;

use api::datastore::{Backend, EtcdStore};
use etcd_client::ConnectOptions;

use crate::config::{self, DatastoreArgs, EtcdTarget, Target};
use crate::error::CliError;

pub struct Session<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    pub stdin: &'a mut dyn Read,
    store: Store,
}

enum Store {
    Connected(Arc<dyn Backend>),
    Configured(DatastoreArgs),
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
            store: Store::Configured(datastore),
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
        if let Store::Configured(args) = &self.store {
            let target = config::resolve(args, &|name| std::env::var(name).ok())?;
            self.store = Store::Connected(connect(&target).await?);
        }
        match &self.store {
            Store::Connected(store) => Ok(store.clone()),
            Store::Configured(_) => unreachable!("connected above"),
        }
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

/// How long the first contact with a datastore may take before it is reported
/// unreachable, and how long any one request may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// A backend for `target`.
async fn connect(target: &Target) -> Result<Arc<dyn Backend>, CliError> {
    match target {
        Target::Etcd(etcd) => Ok(Arc::new(connect_etcd(etcd).await?)),
        // The kubernetes backend is being written in the api crate; until it lands,
        // say so rather than pretend.
        Target::Kubernetes(_) => Err(CliError::Connect(
            "the kubernetes datastore backend is not in this build of calicoctl-rs yet: use \
             --datastore etcd"
                .to_owned(),
        )),
    }
}

async fn connect_etcd(target: &EtcdTarget) -> Result<EtcdStore, CliError> {
    let tls = [&target.ca_cert_file, &target.cert_file, &target.key_file];
    if tls.iter().any(|file| file.is_some()) {
        return Err(CliError::Connect(
            "TLS to etcd is not supported by this build (its etcd client has no TLS): reach \
             etcd over http on a trusted network, or through a local TLS proxy"
                .to_owned(),
        ));
    }
    let mut options = ConnectOptions::new()
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_timeout(REQUEST_TIMEOUT);
    match (&target.username, &target.password) {
        (Some(user), Some(password)) => options = options.with_user(user, password),
        (None, None) => {}
        (Some(_), None) => {
            return Err(CliError::Usage(
                "an etcd username needs its password: set TABBY_ETCD_PASSWORD (or \
                 spec.etcdPassword in the config file)"
                    .to_owned(),
            ));
        }
        (None, Some(_)) => {
            return Err(CliError::Usage(
                "an etcd password needs its user: set --etcd-username".to_owned(),
            ));
        }
    }
    let client = etcd_client::Client::connect(&target.endpoints, Some(options))
        .await
        .map_err(|e| {
            CliError::Connect(format!(
                "cannot reach etcd at {}: {e}",
                target.endpoints.join(",")
            ))
        })?;
    Ok(EtcdStore::new(client))
}
