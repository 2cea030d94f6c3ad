//! The table columns of each kind: calicoctl's headings and cell contents, with
//! tabby's extra fields in the wide form where calicoctl has none.

use api::resources::{
    BGPConfiguration, BGPFilter, BGPPeer, IPAMConfig, IPPool, IPReservation, Node, WorkloadEndpoint,
};

use crate::output::enum_name;
use crate::table::TableContext;

pub trait Columns {
    fn columns(wide: bool) -> Vec<&'static str>;
    /// One cell per column of `columns(wide)`.
    fn row(&self, wide: bool, context: &TableContext) -> Vec<String>;
}

/// `short` columns, then with `wide` the extra ones.
fn pick(wide: bool, short: &[&'static str], extra: &[&'static str]) -> Vec<&'static str> {
    let mut columns = short.to_vec();
    if wide {
        columns.extend_from_slice(extra);
    }
    columns
}

fn cells(wide: bool, short: Vec<String>, extra: impl FnOnce() -> Vec<String>) -> Vec<String> {
    let mut row = short;
    if wide {
        row.extend(extra());
    }
    row
}

fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn or_empty<T: ToString>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// calicoctl truncates long lists in a cell at 80 characters.
fn join_truncated(items: impl IntoIterator<Item = String>) -> String {
    const LIMIT: usize = 80;
    let joined = items.into_iter().collect::<Vec<_>>().join(",");
    if joined.chars().count() <= LIMIT {
        return joined;
    }
    let cut: String = joined.chars().take(LIMIT - 3).collect();
    format!("{cut}...")
}

impl Columns for IPPool {
    fn columns(wide: bool) -> Vec<&'static str> {
        if wide {
            let mut columns = vec!["NAME", "CIDR", "NAT", "IPIPMODE", "VXLANMODE"];
            columns.extend(["DISABLED", "DISABLEBGPEXPORT", "SELECTOR"]);
            columns
        } else {
            vec!["NAME", "CIDR", "SELECTOR"]
        }
    }

    fn row(&self, wide: bool, _: &TableContext) -> Vec<String> {
        let spec = &self.spec;
        let (name, cidr) = (self.metadata.name.clone(), spec.cidr.to_string());
        let selector = spec.node_selector.to_string();
        if !wide {
            return vec![name, cidr, selector];
        }
        vec![
            name,
            cidr,
            spec.nat_outgoing.to_string(),
            enum_name(&spec.ipip_mode),
            enum_name(&spec.vxlan_mode),
            spec.disabled.to_string(),
            spec.disable_bgp_export.to_string(),
            selector,
        ]
    }
}

impl Columns for IPReservation {
    fn columns(wide: bool) -> Vec<&'static str> {
        pick(wide, &["NAME"], &["CIDRS"])
    }

    fn row(&self, wide: bool, _: &TableContext) -> Vec<String> {
        cells(wide, vec![self.metadata.name.clone()], || {
            let cidrs = self.spec.reserved_cidrs.iter().map(ToString::to_string);
            vec![join_truncated(cidrs)]
        })
    }
}

impl Columns for IPAMConfig {
    fn columns(wide: bool) -> Vec<&'static str> {
        pick(
            wide,
            &["NAME", "STRICTAFFINITY", "AUTOALLOCATEBLOCKS"],
            &["MAXBLOCKSPERHOST"],
        )
    }

    fn row(&self, wide: bool, _: &TableContext) -> Vec<String> {
        let spec = &self.spec;
        let short = vec![
            self.metadata.name.clone(),
            spec.strict_affinity.to_string(),
            spec.auto_allocate_blocks.to_string(),
        ];
        cells(wide, short, || vec![spec.max_blocks_per_host.to_string()])
    }
}

impl Columns for BGPConfiguration {
    fn columns(wide: bool) -> Vec<&'static str> {
        pick(wide, &["NAME", "MESHENABLED", "ASNUMBER"], &["LISTENPORT"])
    }

    fn row(&self, wide: bool, _: &TableContext) -> Vec<String> {
        let spec = &self.spec;
        let short = vec![
            self.metadata.name.clone(),
            or_dash(spec.node_to_node_mesh_enabled),
            or_dash(spec.as_number),
        ];
        cells(wide, short, || vec![or_dash(spec.listen_port)])
    }
}

impl Columns for BGPPeer {
    fn columns(wide: bool) -> Vec<&'static str> {
        pick(wide, &["NAME", "PEERIP", "NODE", "ASN"], &["PEERSELECTOR"])
    }

    fn row(&self, wide: bool, _: &TableContext) -> Vec<String> {
        let spec = &self.spec;
        let node = match (&spec.node, &spec.node_selector) {
            (Some(node), _) => node.clone(),
            (None, Some(selector)) => selector.to_string(),
            (None, None) => "(global)".to_owned(),
        };
        let short = vec![
            self.metadata.name.clone(),
            or_empty(spec.peer_ip),
            node,
            or_empty(spec.as_number),
        ];
        cells(wide, short, || vec![or_empty(spec.peer_selector.as_ref())])
    }
}

impl Columns for BGPFilter {
    fn columns(wide: bool) -> Vec<&'static str> {
        if wide {
            vec!["NAME", "EXPORTV4", "IMPORTV4", "EXPORTV6", "IMPORTV6"]
        } else {
            vec!["NAME", "NUMEXPORT", "NUMIMPORT"]
        }
    }

    fn row(&self, wide: bool, _: &TableContext) -> Vec<String> {
        let spec = &self.spec;
        let name = self.metadata.name.clone();
        if wide {
            let counts = [
                &spec.export_v4,
                &spec.import_v4,
                &spec.export_v6,
                &spec.import_v6,
            ];
            let mut row = vec![name];
            row.extend(counts.iter().map(|rules| rules.len().to_string()));
            return row;
        }
        vec![
            name,
            (spec.export_v4.len() + spec.export_v6.len()).to_string(),
            (spec.import_v4.len() + spec.import_v6.len()).to_string(),
        ]
    }
}

impl Columns for Node {
    fn columns(wide: bool) -> Vec<&'static str> {
        pick(
            wide,
            &["NAME", "ASN", "IPV4", "IPV6"],
            &["IPIPTUNNEL", "VXLANTUNNEL", "RRCLUSTERID"],
        )
    }

    fn row(&self, wide: bool, context: &TableContext) -> Vec<String> {
        let bgp = self.spec.bgp.as_ref();
        // As calicoctl: a node without its own AS shows the cluster's in parentheses.
        let asn = match bgp.map(|b| b.as_number) {
            None => String::new(),
            Some(Some(asn)) => asn.to_string(),
            Some(None) => format!("({})", context.cluster_as),
        };
        let short = vec![
            self.metadata.name.clone(),
            asn,
            or_empty(bgp.and_then(|b| b.ipv4_address)),
            or_empty(bgp.and_then(|b| b.ipv6_address)),
        ];
        cells(wide, short, || {
            vec![
                or_empty(bgp.and_then(|b| b.ipv4_ipip_tunnel_addr)),
                or_empty(self.spec.ipv4_vxlan_tunnel_addr),
                or_empty(bgp.and_then(|b| b.route_reflector_cluster_id)),
            ]
        })
    }
}

/// calicoctl's columns with every namespace shown (`-A`); the wide form adds what
/// tells two incarnations of a pod apart.
impl Columns for WorkloadEndpoint {
    fn columns(wide: bool) -> Vec<&'static str> {
        pick(
            wide,
            &["NAMESPACE", "WORKLOAD", "NODE", "NETWORKS", "INTERFACE"],
            &["NAME", "ENDPOINT", "CONTAINERID", "MAC"],
        )
    }

    fn row(&self, wide: bool, _: &TableContext) -> Vec<String> {
        let spec = &self.spec;
        let short = vec![
            spec.namespace.clone(),
            spec.pod.clone(),
            spec.node.clone(),
            join_truncated(spec.ip_networks.iter().map(ToString::to_string)),
            spec.interface_name.clone(),
        ];
        cells(wide, short, || {
            vec![
                self.metadata.name.clone(),
                spec.endpoint.clone(),
                spec.container_id.clone(),
                or_empty(spec.mac.as_ref()),
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_cells_are_cut_at_eighty_characters() {
        let items = (0..20).map(|i| format!("10.{i}.0.0/16"));
        let cell = join_truncated(items);
        assert_eq!(cell.chars().count(), 80);
        assert!(cell.ends_with("..."), "{cell}");
        assert_eq!(join_truncated(["a".into(), "b".into()]), "a,b");
    }
}
