//! The default IP pools calico-node makes from its DaemonSet's environment:
//! `CALICO_IPV4POOL_CIDR` with `_BLOCK_SIZE`, `_IPIP`, `_VXLAN`, `_NAT_OUTGOING`
//! and `_NODE_SELECTOR` (and the same for `CALICO_IPV6POOL_`), unless
//! `NO_DEFAULT_POOLS=true`. tabby keeps Calico's names for them: they are read
//! once, when a node starts, and a DaemonSet is where they are written.
//!
//! As calico-node does, a pool is created only while the cluster has no pool of
//! its family, so deleting or replacing it later sticks. Unlike calico-node, there
//! is no built-in CIDR (Calico's 192.168.0.0/16): without `_CIDR` nothing is made.
//! Many agents start at once: each creates the same name, one wins, the others
//! get `AlreadyExists` and are done (the datastore's create is the arbiter).

use std::str::FromStr;

use api::datastore::{Backend, Datastore, Error, list_all};
use api::resources::{Cidr, EncapsulationMode, IPPool, IPPoolSpec, Resource};
use api::selector::Selector;

/// `NO_DEFAULT_POOLS=true` turns them off.
pub const NO_DEFAULT_POOLS: &str = "NO_DEFAULT_POOLS";

/// One family's variables and the pool's name.
struct Family {
    prefix: &'static str,
    name: &'static str,
}

const FAMILIES: [Family; 2] = [
    Family {
        prefix: "CALICO_IPV4POOL_",
        name: "default-ipv4-ippool",
    },
    Family {
        prefix: "CALICO_IPV6POOL_",
        name: "default-ipv6-ippool",
    },
];

/// Whether `variable` is one this module reads.
pub fn reads(variable: &str) -> bool {
    variable == NO_DEFAULT_POOLS || FAMILIES.iter().any(|f| variable.starts_with(f.prefix))
}

/// A variable whose value makes no valid pool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable} {value:?}: {problem}")]
pub struct PoolEnvError {
    pub variable: String,
    pub value: String,
    pub problem: String,
}

/// The default pools `var` (the environment) asks for, validated as any pool is.
pub fn from_env(var: &dyn Fn(&str) -> Option<String>) -> Result<Vec<IPPool>, PoolEnvError> {
    let var = |name: &str| var(name).filter(|v| !v.is_empty());
    match var(NO_DEFAULT_POOLS).as_deref() {
        Some("true") => return Ok(Vec::new()),
        None | Some("false") => {}
        Some(other) => return Err(error(NO_DEFAULT_POOLS, other, "is not true or false")),
    }
    let mut pools = Vec::new();
    for family in &FAMILIES {
        let name = |field: &str| format!("{}{field}", family.prefix);
        let Some(cidr_text) = var(&name("CIDR")) else {
            continue;
        };
        let field = |field: &str| var(&name(field)).map(|v| (name(field), v));
        let cidr = Cidr(parse::<ipnet::IpNet>(&name("CIDR"), &cidr_text)?);
        let mut spec = IPPoolSpec::new(cidr);
        if let Some((variable, text)) = field("BLOCK_SIZE") {
            spec.block_size = Some(parse(&variable, &text)?);
        }
        if let Some((variable, text)) = field("IPIP") {
            spec.ipip_mode = encapsulation(&variable, &text)?;
        }
        if let Some((variable, text)) = field("VXLAN") {
            spec.vxlan_mode = encapsulation(&variable, &text)?;
        }
        // calico-node's default pool does NAT outgoing unless told otherwise.
        spec.nat_outgoing = match field("NAT_OUTGOING") {
            Some((variable, text)) => parse(&variable, &text)?,
            None => true,
        };
        if let Some((variable, text)) = field("NODE_SELECTOR") {
            spec.node_selector = parse::<Selector>(&variable, &text)?;
        }
        let pool = IPPool::new(family.name, spec);
        pool.validate().map_err(|e| PoolEnvError {
            variable: format!("{}*", family.prefix),
            value: cidr_text.clone(),
            problem: e.to_string(),
        })?;
        pools.push(pool);
    }
    Ok(pools)
}

/// Creates each of `pools` whose family has no pool yet; returns the names created
/// here (not those another agent created first).
pub async fn ensure(store: &dyn Backend, pools: &[IPPool]) -> Result<Vec<String>, Error> {
    let mut created = Vec::new();
    for pool in pools {
        let ipv4 = pool.spec.cidr.0.addr().is_ipv4();
        let existing = list_all::<IPPool, _>(store, None).await?.items;
        if existing
            .iter()
            .any(|p| p.spec.cidr.0.addr().is_ipv4() == ipv4)
        {
            continue;
        }
        match store.create(pool).await {
            Ok(_) => created.push(pool.metadata.name.clone()),
            Err(Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(created)
}

fn error(variable: &str, value: &str, problem: impl Into<String>) -> PoolEnvError {
    PoolEnvError {
        variable: variable.to_owned(),
        value: value.to_owned(),
        problem: problem.into(),
    }
}

fn parse<T: FromStr>(variable: &str, text: &str) -> Result<T, PoolEnvError>
where
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|e: T::Err| error(variable, text, e.to_string()))
}

/// Calico's spellings: `Always`, `CrossSubnet`, `Never` (and `Off` for `Never`).
fn encapsulation(variable: &str, text: &str) -> Result<EncapsulationMode, PoolEnvError> {
    match text.to_ascii_lowercase().as_str() {
        "always" => Ok(EncapsulationMode::Always),
        "crosssubnet" => Ok(EncapsulationMode::CrossSubnet),
        "never" | "off" => Ok(EncapsulationMode::Never),
        _ => Err(error(variable, text, "is not Always, CrossSubnet or Never")),
    }
}

#[cfg(test)]
mod tests;
