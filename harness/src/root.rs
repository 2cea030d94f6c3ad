//! The root guard: tests that need namespaces skip loudly without root, and fail
//! under `CI=true` so CI cannot go green without running them.

/// True when this process is root. Otherwise prints a loud `SKIPPED` line naming the
/// current test and returns false; under `CI=true` it panics instead.
///
/// ```no_run
/// if !harness::require_root() {
///     return;
/// }
/// ```
pub fn require_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    let test = current_test_name();
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test} needs root, and CI=true forbids skipping it"
    );
    eprintln!("SKIPPED (needs root): {test}");
    false
}

/// The running test's name: libtest names each test's thread after the test.
pub fn current_test_name() -> String {
    std::thread::current()
        .name()
        .filter(|name| *name != "main")
        .unwrap_or("unnamed-test")
        .to_owned()
}
