//! IP address management for tabby: pools are carved into fixed-size blocks that
//! nodes claim (Calico's design: block affinities, allocation tables, handles), and
//! pod and tunnel addresses are assigned from a node's blocks.
//!
//! - [`blocks`], [`table`], [`pools`]: block arithmetic, a block's allocation table,
//!   which pools and addresses a request may use. Pure.
//! - [`cas`]: compare-and-swap edits of blocks and handles over the datastore.
//! - [`claim`]: claiming and releasing blocks (BlockAffinity pending → IPAMBlock →
//!   confirmed).
//! - [`assign`], [`release`]: the node allocator: auto-assign, explicit assignment,
//!   release by handle and by address; [`tunnel`]: tunnel addresses on the Node;
//!   [`watch`]: settings followed by watches for long-lived allocators.
//! - [`view`]: the blocks as a reader sees them (owners, holders);
//!   [`ownership`]: the rule routes learned over BGP are judged by.
//! - [`check`]: the consistency checker; [`gc`]: the controller's garbage collector;
//!   [`usage`]: how much of each pool is used, per node;
//!   [`inventory`]: who owns an allocation and whether it still exists.
//! - [`rbac`]: the Kubernetes API calls the allocator (for tabby-ipam and the
//!   agent's tunnel addresses) and the garbage collector (for the controller) make.

pub mod assign;
pub mod blocks;
pub mod cas;
pub mod check;
pub mod claim;
pub mod error;
pub mod explicit;
pub mod gc;
pub mod handles;
pub mod inventory;
pub mod ownership;
pub mod pools;
pub mod rbac;
pub mod release;
pub mod state;
pub mod table;
pub mod tunnel;
pub mod usage;
pub mod view;
pub mod watch;

pub use assign::{Allocator, AssignRequest, Assigned, ExistingHandle};
pub use blocks::{BlockError, blocks_of};
pub use error::{IpamError, Result};
pub use handles::Assignment;
pub use pools::{Family, Purpose, Tunnel};
