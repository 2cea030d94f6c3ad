//! A throwaway etcd answers etcdctl, and two run side by side.

use harness::etcd::Etcd;
use harness::logs::LogDir;

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

#[test]
#[ignore = "needs root"]
fn harness_etcd_in_a_labs_router_is_reached_from_a_node_on_another_subnet() {
    harness::require_root();
    let lab = harness::Lab::new("harness_etcd_in_a_lab")
        .subnet("a", "10.0.1.0/24")
        .subnet("b", "10.0.2.0/24")
        .node("n1", "b")
        .build()
        .unwrap();
    let router = lab.router().unwrap();
    let address = router.address_in("a", "10.0.1.1".parse().unwrap()).unwrap();
    let etcd = Etcd::start_in(lab.logs(), router, address).unwrap();
    assert_eq!(etcd.endpoint().split(':').nth(1), Some("//10.0.1.1"));
    etcd.etcdctl(&["put", "/tabby/k", "v1"]).unwrap();
    let read = lab
        .node("n1")
        .exec(
            "etcdctl",
            &[
                &format!("--endpoints={}", etcd.endpoint()),
                "get",
                "/tabby/k",
                "--print-value-only",
            ],
        )
        .unwrap();
    assert_eq!(read, "v1\n");
}
