//! The multi-node test harness: machines as network namespaces on one host, real BGP
//! peers and etcd started from generated configs, and everything removed when the
//! test ends, also when it panics. The tools built on it (tabby-lab, tabby-bgperf,
//! tabby-convergence) are the `lab` crate; the tests that use it live in each crate's
//! `tests/` folder and, when they span crates, in the `tests` package.
//!
//! - [`Lab`]: an underlay of subnets (bridges in their own namespace), nodes, a router
//!   joining the subnets, pod namespaces.
//! - [`netns::Netns`], [`process::Process`], [`process::exec`]: run programs and Rust
//!   code ([`in_netns`]) inside a namespace, output logged per test ([`logs::LogDir`]).
//! - [`peers`]: BIRD2, FRR bgpd (without zebra) and GoBGP from one typed config;
//!   BFD sessions on BIRD and FRR's bfdd. [`tabby_bfd::TabbyBfd`]: tabby's own BFD
//!   driver in a namespace.
//! - [`cni`]: a CNI plugin run as a container runtime runs it.
//! - [`cri`]: containerd with its CRI plugin on lab nodes, and a CRI client that
//!   asks it for pod sandboxes as kubelet does.
//! - [`etcd::Etcd`]: a throwaway etcd on free loopback ports, plain or TLS-only
//!   with certificates made for the run ([`tls::TlsFiles`]).
//! - [`conformance`]: the datastore contract, run against every backend.
//! - [`e2e`]: clusters of tabby-agent processes over etcd, pods attached by tabby-cni
//!   with tabby-ipam, and the workspace's binaries they run ([`e2e::binary`]).
//! - [`kube_api::KubeApi`]: the Kubernetes API double the kubernetes backend runs against.
//! - [`manifests`]: what `kubectl apply -k manifests/` installs, read for its tests.
//! - [`elf`]: whether an executable is static.
//! - [`routes::routes`]: a namespace's kernel routes as normalised lines;
//!   [`routes::RouteMonitor`]: every change to them.
//! - [`partition::Partition`]: a silent partition (nftables drops) in a namespace.
//! - [`wait_until`]: poll a condition with a deadline; tests never sleep.
//! - [`require_root`], [`sweep`]: the root guard and the leftover sweep.

pub mod binaries;
pub mod cni;
pub mod conformance;
pub mod cri;
pub mod e2e;
pub mod elf;
pub mod etcd;
pub mod http;
pub mod kube_api;
pub mod lab;
pub mod logs;
pub mod manifests;
pub mod names;
pub mod netns;
pub mod partition;
pub mod peers;
pub mod process;
pub mod registry;
pub mod root;
pub mod routes;
pub mod runtime;
pub mod tabby_bfd;
pub mod tcp_proxy;
pub mod tls;
pub mod vm;
pub mod wait;

pub use lab::{Lab, LabBuilder, Node};
pub use netns::{Netns, in_netns};
pub use registry::sweep;
pub use root::require_root;
pub use runtime::runtime;
pub use wait::wait_until;
