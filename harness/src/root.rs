//! The root guard. A test that needs root (network namespaces, nftables, kernel
//! routes) is marked `#[ignore = "needs root"]`, so a run without root reports it
//! skipped rather than passed, and starts with [`require_root`]. `scripts/test`
//! runs ignored tests as root and under `CI=true`, so CI cannot go green without
//! running them: there, a missing root fails the test with this guard's message.

/// Panics, naming the current test, unless this process is root: the test was asked
/// for (`--run-ignored`, `--include-ignored`) where it cannot run.
///
/// ```no_run
/// #[test]
/// #[ignore = "needs root"]
/// fn harness_a_node_pings_its_router() {
///     harness::require_root();
///     // ...
/// }
/// ```
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "{} needs root; without root, run the tests without --run-ignored and it is skipped",
        current_test_name()
    );
}

/// The running test's name: libtest names each test's thread after the test.
pub fn current_test_name() -> String {
    std::thread::current()
        .name()
        .filter(|name| *name != "main")
        .unwrap_or("unnamed-test")
        .to_owned()
}
