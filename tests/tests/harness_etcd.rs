//! A throwaway etcd answers etcdctl, and two run side by side.

use tests::etcd::Etcd;
use tests::logs::LogDir;

#[test]
fn harness_etcd_answers_put_and_get() {
    let logs = LogDir::new("harness_etcd_answers_put_and_get").unwrap();
    let etcd = Etcd::start(&logs).unwrap();
    assert!(etcd.endpoint().starts_with("http://127.0.0.1:"));
    etcd.etcdctl(&["put", "/tabby/k", "v1"]).unwrap();
    assert_eq!(
        etcd.etcdctl(&["get", "/tabby/k", "--print-value-only"])
            .unwrap(),
        "v1\n"
    );

    let pid = etcd.process().pid();
    drop(etcd);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "etcd survived"
    );
}

#[test]
fn harness_two_etcds_run_side_by_side() {
    let logs = LogDir::new("harness_two_etcds_run_side_by_side").unwrap();
    let (first, second) = (Etcd::start(&logs).unwrap(), Etcd::start(&logs).unwrap());
    assert_ne!(first.endpoint(), second.endpoint());
    first.etcdctl(&["put", "k", "first"]).unwrap();
    assert_eq!(
        second.etcdctl(&["get", "k", "--print-value-only"]).unwrap(),
        ""
    );
}
