//! Explicit assignment: a requested address, from whichever block holds it. A
//! block that does not exist yet is claimed for the node.

use std::collections::BTreeMap;
use std::net::IpAddr;

use api::resources::{AllocationAttribute, Cidr, cidr_name};

use crate::assign::Allocator;
use crate::blocks::{block_of, ordinal_of};
use crate::cas::{self, Edit, add_to_handle};
use crate::claim::claim_block;
use crate::error::{IpamError, Result};
use crate::handles::{Assignment, check_handle_id};
use crate::pools::{Reserved, is_tiny_pool_edge, pool_holding};
use crate::state::Settings;
use crate::table::{AllocationTable, Occupied};

impl Allocator {
    /// Assigns `ip` to `handle`. Refused when it is in no pool, in a disabled pool,
    /// reserved, or held already.
    pub async fn assign_ip(
        &self,
        ip: IpAddr,
        handle: &str,
        attrs: BTreeMap<String, String>,
    ) -> Result<Assignment> {
        check_handle_id(handle)?;
        let store = &**self.store();
        let mut state = self.lock().await;
        let settings = Settings::read(store, &state.node).await?;
        let pool = pool_holding(&settings.pools, &ip.into())
            .ok_or(IpamError::NotInPool { ip })?
            .clone();
        if pool.spec.disabled {
            return Err(IpamError::PoolDisabled {
                ip,
                pool: pool.metadata.name,
            });
        }
        if let Some(reservation) = Reserved::reservation_of(&settings.reservations, ip) {
            return Err(IpamError::Reserved {
                ip,
                why: format!("by IPReservation {}", reservation.metadata.name),
            });
        }
        if is_tiny_pool_edge(&pool, ip) {
            let edge = if ip == pool.spec.cidr.0.network() {
                "network"
            } else {
                "broadcast"
            };
            return Err(IpamError::Reserved {
                ip,
                why: format!("the {edge} address of pool {}", pool.metadata.name),
            });
        }
        let block = Cidr(block_of(ip, pool.spec.block_size()).ok_or(IpamError::NotInPool { ip })?);
        let name = cidr_name(&block);
        let ordinal = ordinal_of(block.0, ip).ok_or(IpamError::NotInPool { ip })?;
        let holder = AllocationAttribute {
            handle_id: Some(handle.to_owned()),
            secondary: attrs,
        };
        let node = state.node.clone();
        state.settings = Some(settings);
        for _ in 0..2 {
            let cached = state.blocks.get(&name).cloned();
            let edited = cas::edit_block(store, &name, cached, |spec| {
                let owned = spec.affine_node() == Some(node.as_str());
                match spec.take_ordinal(ordinal, &holder) {
                    Ok(sequence) => Edit::Write(Ok((sequence, owned))),
                    Err(occupied) => Edit::Keep(Err(occupied)),
                }
            })
            .await?;
            state.record(&name, edited.block);
            match edited.value {
                None => {
                    // No block yet: claim it (or lose it to another node, then retry).
                    claim_block(store, &node, block).await?;
                }
                Some(Ok((sequence, owned))) => {
                    add_to_handle(store, handle, &BTreeMap::from([(block.to_string(), 1)])).await?;
                    return Ok(Assignment {
                        ip,
                        block,
                        sequence: Some(sequence),
                        borrowed: !owned,
                    });
                }
                Some(Err(Occupied::By(holder))) => return Err(IpamError::InUse { ip, holder }),
                Some(Err(Occupied::Outside)) => return Err(IpamError::NotInPool { ip }),
            }
        }
        Err(IpamError::Contention {
            what: format!("block {name} for {ip}"),
            attempts: 2,
        })
    }
}
