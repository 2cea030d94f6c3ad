//! tabby-agent, the node agent, and the tabby-cni plugin.
//!
//! - [`veth`]: names of the host side of pod veth pairs, shared by plugin and agent.
//! - [`dataplane`]: the kernel reconciler (routes, VXLAN) over batched rtnetlink.
//! - [`cni`]: the `tabby-cni` plugin (veth, addresses, routes; IPAM delegated).
//! - [`nat`]: NAT outgoing as tabby's own nftables tables.

pub mod cni;
pub mod dataplane;
pub mod nat;
pub mod veth;
