//! Calico's BGPPeer. `keepOriginalNextHop: true` becomes `nextHopMode: Keep`; the
//! password's Secret reference carries over; features tabby lacks (a static route
//! towards the peer, peering with local workloads, a per-peer local AS, manual
//! reverse peering) are refused: without them the sessions would differ.

use api::resources::{
    AsNumber, BGPPeerSpec, BgpPassword, GoDuration, NextHopMode, PeerAddress, SecretKeyRef,
    SourceAddress, ValidationError,
};
use serde::Deserialize;

use super::{CalicoSpec, Conversion, non_empty, selector};
use crate::output::enum_name;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct CalicoBGPPeerSpec {
    node: Option<String>,
    node_selector: Option<String>,
    #[serde(rename = "peerIP")]
    peer_ip: Option<PeerAddress>,
    as_number: Option<AsNumber>,
    peer_selector: Option<String>,
    keep_original_next_hop: Option<bool>,
    next_hop_mode: Option<NextHopMode>,
    password: Option<CalicoPassword>,
    source_address: Option<SourceAddress>,
    max_restart_time: Option<GoDuration>,
    keepalive_time: Option<GoDuration>,
    #[serde(rename = "numAllowedLocalASNumbers")]
    num_allowed_local_as_numbers: Option<u8>,
    #[serde(rename = "ttlSecurity")]
    ttl_security: Option<u8>,
    filters: Option<Vec<String>>,
    reachable_by: Option<String>,
    local_workload_selector: Option<String>,
    #[serde(rename = "localASNumber")]
    local_as_number: Option<AsNumber>,
    reverse_peering: Option<String>,
}

/// Calico's BGPPassword: a Kubernetes SecretKeySelector.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct CalicoPassword {
    secret_key_ref: Option<CalicoSecretKeyRef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CalicoSecretKeyRef {
    #[serde(default)]
    name: String,
    key: String,
    optional: Option<bool>,
}

impl CalicoPassword {
    pub(super) fn convert(
        self,
        path: &str,
        conversion: &mut Conversion,
    ) -> Result<BgpPassword, ValidationError> {
        let Some(reference) = self.secret_key_ref else {
            return Err(ValidationError::new(path, "", "needs secretKeyRef"));
        };
        if reference.name.is_empty() {
            return Err(ValidationError::new(
                format!("{path}.secretKeyRef.name"),
                "",
                "is required: name the Secret holding the password",
            ));
        }
        if reference.optional == Some(true) {
            conversion.note(format!(
                "{path}.secretKeyRef.optional dropped: tabby requires the Secret to exist"
            ));
        }
        Ok(BgpPassword {
            secret_key_ref: Some(SecretKeyRef {
                name: reference.name,
                key: reference.key,
            }),
            file: None,
        })
    }
}

impl CalicoSpec for CalicoBGPPeerSpec {
    type Target = BGPPeerSpec;

    fn convert(
        self,
        _name: &str,
        conversion: &mut Conversion,
    ) -> Result<BGPPeerSpec, ValidationError> {
        self.refuse_unsupported(conversion);
        let next_hop_mode = match (self.keep_original_next_hop, self.next_hop_mode) {
            (Some(true), None | Some(NextHopMode::Keep)) => NextHopMode::Keep,
            (Some(true), Some(mode)) => {
                return Err(ValidationError::new(
                    "spec.keepOriginalNextHop",
                    true,
                    format!(
                        "contradicts spec.nextHopMode: {}; keep one of them",
                        enum_name(&mode)
                    ),
                ));
            }
            (_, mode) => mode.unwrap_or_default(),
        };
        let password = self
            .password
            .map(|p| p.convert("spec.password", conversion))
            .transpose()?;
        Ok(BGPPeerSpec {
            node: non_empty(self.node),
            node_selector: selector("spec.nodeSelector", self.node_selector, conversion),
            peer_ip: self.peer_ip,
            peer_selector: selector("spec.peerSelector", self.peer_selector, conversion),
            // Calico writes 0 for "the selected nodes' own AS".
            as_number: self.as_number.filter(|asn| asn.0 != 0),
            password,
            source_address: self.source_address.unwrap_or_default(),
            keepalive_time: self.keepalive_time,
            max_restart_time: self.max_restart_time,
            next_hop_mode,
            // Calico's 0 means GTSM off, as an absent field does in tabby.
            ttl_security: self.ttl_security.filter(|hops| *hops != 0),
            num_allowed_local_as_numbers: self.num_allowed_local_as_numbers.filter(|n| *n != 0),
            filters: self.filters.unwrap_or_default(),
            // tabby's own: its defaults (a prefix limit, only this node's routes
            // to routers) apply.
            max_prefixes: None,
            advertise_learned_routes: false,
            bfd: None,
        })
    }
}

impl CalicoBGPPeerSpec {
    fn refuse_unsupported(&self, conversion: &mut Conversion) {
        if let Some(gateway) = non_empty(self.reachable_by.clone()) {
            conversion.refuse(
                "spec.reachableBy",
                gateway,
                "tabby does not install a static route towards the peer; remove it and \
                 route to the peer through the node's own routing table",
            );
        }
        if let Some(selector) = non_empty(self.local_workload_selector.clone()) {
            conversion.refuse(
                "spec.localWorkloadSelector",
                selector,
                "tabby does not peer with BGP speakers running in local pods; remove the \
                 peer",
            );
        }
        if let Some(asn) = self.local_as_number.filter(|asn| asn.0 != 0) {
            conversion.refuse(
                "spec.localASNumber",
                asn.to_string(),
                "tabby speaks with the node's AS to every peer; remove it, or set the \
                 node's AS (Node spec.bgp.asNumber) instead",
            );
        }
        match self.reverse_peering.as_deref() {
            None | Some("" | "Auto") => {}
            Some(mode) => conversion.refuse(
                "spec.reversePeering",
                mode,
                "tabby always opens selector peerings from both ends; remove it",
            ),
        }
    }
}
