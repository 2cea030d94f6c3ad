//! IP address management for tabby: pools are carved into fixed-size blocks that
//! nodes claim, and pod addresses are assigned from a node's blocks.
//!
//! This first module is the block arithmetic every allocator needs; claiming,
//! assignment and release land with the ipam issue.

pub mod blocks;

pub use blocks::{BlockError, blocks_of};
