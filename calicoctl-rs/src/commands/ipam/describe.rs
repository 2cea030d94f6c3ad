//! Allocation owners and checker findings as sentences.

use ipam::check::Problem;
use ipam::inventory::Owner;
use ipam::pools::Tunnel;

use crate::output::enum_name;

pub fn owner(owner: &Owner) -> String {
    match owner {
        Owner::Pod {
            namespace,
            pod,
            node,
            ..
        } => match node {
            Some(node) => format!("pod {namespace}/{pod} on node {node}"),
            None => format!("pod {namespace}/{pod}"),
        },
        Owner::Tunnel {
            node,
            tunnel,
            family,
        } => {
            let tunnel = match tunnel {
                Tunnel::Ipip => "IPIP",
                Tunnel::Vxlan => "VXLAN",
            };
            format!("the {family} {tunnel} tunnel address of node {node}")
        }
        Owner::Node { node } => format!("node {node}"),
        Owner::Unknown => "a holder it does not name (no pod or node attributes)".to_owned(),
    }
}

/// One line per finding, saying what to do where there is a command for it.
pub fn problem(problem: &Problem) -> String {
    match problem {
        Problem::DoubleAllocation { ip, holders } => {
            format!("{ip} is allocated more than once: {}", holders.join("; "))
        }
        Problem::DoubleOwnership { block, nodes } => {
            format!(
                "block {block} is owned by several nodes: {}",
                nodes.join(", ")
            )
        }
        Problem::BlockWithoutAffinity {
            block,
            node,
            affinity,
        } => match affinity {
            Some(state) => format!(
                "block {block} is affine to node {node}, whose affinity for it is {} (not \
                 confirmed)",
                enum_name(state)
            ),
            None => format!("block {block} is affine to node {node}, which has no affinity for it"),
        },
        Problem::StaleAffinity {
            block,
            node,
            state,
            why,
        } => format!(
            "node {node}'s {} affinity for block {block} is stale: {why}",
            enum_name(state)
        ),
        Problem::AddressWithoutHandle { ip, block, handle } => match handle {
            Some(handle) => {
                format!("{ip} (block {block}) names handle {handle}, which does not exist")
            }
            None => format!("{ip} (block {block}) is allocated without a handle"),
        },
        Problem::HandleCountMismatch {
            handle,
            block,
            counted,
            held,
        } => format!(
            "handle {handle} counts {counted} address(es) in block {block}, which holds {held} \
             for it"
        ),
        Problem::HandleWithoutAddresses { handle } => {
            format!("handle {handle} holds no address")
        }
        Problem::Leak {
            ip,
            handle,
            owner: o,
        } => format!(
            "{ip} is leaked: allocated to {}, which no longer exists (handle {}); \
             `calicoctl-rs ipam release --ip {ip}` frees it",
            owner(o),
            handle.as_deref().unwrap_or("none")
        ),
        Problem::TunnelAddressNotAllocated { node, ip } => format!(
            "node {node} records tunnel address {ip}, which its tunnel handle does not hold"
        ),
        Problem::BlockOutsidePools { block, allocations } => format!(
            "block {block} is in no IP pool ({allocations} allocation(s)): its pool was deleted"
        ),
    }
}
