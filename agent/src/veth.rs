//! Names of the host side of pod veth pairs.
//!
//! The name must be a pure function of the workload so that the CNI plugin (which
//! creates the interface) and the agent (which routes to it) agree without talking,
//! and so that a restarted agent finds the interfaces it owns. tabby follows Calico's
//! scheme (`cali` + the first 11 hex digits of SHA-1 of `namespace.pod`), so a node
//! moved from Calico keeps its interface names and operators' tooling keeps working.

use sha1::{Digest, Sha1};

/// Prefix of every interface tabby creates for a workload; the agent owns these only.
pub const WORKLOAD_PREFIX: &str = "cali";

/// Host-side veth name for pod `pod` in `namespace`: 15 characters, the kernel's limit.
pub fn host_veth_name(namespace: &str, pod: &str) -> String {
    hashed_name(&[namespace.as_bytes(), b".", pod.as_bytes()])
}

/// Host-side veth name for a container a runtime attaches outside Kubernetes
/// (no pod namespace and name in `CNI_ARGS`): the container id is its identity.
pub fn container_veth_name(container_id: &str) -> String {
    hashed_name(&[container_id.as_bytes()])
}

fn hashed_name(parts: &[&[u8]]) -> String {
    let digest = parts
        .iter()
        .fold(Sha1::new(), |hash, part| hash.chain_update(part))
        .finalize();
    let mut name = String::with_capacity(15);
    name.push_str(WORKLOAD_PREFIX);
    for byte in &digest[..6] {
        name.push_str(&format!("{byte:02x}"));
    }
    name.truncate(15);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values computed independently with Python's hashlib:
    // "cali" + hashlib.sha1(b"<namespace>.<pod>").hexdigest()[:11]
    #[test]
    fn names_match_calicos_scheme() {
        assert_eq!(host_veth_name("default", "nginx-5d7f9"), "cali8ce18e28dcb");
        assert_eq!(
            host_veth_name("kube-system", "coredns-0"),
            "cali8c346e38bf4"
        );
    }

    // "cali" + hashlib.sha1(b"<container id>").hexdigest()[:11]
    #[test]
    fn container_names_hash_the_container_id() {
        assert_eq!(container_veth_name("abc123"), "cali6367c48dd19");
    }

    #[test]
    fn names_fit_the_kernels_interface_name_limit() {
        let long = "a".repeat(300);
        assert_eq!(host_veth_name(&long, &long).len(), 15);
    }
}
