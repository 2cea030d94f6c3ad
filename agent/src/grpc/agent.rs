//! `tabby.agent.v1.AgentStatus`: this node, the kernel routes tabby programs (read
//! from the kernel when asked), and a summary of the dataplane.

use proto::agent::agent_status_server::AgentStatus;
use proto::agent::{
    GetDataplaneRequest, GetDataplaneResponse, GetNodeRequest, GetNodeResponse, KernelRoute,
    ListKernelRoutesRequest, ListKernelRoutesResponse, RouteKind,
};
use tonic::{Request, Response, Status};

use crate::daemon::Handle;
use crate::dataplane::{Reconciler, Route, RouteTarget};

#[derive(Debug, Clone)]
pub struct AgentService {
    pub handle: Handle,
}

#[tonic::async_trait]
impl AgentStatus for AgentService {
    async fn get_node(
        &self,
        _: Request<GetNodeRequest>,
    ) -> Result<Response<GetNodeResponse>, Status> {
        let status = self.handle.status.borrow().clone();
        let node = self.handle.node().await;
        let bgp = node
            .as_ref()
            .and_then(|n| n.spec.bgp.clone())
            .unwrap_or_default();
        let text = |value: Option<String>| value.unwrap_or_default();
        Ok(Response::new(GetNodeResponse {
            name: node
                .as_ref()
                .map(|n| n.metadata.name.clone())
                .unwrap_or_default(),
            ipv4_address: text(bgp.ipv4_address.map(|a| a.to_string())),
            ipv6_address: text(bgp.ipv6_address.map(|a| a.to_string())),
            as_number: self.handle.peers().await.local_as,
            route_reflector_cluster_id: text(bgp.route_reflector_cluster_id.map(|c| c.to_string())),
            ready: status.ready(),
            datastore_listed: status.listed,
            bgp_synced: status.bgp_synced,
            reconciled: status.reconciled,
            problems: status.problems,
            rejected_routes: status
                .rejected
                .into_iter()
                .chain(status.rejected_at_import)
                .collect(),
            services: status.services,
        }))
    }

    async fn list_kernel_routes(
        &self,
        _: Request<ListKernelRoutesRequest>,
    ) -> Result<Response<ListKernelRoutesResponse>, Status> {
        let mut reconciler =
            Reconciler::new().map_err(|e| Status::unavailable(format!("netlink: {e}")))?;
        let kernel = reconciler
            .read()
            .await
            .map_err(|e| Status::unavailable(format!("reading the kernel's routes: {e}")))?;
        let desired = self.handle.desired().await.map(|d| d.dataplane.routes);
        let routes = kernel
            .observed
            .routes
            .into_iter()
            .map(|(dst, target)| {
                let wanted = desired.as_ref().and_then(|routes| routes.get(&dst));
                let (kind, text, desired) = match &target {
                    Some(target) => (
                        kind(target),
                        Route {
                            dst,
                            target: target.clone(),
                        }
                        .to_string(),
                        wanted.is_some_and(|w| w.is_satisfied_by(target)),
                    ),
                    None => (
                        RouteKind::Other,
                        format!("{dst} (not a shape tabby programs)"),
                        false,
                    ),
                };
                KernelRoute {
                    destination: dst.to_string(),
                    kind: kind as i32,
                    text,
                    desired,
                }
            })
            .collect();
        Ok(Response::new(ListKernelRoutesResponse { routes }))
    }

    async fn get_dataplane(
        &self,
        _: Request<GetDataplaneRequest>,
    ) -> Result<Response<GetDataplaneResponse>, Status> {
        let status = self.handle.status.borrow().clone();
        let mut response = GetDataplaneResponse {
            reconciliations: status.passes,
            ..GetDataplaneResponse::default()
        };
        if let Some(pass) = &status.last_pass {
            response.last_applied = pass.applied as u32;
            response.last_refused = pass.refused.len() as u32;
            response.last_seconds = pass.took.as_secs_f64();
            response.refused.clone_from(&pass.refused);
        }
        if let Some(desired) = self.handle.desired().await {
            let routes = &desired.dataplane.routes;
            let count = |k: RouteKind| routes.values().filter(|t| kind(t) == k).count() as u32;
            response.desired_routes = routes.len() as u32;
            response.workload_routes = count(RouteKind::Workload);
            response.blackhole_routes = count(RouteKind::Blackhole);
            response.gateway_routes = count(RouteKind::Gateway);
            response.ecmp_routes = count(RouteKind::Ecmp);
            if let Some(ipip) = desired.dataplane.ipip {
                response.ipip = true;
                response.ipip_mtu = ipip.mtu;
            }
            if let Some(vxlan) = &desired.dataplane.vxlan {
                response.vxlan = true;
                response.vxlan_mtu = vxlan.mtu;
            }
            response.vteps = desired.dataplane.vteps.len() as u32;
            response.pod_mtu = desired.pod_mtu;
            response.nat_outgoing_pools =
                desired.nat.iter().filter(|p| p.nat_outgoing).count() as u32;
            response.exported_prefixes = desired.export.len() as u32;
        }
        Ok(Response::new(response))
    }
}

fn kind(target: &RouteTarget) -> RouteKind {
    match target {
        RouteTarget::Workload { .. } => RouteKind::Workload,
        RouteTarget::Blackhole => RouteKind::Blackhole,
        RouteTarget::Gateway(_) => RouteKind::Gateway,
        RouteTarget::Multipath(_) => RouteKind::Ecmp,
    }
}
