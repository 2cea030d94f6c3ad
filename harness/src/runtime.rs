//! A tokio runtime for async code run inside a namespace: one thread, so the
//! sockets it opens stay in the namespace the calling thread entered.

use tokio::runtime::{Builder, Runtime};

pub fn runtime() -> Runtime {
    Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread tokio runtime")
}
