//! The tools built on the harness, each a binary in `src/bin/`:
//!
//! - [`tabby_lab`]: `tabby-lab`, a real tabby cluster in network namespaces on this
//!   machine, checked and reported on (the README's `scripts/lab`);
//! - [`bgperf`]: `tabby-bgperf`, the route-reflector benchmark;
//! - [`convergence`]: `tabby-convergence`, the pod-route convergence benchmark;
//! - [`failover`]: `tabby-failover`, the failover benchmark (a cut link until the
//!   node's routes are gone everywhere, with and without BFD, tabby and BIRD).
//!
//! The harness they build on (namespaces, real peers, etcd, clusters of
//! tabby-agents) is the `harness` crate.

pub mod bgperf;
pub mod convergence;
pub mod failover;
pub mod tabby_lab;
