//! tabby-agent, the node agent, and the tabby-cni plugin.
//!
//! The first module names the host side of a pod's veth pair; the desired-state
//! calculation, the kernel reconciler and the CNI plugin land with the agent issue.

pub mod dataplane;
pub mod veth;
