//! A real container runtime on lab nodes: containerd 1.6 (Debian's) with its CRI
//! plugin, one per node inside the node's network namespace, driven by a small
//! CRI client the way kubelet drives it, so tabby's CNI plugins are called by the
//! runtime that calls them on real nodes.
//!
//! - [`Containerd`]: a node's containerd, its directories and config;
//! - [`CriClient`], [`PodSpec`]: the `runtime.v1` calls kubelet makes for a pod's
//!   sandbox ([`api`] is the `.proto` subset, `harness/proto/runtime/v1/api.proto`);
//! - [`pause`]: the sandbox image, built from busybox-static without a registry;
//! - [`leftovers`]: cgroups and mounts left behind, removed on drop and by the sweep.
//!
//! What containerd 1.6's CRI plugin needs to run inside a network namespace on
//! this host (cgroup v1 hierarchies, no systemd as init, no AppArmor, no registry),
//! and how [`Containerd`] provides it:
//! - **Entering the namespace**: `nsenter --net=…`, not `ip netns exec`, which
//!   remounts `/sys` in a mount namespace of its own where runc finds no cgroups.
//!   Only the network namespace is the node's: containerd shares the host's mounts,
//!   so every path it uses is set to the node's directory.
//! - **Its own files**: `root`, `state`, the gRPC and ttrpc sockets, runc's state
//!   (`Root` in the runc options; the default `/run/containerd/runc` is shared),
//!   the CNI `bin_dir` and `conf_dir`; sandbox network namespaces under `state`
//!   (`netns_mounts_under_state_dir`) rather than the host's `/var/run/netns`; the
//!   `opt` plugin (which installs into `/opt/containerd`) disabled. Shim sockets
//!   stay under `/run/containerd/s/`, named by a hash of containerd's own socket
//!   path, so instances cannot collide.
//! - **cgroups**: `SystemdCgroup = false` (cgroupfs; there is no systemd) and a
//!   cgroup parent per pod under a per-node root, which kubelet would pass
//!   (`/kubepods/…/pod<uid>` on a real node). runc creates them in every v1
//!   hierarchy; the process's own memory cgroup does not matter.
//! - **Snapshotter**: overlayfs on the temporary directory's ext4; the aufs, btrfs,
//!   devmapper and zfs snapshotters disabled (they fail to load here).
//! - **runc**: Debian's, through `io.containerd.runc.v2`; `disable_apparmor`
//!   (no AppArmor in this kernel; on a host with it, the default profile would need
//!   `apparmor_parser`), no SELinux; `restrict_oom_score_adj`, because root here
//!   lacks `CAP_SYS_RESOURCE` and runc's init fails writing the sandbox's
//!   `oom_score_adj` of -998 (seen as "can't get final child's PID from pipe").
//! - **Images**: `sandbox_image` names the archive [`pause`] writes and
//!   `ctr -n k8s.io images import` loads (the CRI plugin sees images in `k8s.io`
//!   at once); nothing is ever pulled.
//! - **CNI**: containerd loads the first conflist of `conf_dir` and runs its plugins
//!   from `bin_dir` in its own (the node's) network namespace; it also sets up the
//!   sandbox's `lo` with the `loopback` plugin, so `bin_dir` holds Debian's
//!   `loopback` (and `portmap`, which tabby's conflist chains) beside tabby's.
//!   containerd restarts keep sandboxes: shims and pause processes outlive it.

pub mod client;
pub mod containerd;
pub mod leftovers;
pub mod pause;

pub use client::{CriClient, PodSpec, Sandbox};
pub use containerd::Containerd;

/// `runtime.v1`: the CRI calls the client makes.
pub mod api {
    #![allow(missing_debug_implementations, clippy::all)]
    tonic::include_proto!("runtime.v1");
}
