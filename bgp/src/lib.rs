//! tabby's native BGP speaker.

pub mod transport;
