//! The IPAM allocation path on the etcd backend, against a real etcd: read the
//! block, change it, compare-and-swap it back. Three ways, in one run:
//!
//! - tabby: `Datastore::get` + `Datastore::update`, two round trips (the update is one
//!   transaction; IPAMBlock has no immutable fields to read back);
//! - tabby before this change: the same with the extra `get` `update` used to make to
//!   check immutable fields, three round trips;
//! - bare etcd-client: a range read and a `mod_revision`-compare transaction of the
//!   same JSON, with no decoding, validation or defaults: the floor.
//!
//! `cargo bench -p api --bench datastore_allocation` (needs etcd-server).

use std::collections::BTreeMap;

use api::datastore::{Datastore, EtcdStore};
use api::resources::{IPAMBlock, IPAMBlockSpec, Object, cidr_name};
use criterion::{Criterion, criterion_group, criterion_main};
use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp};
use harness::etcd::Etcd;
use harness::logs::LogDir;

fn block() -> IPAMBlock {
    let cidr = "10.0.0.0/26".parse().unwrap();
    Object::new(
        cidr_name(&cidr),
        IPAMBlockSpec {
            cidr,
            affinity: Some("host:worker-1".into()),
            allocations: Vec::new(),
            unallocated: Vec::new(),
            attributes: Vec::new(),
            deleted: false,
            sequence_number: 0,
            sequence_number_for_allocation: BTreeMap::new(),
        },
    )
}

/// One allocation's worth of change: the block's sequence number moves on.
fn allocate(mut block: IPAMBlock) -> IPAMBlock {
    block.spec.sequence_number += 1;
    block
}

fn allocation(c: &mut Criterion) {
    let logs = LogDir::new("bench_datastore_allocation").unwrap();
    let etcd = Etcd::start(&logs).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (store, mut raw) = runtime.block_on(async {
        let store = EtcdStore::connect(&[etcd.endpoint()]).await.unwrap();
        store.create(&block()).await.unwrap();
        (
            store,
            Client::connect([etcd.endpoint()], None).await.unwrap(),
        )
    });
    let name = cidr_name(&block().spec.cidr);
    let key = format!("/tabby/v1/ipamblocks/{name}");

    let mut group = c.benchmark_group("ipam allocation on etcd");
    group.bench_function("tabby: get + CAS update (2 round trips)", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let read: IPAMBlock = store.get(&name).await.unwrap();
                store.update(&allocate(read)).await.unwrap()
            })
        })
    });
    group.bench_function(
        "tabby before: get + get + CAS update (3 round trips)",
        |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let read: IPAMBlock = store.get(&name).await.unwrap();
                    let _check: IPAMBlock = store.get(&name).await.unwrap();
                    store.update(&allocate(read)).await.unwrap()
                })
            })
        },
    );
    group.bench_function("bare etcd-client: range + compare txn", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let response = raw.get(key.as_str(), None).await.unwrap();
                let kv = &response.kvs()[0];
                let value = kv.value().to_vec();
                let txn = Txn::new()
                    .when([Compare::mod_revision(
                        key.as_str(),
                        CompareOp::Equal,
                        kv.mod_revision(),
                    )])
                    .and_then([TxnOp::put(key.as_str(), value, None)]);
                assert!(raw.txn(txn).await.unwrap().succeeded());
            })
        })
    });
    group.finish();
}

criterion_group!(benches, allocation);
criterion_main!(benches);
