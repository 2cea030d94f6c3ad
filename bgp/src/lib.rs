//! tabby's native BGP speaker.

pub mod codec;
pub mod rib;
pub mod session;
pub mod speaker;
pub mod transport;
