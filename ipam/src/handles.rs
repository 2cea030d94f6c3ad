//! Handles: who holds addresses. A handle's id is its object name; the CNI plugin
//! uses Calico's `<network>.<container id>`, tunnel addresses Calico's
//! `ipip-tunnel-addr-<node>` family of names.

use std::net::IpAddr;

use api::datastore::Backend;
use api::resources::{Cidr, IPAMBlock, IPAMHandle, cidr_name};
use futures::future::try_join_all;
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use crate::cas::read;
use crate::error::{IpamError, Result};
use crate::pools::{Family, Tunnel};
use crate::table::AllocationTable;

/// The longest object name Kubernetes accepts.
const MAX_NAME: usize = 253;

/// An address held by a handle.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    pub ip: IpAddr,
    pub block: Cidr,
    /// The allocation's sequence number in its block.
    pub sequence: Option<u64>,
    /// In a block of another node (or of none): the agent routes it as a /32.
    pub borrowed: bool,
}

/// True when `name` can name an object (and a node): an RFC 1123 subdomain.
pub fn is_object_name(name: &str) -> bool {
    let edge = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    name.len() <= MAX_NAME
        && name.starts_with(edge)
        && name.ends_with(edge)
        && name.chars().all(|c| edge(c) || c == '-' || c == '.')
}

/// Fails unless `id` can name an IPAMHandle object.
pub fn check_handle_id(id: &str) -> Result<()> {
    if is_object_name(id) {
        Ok(())
    } else {
        Err(IpamError::BadHandle {
            handle: id.to_owned(),
            problem: "use lower-case letters, digits, '-' and '.', at most 253, \
                      starting and ending with a letter or digit"
                .into(),
        })
    }
}

/// The handle of a CNI attachment: `<network>.<container id>`. Characters an
/// object name cannot hold are replaced, and then a hash of the original keeps
/// distinct containers apart.
pub fn cni_handle_id(network: &str, container_id: &str) -> String {
    let raw = format!("{network}.{container_id}");
    let mut id = format!("{}{}", cni_handle_prefix(network), sanitized(container_id));
    let trimmed = id.trim_matches(|c| c == '-' || c == '.').len() != id.len();
    if id != raw || trimmed || id.len() > MAX_NAME {
        let digest = Sha1::digest(raw.as_bytes());
        let hash: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        id.truncate(MAX_NAME - hash.len() - 1);
        id = format!("{}-{hash}", id.trim_matches(|c| c == '-' || c == '.'));
    }
    id
}

/// What every handle of a network's attachments starts with.
pub fn cni_handle_prefix(network: &str) -> String {
    format!("{}.", sanitized(network))
}

/// Lower case, and `-` for every character an object name cannot hold.
fn sanitized(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' | '.' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect()
}

/// The handle of a node's tunnel address, as Calico names it.
pub fn tunnel_handle_id(tunnel: Tunnel, family: Family, node: &str) -> String {
    match (tunnel, family) {
        (Tunnel::Ipip, _) => format!("ipip-tunnel-addr-{node}"),
        (Tunnel::Vxlan, Family::V4) => format!("vxlan-tunnel-addr-{node}"),
        (Tunnel::Vxlan, Family::V6) => format!("vxlan-v6-tunnel-addr-{node}"),
    }
}

/// Every address `handle` holds, found through its block counts; `borrowed` is
/// relative to `node`. A missing handle holds nothing.
pub async fn addresses_of(
    store: &dyn Backend,
    handle: &str,
    node: &str,
) -> Result<Vec<Assignment>> {
    let Some(found) = read::<IPAMHandle>(store, handle).await? else {
        return Ok(Vec::new());
    };
    let names: Vec<String> = found
        .spec
        .block
        .keys()
        .filter_map(|cidr| cidr.parse::<Cidr>().ok())
        .map(|cidr| cidr_name(&cidr))
        .collect();
    let blocks = try_join_all(names.iter().map(|n| read::<IPAMBlock>(store, n))).await?;
    Ok(blocks
        .iter()
        .flatten()
        .flat_map(|block| held_in(block, handle, node))
        .collect())
}

/// The addresses of `block` that `handle` holds.
pub fn held_in(block: &IPAMBlock, handle: &str, node: &str) -> Vec<Assignment> {
    let borrowed = block.spec.affine_node() != Some(node);
    block
        .spec
        .allocations()
        .into_iter()
        .filter(|a| a.handle == Some(handle))
        .map(|a| Assignment {
            ip: a.ip,
            block: block.spec.cidr,
            sequence: a.sequence,
            borrowed,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipam_cni_handles_are_calicos_names_when_the_id_allows() {
        let id = cni_handle_id("k8s-pod-network", "3f5b1c09ab");
        assert_eq!(id, "k8s-pod-network.3f5b1c09ab");
        check_handle_id(&id).unwrap();
    }

    #[test]
    fn ipam_cni_handles_of_awkward_ids_are_valid_and_distinct() {
        let a = cni_handle_id("My_Net", "ABC_1");
        let b = cni_handle_id("My_Net", "abc-1");
        assert_ne!(a, b);
        check_handle_id(&a).unwrap();
        check_handle_id(&b).unwrap();
        assert!(a.starts_with("my-net.abc-1-"), "{a}");
        let long = cni_handle_id("net", &"x".repeat(400));
        assert!(long.len() <= MAX_NAME);
        check_handle_id(&long).unwrap();
        check_handle_id(&cni_handle_id("net", "_edge_")).unwrap();
    }

    #[test]
    fn ipam_bad_handle_ids_are_rejected_with_the_rule() {
        let error = check_handle_id("Pod_1").unwrap_err().to_string();
        assert!(error.contains("lower-case letters"), "{error}");
        assert_eq!(
            tunnel_handle_id(Tunnel::Vxlan, Family::V6, "n1"),
            "vxlan-v6-tunnel-addr-n1"
        );
    }
}
