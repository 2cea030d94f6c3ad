//! The kinds the CLI manages, their names on the command line (calicoctl's aliases),
//! and [`AnyResource`], one resource of any of them.
//!
//! Commands are generic over [`CliResource`]; [`with_kind!`] and [`with_any!`] pick
//! the type from a kind named on the command line or from a decoded document.
//!
//! WorkloadEndpoints are shown, never written: the CNI plugin writes one per pod
//! interface, and on etcd it is the record that the pod exists, so a hand-made or
//! deleted one would let IPAM's GC free a live pod's address.

use api::resources::{
    BGPConfiguration, BGPFilter, BGPPeer, IPAMConfig, IPPool, IPReservation, Node, Resource,
    WorkloadEndpoint,
};
use clap::ValueEnum;

use crate::columns::Columns;

/// A kind the CLI reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum)]
pub enum ResourceKind {
    #[value(name = "ippools", aliases = ["ippool", "ipp", "ipps", "pool", "pools"])]
    IPPool,
    #[value(
        name = "ipreservations",
        aliases = ["ipreservation", "reservation", "reservations"]
    )]
    IPReservation,
    #[value(
        name = "ipamconfigs",
        aliases = ["ipamconfig", "ipamconfiguration", "ipamconfigurations"]
    )]
    IPAMConfig,
    #[value(
        name = "bgpconfigurations",
        aliases = ["bgpconfiguration", "bgpconfig", "bgpconfigs"]
    )]
    BGPConfiguration,
    #[value(name = "bgppeers", aliases = ["bgppeer", "bgpp", "bgpps", "bp", "bps"])]
    BGPPeer,
    #[value(name = "bgpfilters", aliases = ["bgpfilter", "bgpf", "bgpfs", "bf", "bfs"])]
    BGPFilter,
    #[value(name = "nodes", aliases = ["node", "no", "nos"])]
    Node,
    #[value(
        name = "workloadendpoints",
        aliases = ["workloadendpoint", "wep", "weps"]
    )]
    WorkloadEndpoint,
}

/// What every command needs of a kind: the datastore's [`Resource`], its table
/// columns, and a way into [`AnyResource`].
pub trait CliResource: Resource + Columns {
    const TYPE: ResourceKind;

    fn into_any(self) -> AnyResource;

    /// `ippool/name`, as write commands report what they did.
    fn reference(&self) -> String {
        format!("{}/{}", Self::KIND.to_lowercase(), self.name())
    }

    /// What an operator's write of `self` stores over `stored` (`None`: nothing
    /// stored yet). It replaces what is stored, except for a kind whose fields are
    /// partly another writer's.
    fn written_over(self, _stored: Option<&Self>) -> Self {
        self
    }

    /// The Kubernetes namespace of a namespaced kind's resource.
    fn namespace(&self) -> Option<&str> {
        None
    }
}

/// One resource of any kind the CLI manages.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyResource {
    IPPool(IPPool),
    IPReservation(IPReservation),
    IPAMConfig(IPAMConfig),
    BGPConfiguration(BGPConfiguration),
    BGPPeer(BGPPeer),
    BGPFilter(BGPFilter),
    Node(Node),
    WorkloadEndpoint(WorkloadEndpoint),
}

macro_rules! cli_resources {
    ($($variant:ident $({ $($extra:item)* })?),* $(,)?) => {$(
        impl CliResource for $variant {
            const TYPE: ResourceKind = ResourceKind::$variant;

            fn into_any(self) -> AnyResource {
                AnyResource::$variant(self)
            }

            $($($extra)*)?
        }
    )*};
}

cli_resources!(
    IPPool,
    IPReservation,
    IPAMConfig,
    BGPConfiguration,
    BGPPeer,
    BGPFilter,
    Node {
        /// The agent's fields stay as it registered them (see
        /// `api::resources::NodeSpec::written_over`).
        fn written_over(mut self, stored: Option<&Self>) -> Self {
            self.spec = self.spec.written_over(stored.map(|s| &s.spec));
            self
        }
    },
    WorkloadEndpoint {
        fn namespace(&self) -> Option<&str> {
            Some(&self.spec.namespace)
        }
    },
);

/// Evaluates `$body` with `$R` the resource type of kind `$kind`.
#[macro_export]
macro_rules! with_kind {
    ($kind:expr, $R:ident => $body:expr) => {{
        use api::resources as r;
        use $crate::kinds::ResourceKind as K;
        match $kind {
            K::IPPool => {
                type $R = r::IPPool;
                $body
            }
            K::IPReservation => {
                type $R = r::IPReservation;
                $body
            }
            K::IPAMConfig => {
                type $R = r::IPAMConfig;
                $body
            }
            K::BGPConfiguration => {
                type $R = r::BGPConfiguration;
                $body
            }
            K::BGPPeer => {
                type $R = r::BGPPeer;
                $body
            }
            K::BGPFilter => {
                type $R = r::BGPFilter;
                $body
            }
            K::Node => {
                type $R = r::Node;
                $body
            }
            K::WorkloadEndpoint => {
                type $R = r::WorkloadEndpoint;
                $body
            }
        }
    }};
}

/// Evaluates `$body` with `$r` bound to the typed resource inside an [`AnyResource`].
#[macro_export]
macro_rules! with_any {
    ($any:expr, $r:ident => $body:expr) => {{
        use $crate::kinds::AnyResource as A;
        match $any {
            A::IPPool($r) => $body,
            A::IPReservation($r) => $body,
            A::IPAMConfig($r) => $body,
            A::BGPConfiguration($r) => $body,
            A::BGPPeer($r) => $body,
            A::BGPFilter($r) => $body,
            A::Node($r) => $body,
            A::WorkloadEndpoint($r) => $body,
        }
    }};
}

impl ResourceKind {
    /// The kind as written in `kind:` (`IPPool`).
    pub fn name(self) -> &'static str {
        with_kind!(self, R => R::KIND)
    }

    /// Whether the CLI writes resources of this kind (see the module comment);
    /// write commands refuse the others.
    pub fn writable(self) -> bool {
        self != Self::WorkloadEndpoint
    }

    /// Every kind the CLI writes, as written in `kind:`.
    pub fn kind_names() -> Vec<&'static str> {
        Self::value_variants()
            .iter()
            .filter(|k| k.writable())
            .map(|k| k.name())
            .collect()
    }

    /// The writable kind named by a document's `kind:` field.
    pub fn from_kind_field(kind: &str) -> Option<Self> {
        Self::value_variants()
            .iter()
            .copied()
            .find(|k| k.writable() && k.name() == kind)
    }
}

impl AnyResource {
    pub fn kind(&self) -> ResourceKind {
        with_any!(self, r => type_of(r))
    }

    pub fn name(&self) -> &str {
        with_any!(self, r => r.name())
    }

    /// `IPPool "name"`, as errors name a resource.
    pub fn describe(&self) -> String {
        format!("{} {:?}", self.kind().name(), self.name())
    }
}

fn type_of<R: CliResource>(_: &R) -> ResourceKind {
    R::TYPE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_named_on_the_command_line_as_calicoctl_names_them() {
        for alias in ["ippool", "IPPools", "pool", "ipp"] {
            assert_eq!(
                ResourceKind::from_str(alias, true),
                Ok(ResourceKind::IPPool)
            );
        }
        assert_eq!(
            ResourceKind::from_str("bgpconfig", true),
            Ok(ResourceKind::BGPConfiguration)
        );
        assert_eq!(ResourceKind::from_str("no", true), Ok(ResourceKind::Node));
    }

    #[test]
    fn every_writable_kind_is_found_from_its_kind_field() {
        for kind in ResourceKind::value_variants() {
            let expected = kind.writable().then_some(*kind);
            assert_eq!(ResourceKind::from_kind_field(kind.name()), expected);
        }
        assert_eq!(ResourceKind::from_kind_field("IPAMBlock"), None);
        assert!(!ResourceKind::WorkloadEndpoint.writable());
    }
}
