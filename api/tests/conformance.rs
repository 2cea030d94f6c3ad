//! The datastore conformance suite against every backend: `conformance_<backend>::<case>`.

harness::conformance_suite!(
    conformance_memory,
    harness::conformance::MemoryFixture::start
);
harness::conformance_suite!(conformance_etcd, harness::conformance::EtcdFixture::start);
harness::conformance_suite!(
    conformance_kubernetes,
    harness::conformance::KubeFixture::start
);
