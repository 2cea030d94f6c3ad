//! tabby's cluster controllers, run as one Deployment (`tabby-ipam-controller`, one
//! replica): today IPAM garbage collection ([`ipam_gc`]: the loop and its metrics
//! over `ipam::gc`).

pub mod ipam_gc;
