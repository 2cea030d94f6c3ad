//! The datastore conformance suite against every backend: `conformance_<backend>::<case>`.

tests::conformance_suite!(conformance_memory, tests::conformance::MemoryFixture::start);
tests::conformance_suite!(conformance_etcd, tests::conformance::EtcdFixture::start);
tests::conformance_suite!(
    conformance_kubernetes,
    tests::conformance::KubeFixture::start
);
