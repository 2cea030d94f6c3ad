//! A loopback TCP proxy whose connections a test can cut: how a test breaks a
//! client's long-lived stream (an etcd watch) without stopping the server.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Forwards `127.0.0.1:<port>` to a target; stops on drop.
#[derive(Debug)]
pub struct TcpProxy {
    address: SocketAddr,
    /// Bumped by [`TcpProxy::cut`]; every connection ends when it changes.
    generation: watch::Sender<u64>,
    accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl TcpProxy {
    /// Listens on a free loopback port (inside a tokio runtime).
    pub async fn start(target: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .context("binding the proxy")?;
        let address = listener.local_addr()?;
        let (generation, _) = watch::channel(0);
        let accepted = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(accept(
            listener,
            target,
            generation.clone(),
            accepted.clone(),
        ));
        Ok(Self {
            address,
            generation,
            accepted,
            task,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Closes every connection open now; new ones are accepted as before.
    pub fn cut(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}

async fn accept(
    listener: TcpListener,
    target: SocketAddr,
    generation: watch::Sender<u64>,
    accepted: Arc<AtomicUsize>,
) {
    while let Ok((mut client, _)) = listener.accept().await {
        accepted.fetch_add(1, Ordering::SeqCst);
        let mut cut = generation.subscribe();
        tokio::spawn(async move {
            let Ok(mut server) = TcpStream::connect(target).await else {
                return;
            };
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                _ = cut.changed() => {}
            }
        });
    }
}
