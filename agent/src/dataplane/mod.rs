//! The kernel dataplane: routes, the VXLAN device and its VTEP entries; and a pod's
//! veth, addresses and routes ([`pod`], for tabby-cni).
//!
//! `desired = f(state)` is computed elsewhere as a [`DesiredState`]; the
//! [`Reconciler`] reads back what tabby owns, [`diff`]s, and applies the minimal
//! changes in pipelined netlink batches. tabby owns only main-table routes tagged
//! [`TABBY_PROTOCOL`], the device [`VXLAN_DEVICE`] with its permanent entries and
//! address, and (while a pool uses IPIP) the state and address of the kernel's
//! [`IPIP_DEVICE`]; everything else on the host is left alone.
//!
//! ```text
//!  DesiredState ─┐
//!                ├─ diff (pure) ─▶ KernelChanges ─▶ netlink::{link,neigh,routes} (pure builders)
//!  Observed ◀────┘                              │
//!     ▲                                         ▼
//!     └── netlink readers ◀── dumps ── socket (one sendmsg per batch, errors by seq)
//! ```

pub mod diff;
mod driver;
mod grace;
pub mod model;
pub mod netlink;
#[cfg(test)]
mod parse;
pub mod pod;
pub mod reconcile;

pub use diff::{KernelChanges, Observed, diff};
pub use driver::Pass;
pub use model::{
    DesiredState, IPIP_DEVICE, IpipDevice, Mac, ModelError, NextHop, Route, RouteTarget,
    TABBY_PROTOCOL, VXLAN_DEVICE, Vtep, VxlanDevice,
};
pub use netlink::NetlinkError;
pub use reconcile::{Failure, Reconciler, Report};
