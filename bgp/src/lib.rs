//! tabby's native BGP speaker.
