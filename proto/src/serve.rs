//! Serving tonic services on a daemon's Unix socket (always) and a TCP address
//! (when configured), until a shutdown future completes.

use std::ffi::OsStr;
use std::fs::{DirBuilder, Permissions};
use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};
use tonic::service::Routes;
use tonic::transport::Server;

use crate::Error;

/// Where to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub unix: PathBuf,
    pub tcp: Option<SocketAddr>,
}

/// Bound listeners: binding fails early (and is reported) before serving starts.
#[derive(Debug)]
pub struct Bound {
    unix: UnixListener,
    unix_path: PathBuf,
    tcp: Option<TcpListener>,
}

impl Bound {
    /// Binds the Unix socket, owner-only (replacing a stale one left by a crash),
    /// and the TCP address.
    pub async fn bind(endpoints: &Endpoints) -> Result<Self, Error> {
        let unix = bind_unix(&endpoints.unix)?;
        let tcp = match endpoints.tcp {
            Some(address) => {
                Some(
                    TcpListener::bind(address)
                        .await
                        .map_err(|source| Error::Bind {
                            what: "TCP",
                            address: address.to_string(),
                            source,
                        })?,
                )
            }
            None => None,
        };
        Ok(Self {
            unix,
            unix_path: endpoints.unix.clone(),
            tcp,
        })
    }

    /// The TCP address actually bound (port 0 picks one).
    pub fn tcp_address(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves `routes` on every listener until `shutdown` completes; the socket file
    /// is removed afterwards.
    pub async fn serve(
        self,
        routes: Routes,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), Error> {
        let (stop, stopped) = watch::channel(false);
        let wait = |mut stopped: watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        let unix = Server::builder()
            .add_routes(routes.clone())
            .serve_with_incoming_shutdown(
                UnixListenerStream::new(self.unix),
                wait(stopped.clone()),
            );
        let tcp = async {
            match self.tcp {
                Some(listener) => {
                    Server::builder()
                        .add_routes(routes)
                        .serve_with_incoming_shutdown(
                            TcpListenerStream::new(listener),
                            wait(stopped.clone()),
                        )
                        .await
                }
                None => Ok(()),
            }
        };
        let signal = async {
            shutdown.await;
            let _ = stop.send(true);
        };
        let (unix, tcp, ()) = tokio::join!(unix, tcp, signal);
        let _ = std::fs::remove_file(&self.unix_path);
        unix?;
        tcp?;
        Ok(())
    }
}

/// Binds the socket so that it is never reachable by anyone but its owner: it is
/// made in a private directory (0700) beside `path`, set to 0600, then renamed into
/// place, so that neither the umask nor a quick client sees other permissions.
fn bind_unix(path: &Path) -> Result<UnixListener, Error> {
    let error = |source| Error::Bind {
        what: "Unix socket",
        address: path.display().to_string(),
        source,
    };
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => dir,
        None => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(error)?;
    // A socket file left by a process that died; a live one refuses the connect.
    if std::os::unix::net::UnixStream::connect(path).is_err() {
        let _ = std::fs::remove_file(path);
    }
    let name = path.file_name().unwrap_or_else(|| OsStr::new("socket"));
    let private = dir.join(format!(
        ".{}.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&private);
    DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .map_err(error)?;
    let staged = private.join(name);
    let bound = UnixListener::bind(&staged)
        .and_then(|listener| {
            std::fs::set_permissions(&staged, Permissions::from_mode(0o600))?;
            std::fs::rename(&staged, path)?;
            Ok(listener)
        })
        .map_err(error);
    let _ = std::fs::remove_dir_all(&private);
    bound
}
